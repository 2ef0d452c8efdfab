"""Canopy Height's engine (engine/canopy_height*.py) on real GeoTIFFs with random-weight CHMv2 checkpoints."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal
from treeseg.treeseg_plugin.dinov3.chmv2.config import CHMV2_MEAN, CHMV2_STD
from treeseg.treeseg_plugin.dinov3.chmv2.loading import load_canopy_height_model
from treeseg.treeseg_plugin.engine.errors import Canceled, EngineError
from treeseg.treeseg_plugin.engine.jobs.canopy_height import NODATA, CanopyHeightConfig, CanopyHeightResult
from treeseg.treeseg_plugin.engine.runs.canopy_height import STAGES, run_canopy_height

from tests.chmv2_factory import write_hf_chmv2, write_meta_chmv2
from tests.data_factory import make_raster
from tests.recording_progress import Log

pytest.importorskip("transformers")
SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"


@pytest.fixture(scope="module")
def chm_and_reference(tmp_path_factory):
    """(HF folder, Meta decoder, Meta backbone) of one random tiny CHMv2, and transformers' model of it (K bias
    zero and LayerNorm eps 1e-5, as Meta's layout has them, so that both layouts are the same model)."""
    root = tmp_path_factory.mktemp("chm")
    folder, model = write_hf_chmv2(root / "hf", seed=7, k_bias=False, layer_norm_eps=1e-5)
    return (folder, *write_meta_chmv2(root / "meta", model)), model


@pytest.fixture(scope="module")
def chm(chm_and_reference):
    return chm_and_reference[0]


@pytest.fixture(scope="module")
def reference(chm_and_reference):
    """transformers' CHMv2ForDepthEstimation: the expected heights come from it, not from the loader under test."""
    return chm_and_reference[1]


def _config(chm, tmp_path, input_path, **settings) -> CanopyHeightConfig:
    _, decoder, backbone = chm
    return CanopyHeightConfig(str(input_path), str(tmp_path / "out" / "heights.tif"), model=str(decoder),
                              backbone=str(backbone), device="cpu", precision="fp32", **settings)


def _read(path: str):
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    return ds, band, band.ReadAsArray()


def test_resampled_to_the_training_resolution_and_back_onto_the_input_grid(chm, tmp_path):
    log = Log()
    result = run_canopy_height(_config(chm, tmp_path, SAMPLE, tile_size=32, overlap=0), log)
    assert "Resampled the input from 0.1 m (400 x 400 px) to 1 m (CHMv2's training resolution) (40 x 40 px" \
        in log.text
    # ground metres: UTM's scale factor (0.9996 on the central meridian) makes the sample's 0.1 m grid 0.10003 m
    assert result.resampled and result.input_resolution_m == pytest.approx(0.1, rel=1e-3) \
        and result.model_resolution_m == 1
    ds, band, heights = _read(result.output_path)
    source = gdal.Open(str(SAMPLE))
    assert (ds.RasterXSize, ds.RasterYSize) == (400, 400)
    assert ds.GetGeoTransform() == source.GetGeoTransform()
    assert ds.GetSpatialRef().IsSame(source.GetSpatialRef())
    assert band.DataType == gdal.GDT_Float32 and band.GetNoDataValue() == NODATA
    valid = heights != NODATA
    assert valid.sum() == result.valid_pixels > 0 and bool(np.isfinite(heights).all())
    assert heights[valid].min() > 0 and heights[valid].max() <= 96
    assert os.path.isfile(result.style_path) and "singlebandpseudocolor" in Path(result.style_path).read_text()
    assert log.stages == ["Reading input", "Loading model", "Predicting heights", "Writing heights"]
    assert CanopyHeightResult.from_json(result.to_json()) == result


