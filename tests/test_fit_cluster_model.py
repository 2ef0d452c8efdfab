"""Fit Cluster Model's engine (one model from several rasters) and its job in the worker process."""

from __future__ import annotations

import errno
import json
import re

import numpy as np
import pytest
from data_factory import make_raster
from engine_runs import legend
from osgeo import gdal
from recording_progress import Log
from treeseg.treeseg_plugin.engine import EngineError, SegmentationConfig, run_segmentation
from treeseg.treeseg_plugin.engine.cluster.model_file import load_cluster_model
from treeseg.treeseg_plugin.engine.jobs.fit import ClusterFitConfig, ClusterFitResult, validate_fit_config
from treeseg.treeseg_plugin.engine.runs.fit import STAGES, run_fit_cluster_model, split_budget
from treeseg.treeseg_plugin.worker.client import run_job

SETTINGS = {"tile_size": 64, "overlap": 16, "k_max": 4}


def _fit(paths, out, model, progress=None, **settings):
    config = ClusterFitConfig([str(p) for p in paths], str(out), model=model, **{**SETTINGS, **settings})
    return run_fit_cluster_model(config, progress or Log())


def test_one_raster_gives_the_model_segment_trees_saves(tmp_path, tiny):
    raster = make_raster(tmp_path / "a.tif", 192, 160, kind="blobs")
    run_segmentation(SegmentationConfig(str(raster), str(tmp_path / "labels.tif"), model=tiny,
                                        cluster_model_output=str(tmp_path / "segment.tscm"), **SETTINGS), Log())
    log = Log()
    result = _fit([raster], tmp_path / "fit.tscm", tiny, log)
    fitted, saved = load_cluster_model(str(tmp_path / "fit.tscm")), load_cluster_model(str(tmp_path / "segment.tscm"))
    assert np.array_equal(fitted.centroids, saved.centroids) and fitted.wcss == saved.wcss
    assert (fitted.backbone, fitted.input, fitted.fit.inputs) == (saved.backbone, saved.input, saved.fit.inputs)
    # Segment Trees also decided which clusters are trees and its model keeps those names; a fit alone cannot.
    assert fitted.legend.names[1:] == tuple(f"Cluster {k}" for k in range(1, fitted.k + 1))
    assert [name.split(":")[0] for name in saved.legend.names] == list(fitted.legend.names)
    assert all(name.endswith((": trees", ": not trees")) for name in saved.legend.names[1:])
    assert log.stages == ["Reading input", "Loading model", "Encoding tiles", "Fitting k-means",
                          "Writing cluster model"]
    assert "WCSS" in log.text and f"Chosen K = {result.chosen_k}" in log.text
    assert log.percents[-1] == 100


def test_the_fit_reports_each_stages_time(tmp_path, tiny):
    """The result carries each stage's wall and CPU seconds and the run's total (through JSON, as on the worker
    pipe), and the log says them in one line."""
    log = Log()
    result = _fit([make_raster(tmp_path / "a.tif", 96, 96, kind="blobs")], tmp_path / "fit.tscm", tiny, log)
    assert list(result.timings_s) == list(result.cpu_s) == [*STAGES, "total"]
    for seconds in (result.timings_s, result.cpu_s):
        assert all(value >= 0 for value in seconds.values())
        assert sum(value for name, value in seconds.items() if name != "total") <= seconds["total"] + 0.01
    assert result.cpu_s["Encoding tiles"] > 0  # the tiles were encoded in this process
    line = next(line for line in log.lines if line.startswith("Time per stage"))
    assert all(re.search(rf"{name} \d+\.\d\d / \d+\.\d\d\b", line) for name in [*STAGES, "total"]), line
    assert ClusterFitResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_several_rasters_share_one_model_sampled_by_valid_patches(tmp_path, tiny):
    invalid = np.zeros((128, 192), bool)
    invalid[:, :96] = True  # half of this raster is NoData: it has half the valid patches
    rasters = [make_raster(tmp_path / "a.tif", 192, 128, kind="blobs"),
               make_raster(tmp_path / "b.tif", 192, 128, kind="blobs", seed=1, nodata=255, invalid=invalid),
               make_raster(tmp_path / "c.tif", 96, 128, kind="regions")]
    result = _fit(rasters, tmp_path / "models" / "m.tscm", tiny, max_samples=100)
    assert [i["valid_patches"] for i in result.inputs] == [96, 48, 48]
    assert [i["sampled"] for i in result.inputs] == [50, 25, 25]
    model = load_cluster_model(result.output_path)
    assert model.k == result.chosen_k and model.fit.samples == 100
    assert [i.name for i in model.fit.inputs] == ["a.tif", "b.tif", "c.tif"]
    legends = []
    for raster in rasters:
        out = tmp_path / f"{raster.stem}-labels.tif"
        run_segmentation(SegmentationConfig(str(raster), str(out), model=tiny, cluster_model=result.output_path,
                                            **SETTINGS), Log())
        legends.append(legend(out))
    assert legends[0] == legends[1] == legends[2]


