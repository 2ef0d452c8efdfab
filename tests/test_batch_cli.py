"""The batch command (``python -m treeseg_plugin``): fit once, label a folder, mosaic; local and Dask.

Real subprocesses of the command, a real Dask LocalCluster of 2 worker processes, real GDAL outputs and a
random-weight checkpoint in Meta's format.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PLUGINS_DIR
from data_factory import make_raster
from osgeo import gdal
from treeseg.treeseg_plugin.batch import run as batch_run
from treeseg.treeseg_plugin.batch.backends import DaskBackend
from treeseg.treeseg_plugin.engine import SegmentationConfig
from treeseg.treeseg_plugin.engine.cluster.model_file import load_cluster_model

pytest.importorskip("distributed", reason="the Dask tests need dask[distributed] (requirements/dev.txt)")

SETTINGS = ["--tile-size", "64", "--overlap", "16", "--k", "3"]
PLUGIN = Path(PLUGINS_DIR) / "treeseg"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiles")
    for i in range(6):
        make_raster(folder / f"tile_{i}.tif", 160, 128, kind="blobs" if i % 2 else "regions", seed=i)
    return folder


def command(*args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it: ``python -m treeseg_plugin`` from the plugin folder."""
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "treeseg_plugin", *args], cwd=PLUGIN, env=env,
                          capture_output=True, text=True, timeout=600)