def _model_heights(reference, rgb: np.ndarray) -> np.ndarray:
    """What transformers' CHMv2 predicts for one RGB image [3, H, W] in 0..1 (with CHMv2's normalisation)."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (CHMV2_MEAN, CHMV2_STD))
    with torch.inference_mode():
        return reference(pixel_values=(torch.from_numpy(rgb)[None] - mean) / std).predicted_depth[0].numpy()


def test_each_stages_time_is_reported(chm, tmp_path):
    """The result carries each stage's wall and CPU seconds and the run's total (through JSON, as on the worker
    pipe), and the log says them in one line."""
    log = Log()
    result = run_canopy_height(_config(chm, tmp_path, SAMPLE, tile_size=32, overlap=0), log)
    assert list(result.timings_s) == list(result.cpu_s) == [*STAGES, "total"]
    for seconds in (result.timings_s, result.cpu_s):
        assert all(value >= 0 for value in seconds.values())
        assert sum(value for name, value in seconds.items() if name != "total") <= seconds["total"] + 0.01
    assert result.cpu_s["Predicting heights"] > 0  # the model ran in this process
    line = next(line for line in log.lines if line.startswith("Time per stage"))
    assert all(re.search(rf"{name} \d+\.\d\d / \d+\.\d\d\b", line) for name in [*STAGES, "total"]), line
    assert CanopyHeightResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_native_resolution_single_tile_equals_the_model(chm, reference, tmp_path):
    """Resolution 0 and one tile: the raster holds exactly what the model predicts for the image."""
    path = make_raster(tmp_path / "in.tif", 96, 64)  # transformers' CHMv2 keeps this size (not 64 x 48)
    result = run_canopy_height(_config(chm, tmp_path, path, resolution=0, tile_size=96, overlap=0), Log())
    _, _, heights = _read(result.output_path)
    rgb = gdal.Open(str(path)).ReadAsArray().astype(np.float32) / 255
    assert not result.resampled
    assert np.abs(heights - _model_heights(reference, rgb)).max() <= 1e-4


def test_overlapping_tiles_cross_fade(chm, reference, tmp_path):
    """Two 64 px tiles over 112 px (columns 0-63 and 48-111): each alone where it alone covers the raster,
    and in the 16 px overlap a linear cross-fade between them, so no seam: the tiles disagree there."""
    path = make_raster(tmp_path / "in.tif", 112, 64)
    result = run_canopy_height(_config(chm, tmp_path, path, resolution=0, tile_size=64, overlap=16), Log())
    _, _, heights = _read(result.output_path)
    rgb = gdal.Open(str(path)).ReadAsArray().astype(np.float32) / 255
    first, second = _model_heights(reference, rgb[:, :, :64]), _model_heights(reference, rgb[:, :, 48:])
    rising = (np.arange(16) + 0.5) / 16  # the second tile's weight over the overlap
    expected = np.concatenate([first[:, :48], first[:, 48:] * (1 - rising) + second[:, :16] * rising,
                               second[:, 16:]], axis=1)
    assert np.abs(first[:, 48:] - second[:, :16]).max() > 0.1
    assert np.abs(heights - expected).max() <= 1e-4


def test_nodata_is_kept(chm, tmp_path):
    invalid = np.zeros((96, 160), dtype=bool)
    invalid[10:30, 40:90] = True
    path = make_raster(tmp_path / "in.tif", 160, 96, nodata=0, invalid=invalid)
    result = run_canopy_height(_config(chm, tmp_path, path, tile_size=64, overlap=16), Log())
    _, _, heights = _read(result.output_path)
    invalid = (gdal.Open(str(path)).ReadAsArray() == 0).any(axis=0)  # the block, and any band at NoData 0
    assert invalid[10:30, 40:90].all() and invalid.mean() < 0.5
    assert bool((heights[invalid] == NODATA).all()) and bool((heights[~invalid] != NODATA).all())
    assert result.valid_pixels == int((~invalid).sum())


def test_no_crs_needs_resolution_zero(chm, tmp_path):
    path = make_raster(tmp_path / "in.tif", 64, 64, epsg=None)
    with pytest.raises(EngineError, match=r"pixel size in metres is unknown.*resolution to 0"):
        run_canopy_height(_config(chm, tmp_path, path), Log())
    assert not (tmp_path / "out").exists()


def test_bad_settings_and_missing_backbone(chm, tmp_path):
    with pytest.raises(EngineError, match="Resolution -1"):
        run_canopy_height(_config(chm, tmp_path, SAMPLE, resolution=-1), Log())
    config = _config(chm, tmp_path, SAMPLE)
    config.backbone = None
    with pytest.raises(EngineError, match="decoder without a backbone"):
        run_canopy_height(config, Log())


def test_cancel_leaves_nothing(chm, tmp_path):
    log = Log()
    log.on_stage["Writing heights"] = lambda: setattr(log, "is_canceled", lambda: True)
    with pytest.raises(Canceled):
        run_canopy_height(_config(chm, tmp_path, SAMPLE, tile_size=32, overlap=0), log)
    out = tmp_path / "out"
    assert not out.exists() or os.listdir(out) == []


def test_extent_gives_the_snapped_window_grid(chm, tmp_path):
    gt = gdal.Open(str(SAMPLE)).GetGeoTransform()
    extent = (gt[0] + 10.05, gt[3] - 30.0, gt[0] + 25.0, gt[3] - 12.02)  # x 100.5..250 px, y 120.2..300 px
    result = run_canopy_height(_config(chm, tmp_path, SAMPLE, extent=extent, tile_size=32, overlap=0), Log())
    ds, _, heights = _read(result.output_path)
    assert (ds.RasterXSize, ds.RasterYSize) == (150, 180)
    assert ds.GetGeoTransform() == pytest.approx((gt[0] + 10.0, 0.1, 0.0, gt[3] - 12.0, 0.0, -0.1))
    assert heights.shape == (180, 150) and bool(np.isfinite(heights).all())


def test_nodata_inside_an_extent_is_the_inputs_nodata_there(chm, tmp_path):
    """With an extent the window starts at input pixel (50, 40): NoData in the output is the input's NoData
    block [60:90, 100:160] seen from there, rows 20..50 and columns 50..110."""
    invalid = np.zeros((200, 300), dtype=bool)
    invalid[60:90, 100:160] = True
    path = make_raster(tmp_path / "in.tif", 300, 200, nodata=0, invalid=invalid)
    gt = gdal.Open(str(path)).GetGeoTransform()
    extent = (gt[0] + 5.0, gt[3] - 17.0, gt[0] + 25.0, gt[3] - 4.0)  # x 50..250 px, y 40..170 px
    result = run_canopy_height(_config(chm, tmp_path, path, extent=extent, resolution=0, tile_size=64, overlap=0),
                               Log())
    _, _, heights = _read(result.output_path)
    expected = (gdal.Open(str(path)).ReadAsArray() == 0).any(axis=0)[40:170, 50:250]
    assert expected[20:50, 50:110].all() and expected.mean() < 0.5
    assert heights.shape == (130, 200) and bool(((heights == NODATA) == expected).all())
    assert result.valid_pixels == int((~expected).sum())


def test_the_summary_is_the_written_heights_min_mean_and_max(chm, tmp_path):
    """height_min / mean / max are those of every valid pixel GDAL reads back from the output (400 x 400 px:
    several blocks, so the minimum and maximum are not just the last block's)."""
    result = run_canopy_height(_config(chm, tmp_path, SAMPLE, tile_size=32, overlap=0), Log())
    _, _, heights = _read(result.output_path)
    values = heights[heights != NODATA].astype(np.float64)
    assert result.valid_pixels == values.size > 0
    assert result.height_min == pytest.approx(values.min(), abs=1e-5)
    assert result.height_max == pytest.approx(values.max(), abs=1e-5)
    assert result.height_mean == pytest.approx(values.mean(), abs=1e-4)


@pytest.mark.parametrize(("error", "start"), [
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Out of memory (CUDA out of memory"),
    (OSError(errno.ENOSPC, "No space left on device"), "Cannot write the height raster: [Errno 28]"),
])
def test_out_of_memory_and_a_full_disk_become_engine_errors(chm, tmp_path, error, start):
    def fail() -> None:
        raise error

    log = Log()
    log.on_stage["Predicting heights"] = fail
    path = make_raster(tmp_path / "in.tif", 64, 48)
    with pytest.raises(EngineError) as raised:
        run_canopy_height(_config(chm, tmp_path, path, resolution=0, tile_size=64, overlap=0), log)
    assert str(raised.value).startswith(start), raised.value
    assert not (tmp_path / "out").exists()


def test_a_nan_nodata_hole_is_the_normalisation_mean_for_the_model(chm, tmp_path):
    """A Float32 orthophoto with a NaN NoData hole: the model sees the hole as the normalisation mean (0 after
    normalising), as the segmentation's backbone does, so the valid pixels around it get finite heights, those
    the model gives for that image, and the summary is that of the written heights."""
    invalid = np.zeros((48, 64), dtype=bool)
    invalid[12:30, 20:44] = True
    path = make_raster(tmp_path / "in.tif", 64, 48, dtype="Float32", nodata=float("nan"), invalid=invalid)
    result = run_canopy_height(_config(chm, tmp_path, path, resolution=0, tile_size=64, overlap=0), Log())
    _, _, heights = _read(result.output_path)
    assert bool((heights[invalid] == NODATA).all()) and bool(np.isfinite(heights).all())
    # By hand: each band stretched between the 2nd and 98th percentiles of its valid values, then clipped.
    raw = gdal.Open(str(path)).ReadAsArray().astype(np.float64)
    rgb = np.empty(raw.shape, dtype=np.float32)
    for band, values in enumerate(raw):
        low, high = np.percentile(values[~invalid], (2, 98))
        rgb[band] = np.clip((values - low) / (high - low), 0, 1)
    _, decoder, backbone = chm
    model = load_canopy_height_model(decoder, backbone=backbone)
    mean, std = (np.asarray(v, dtype=np.float32).reshape(3, 1, 1) for v in (model.mean, model.std))
    image = (rgb - mean) / std
    image[:, invalid] = 0.0
    expected = model(torch.from_numpy(image)[None])[0].numpy()
    assert np.abs(heights[~invalid] - expected[~invalid]).max() <= 1e-4
    valid_heights = heights[~invalid].astype(np.float64)
    assert result.valid_pixels == int((~invalid).sum())
    assert result.height_min == pytest.approx(valid_heights.min(), abs=1e-6)
    assert result.height_mean == pytest.approx(valid_heights.mean(), rel=1e-5)
    assert result.height_max == pytest.approx(valid_heights.max(), abs=1e-6)


class OomAbove:
    """The real CHMv2 model, except that calls on more than ``limit`` images raise CUDA's OOM error (limit 0:
    every call does). Records the batch sizes it was called with."""

    def __init__(self, model, limit: int) -> None:
        self._model, self.limit, self.calls = model, limit, []

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(images.shape[0])
        if images.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self._model(images)


def _oom_above(monkeypatch, limit: int) -> list:
    from treeseg.treeseg_plugin.engine.runs import canopy_height as run
    made: list = []
    real = run.load_chmv2

    def load(config, progress):
        model, device, precision = real(config, progress)
        made.append(OomAbove(model, limit))
        return made[-1], device, precision

    monkeypatch.setattr(run, "load_chmv2", load)
    return made


def test_out_of_memory_halves_the_batch_and_retries(chm, tmp_path, monkeypatch):
    """Six 32 x 32 tiles, batch 4, a model that fits one image only: 4 and 2 run out of memory, then every
    tile runs alone, giving the heights of a run at batch 1."""
    path = make_raster(tmp_path / "in.tif", 96, 64, kind="blobs")
    settings = {"resolution": 0, "tile_size": 32, "overlap": 0}
    expected = run_canopy_height(_config(chm, tmp_path / "one", path, batch_size=1, **settings), Log())
    made = _oom_above(monkeypatch, limit=1)
    log = Log()
    result = run_canopy_height(_config(chm, tmp_path / "oom", path, batch_size=4, **settings), log)
    assert made[0].calls == [4, 2, 1, 1, 1, 1, 1, 1]
    assert [w for w in log.warnings if w.startswith("Out of memory")] == [
        "Out of memory on cpu with 4 tiles per batch; retrying with 2.",
        "Out of memory on cpu with 2 tiles per batch; retrying with 1."]
    assert np.array_equal(_read(result.output_path)[2], _read(expected.output_path)[2])


def test_out_of_memory_with_one_tile_stops_with_advice(chm, tmp_path, monkeypatch):
    made = _oom_above(monkeypatch, limit=0)
    path = make_raster(tmp_path / "in.tif", 96, 64, kind="blobs")
    with pytest.raises(EngineError) as raised:
        run_canopy_height(_config(chm, tmp_path, path, resolution=0, tile_size=32, overlap=0, batch_size=2), Log())
    message = str(raised.value)
    assert message.startswith("The model ran out of memory on cpu even with one 32 x 32 px tile per batch (fp32; ")
    assert "smaller TILE_SIZE or a lower PRECISION" in message and "smaller model" not in message
    assert made[0].calls == [2, 1]
    assert not (tmp_path / "out").exists()