def test_the_stretch_is_fitted_on_all_rasters_together(tmp_path, tiny):
    low = make_raster(tmp_path / "low.tif", 128, 96, dtype="UInt16", kind="blobs")
    data = gdal.Open(str(low)).ReadAsArray().astype(np.uint16)
    high = make_raster(tmp_path / "high.tif", 96, 96, dtype="UInt16", data=data[:, :, :96] * 3)
    result = _fit([low, high], tmp_path / "m.tscm", tiny)
    model = load_cluster_model(result.output_path)
    for band in (1, 2, 3):
        pooled = np.concatenate([data[band - 1].ravel(), (data[band - 1, :, :96] * 3).ravel()]).astype(np.float64)
        expected = np.percentile(pooled, (2, 98))
        assert (model.input.stretch[band].low, model.input.stretch[band].high) == tuple(expected)


def test_rasters_read_differently_are_refused_before_the_model_loads(tmp_path, tiny):
    rgb = make_raster(tmp_path / "rgb.tif", 96, 96)
    grey = make_raster(tmp_path / "grey.tif", 96, 96, bands=1)
    log = Log()
    with pytest.raises(EngineError, match=r"must be read alike: .*rgb.tif' has 3 bands.*grey.tif' has 1 bands"):
        _fit([rgb, grey], tmp_path / "out" / "m.tscm", tiny, log)
    assert log.stages == ["Reading input"] and not (tmp_path / "out").exists()


def test_the_settings_are_checked(tmp_path):
    for inputs, output, message in (([], "m.tscm", "No input rasters"), (["a.tif", "a.tif"], "m.tscm", "twice"),
                                    (["a.tif"], "m.json", "must end in .tscm"),
                                    (["a.tscm"], "a.tscm", "one of the input rasters")):
        with pytest.raises(EngineError, match=message):
            validate_fit_config(ClusterFitConfig(inputs, output))
    with pytest.raises(EngineError, match="Stride 12"):
        validate_fit_config(ClusterFitConfig(["a.tif"], "m.tscm", stride=12))
    assert ClusterFitConfig(["a.tif"], "m.tscm").output_paths() == ["m.tscm"]


def test_the_budget_is_split_by_valid_patches():
    assert split_budget([96, 48, 48], 100) == [50, 25, 25]
    assert split_budget([1, 1, 1], 2) == [1, 1, 0]
    assert split_budget([10, 0, 5], 100) == [10, 0, 5]
    assert sum(split_budget([7, 13, 29, 31], 50)) == 50


def test_the_fit_runs_in_the_worker_process(tmp_path, tiny):
    rasters = [make_raster(tmp_path / "a.tif", 128, 96, kind="blobs"), make_raster(tmp_path / "b.tif", 96, 96)]
    log = Log()
    result = run_job(ClusterFitConfig([str(r) for r in rasters], str(tmp_path / "out" / "m.tscm"), model=tiny,
                                      **SETTINGS), log)
    assert isinstance(result, ClusterFitResult)
    assert result.output_path == str(tmp_path / "out" / "m.tscm") and 2 <= result.chosen_k <= 4
    assert ClusterFitResult.from_json(result.to_json()) == result
    assert load_cluster_model(result.output_path).k == result.chosen_k
    assert "Running in a worker process" in log.text and "Writing cluster model" in log.stages


def test_a_canceled_fit_leaves_nothing(tmp_path, tiny):
    class CancelWhileFitting(Log):
        def is_canceled(self) -> bool:
            return bool(self.stages) and self.stages[-1] == "Fitting k-means"

    raster = make_raster(tmp_path / "a.tif", 128, 96)
    with pytest.raises(EngineError, match="Canceled"):
        _fit([raster], tmp_path / "out" / "m.tscm", tiny, CancelWhileFitting())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("error", "start"), [
    (MemoryError("Unable to allocate 37.3 GiB for an array"), "Out of memory (Unable to allocate 37.3 GiB"),
    (OSError(errno.ENOSPC, "No space left on device"), "Cannot write the temporary files: [Errno 28]"),
])
def test_out_of_memory_and_a_full_disk_in_a_fit_become_engine_errors(tmp_path, tiny, error, start):
    def fail() -> None:
        raise error

    log = Log()
    log.on_stage["Encoding tiles"] = fail
    raster = make_raster(tmp_path / "a.tif", 128, 96)
    with pytest.raises(EngineError) as raised:
        _fit([raster], tmp_path / "out" / "m.tscm", tiny, log)
    assert str(raised.value).startswith(start), raised.value
    assert not (tmp_path / "out").exists()