def outputs(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_labels.tif"))}


def labels(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


def test_a_folder_gets_one_model_its_labels_and_a_mosaic_the_same_on_dask(folder, tiny, tmp_path):
    local = command(str(folder), "-o", str(tmp_path / "local"), "--model", tiny, *SETTINGS)
    assert local.returncode == 0, local.stderr
    assert "6/6 labelled: tile_5_labels.tif" in local.stderr
    dask = command(str(folder), "-o", str(tmp_path / "dask"), "--model", tiny, "--workers", "2", *SETTINGS)
    assert dask.returncode == 0, dask.stderr
    assert len(outputs(tmp_path / "local")) == 6
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "local")
    # One model: the same centroids; the WCSS may differ in its last digits, since Dask's workers encode
    # with one thread each (features differ in their last bits, never enough to move a centroid or label).
    ours, theirs = (load_cluster_model(str(tmp_path / name / "cluster-model.tscm")) for name in ("local", "dask"))
    assert np.array_equal(ours.centroids, theirs.centroids)
    assert ours.fit.encoding == theirs.fit.encoding  # the workers' device and precision, and the tiling
    assert (ours.fit.encoding.device, ours.fit.encoding.tile_size, ours.fit.encoding.overlap) == ("cpu", 64, 16)
    assert ours.wcss.keys() == theirs.wcss.keys() == {3}
    assert theirs.wcss[3] == pytest.approx(ours.wcss[3], rel=1e-12)
    mosaic = gdal.Open(str(tmp_path / "local" / "mosaic.vrt"))
    assert mosaic.RasterCount == 1 and mosaic.GetRasterBand(1).GetColorTable() is not None
    assert not list((tmp_path / "dask").glob(".treeseg-*"))


def test_a_second_run_keeps_finished_outputs_and_redoes_missing_ones(folder, tiny, tmp_path):
    out = tmp_path / "out"
    assert command(str(folder), "-o", str(out), "--model", tiny, *SETTINGS).returncode == 0
    before = outputs(out)
    (out / "tile_2_labels.tif").unlink()
    kept = (out / "tile_0_labels.tif").stat().st_mtime_ns
    again = command(str(folder), "-o", str(out), "--model", tiny, *SETTINGS)
    assert again.returncode == 0, again.stderr
    assert "5 of 6 outputs exist already" in again.stderr and "fitted by an earlier run" in again.stderr
    assert outputs(out) == before and (out / "tile_0_labels.tif").stat().st_mtime_ns == kept


def test_one_model_gives_adjacent_windows_of_a_raster_the_labels_of_the_whole(tiny, tmp_path):
    raster = make_raster(tmp_path / "big.tif", 320, 256, kind="blobs", seed=3)
    whole = command(str(raster), "-o", str(tmp_path / "whole"), "--model", tiny, *SETTINGS)
    assert whole.returncode == 0, whole.stderr
    model = tmp_path / "whole" / "cluster-model.tscm"
    split = command(str(raster), "-o", str(tmp_path / "split"), "--model", tiny, "--cluster-model", str(model),
                    "--window", "128", *SETTINGS)
    assert split.returncode == 0, split.stderr
    a, b = labels(tmp_path / "whole" / "big_labels.tif"), labels(tmp_path / "split" / "big_labels.tif")
    assert a.shape == b.shape == (256, 320)
    assert np.array_equal(a, b)  # each window's tiles are the whole raster's (batch/windows.py)
    assert gdal.Open(str(tmp_path / "split" / "big_labels.tif")).GetGeoTransform() == \
        gdal.Open(str(raster)).GetGeoTransform()
    assert not (tmp_path / "split" / ".treeseg-parts").exists()


class KillOneWorker(DaskBackend):
    """A real Dask backend whose first finished task is followed by killing one worker process."""

    killed = 0

    def map(self, task, items):
        for index, pair in enumerate(super().map(task, items)):
            if index == 0 and task is batch_run._apply_task:
                worker = next(iter(self.client.scheduler_info()["workers"]))
                os.kill(self.client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
                KillOneWorker.killed += 1
            yield pair


def test_a_killed_worker_has_its_rasters_redone_and_leaves_nothing_half_written(folder, tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(batch_run, "make_backend", lambda scheduler, workers: KillOneWorker(workers=2))
    engine = SegmentationConfig("", "", model=tiny, tile_size=64, overlap=16, k=3)
    settings = batch_run.BatchSettings([str(folder)], str(tmp_path / "killed"), engine, workers=2)
    batch_run.run_batch(settings, batch_run.Progress())
    assert KillOneWorker.killed == 1
    reference = command(str(folder), "-o", str(tmp_path / "local"), "--model", tiny, *SETTINGS)
    assert reference.returncode == 0, reference.stderr
    assert outputs(tmp_path / "killed") == outputs(tmp_path / "local")
    assert not list((tmp_path / "killed").glob(".treeseg-*"))


@pytest.mark.parametrize("args, message", [
    (["--cluster-model", "missing.tscm"], "does not exist"),
    (["--tile-size", "100"], "not a multiple of 16"),
])
def test_bad_settings_stop_before_anything_runs_with_the_fix(folder, tiny, tmp_path, args, message):
    result = command(str(folder), "-o", str(tmp_path / "out"), "--model", tiny, *SETTINGS, *args)
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_model_fitted_again_labels_every_raster_again_without_redo(folder, tiny, tmp_path):
    """Outputs of an earlier run are kept only while their model is: once cluster-model.tscm is deleted, the
    model fitted in its place (here with K=2 instead of 3) labels every raster again."""
    out = tmp_path / "out"
    rasters = [str(folder / "tile_0.tif"), str(folder / "tile_1.tif")]
    first = command(*rasters, "-o", str(out), "--model", tiny, *SETTINGS)
    assert first.returncode == 0, first.stderr
    assert max(int(labels(out / f"tile_{i}_labels.tif").max()) for i in (0, 1)) == 3
    (out / "cluster-model.tscm").unlink()
    again = command(*rasters, "-o", str(out), "--model", tiny, *SETTINGS[:-1], "2")
    assert again.returncode == 0, again.stderr
    assert "exist already" not in again.stderr
    assert load_cluster_model(str(out / "cluster-model.tscm")).k == 2
    assert max(int(labels(out / f"tile_{i}_labels.tif").max()) for i in (0, 1)) == 2
