"""Reading: band choice, masks, NoData, percentile stretch, reflection, extent snapping, areas."""

from __future__ import annotations

import numpy as np
import pytest
from data_factory import ORIGIN, make_raster
from osgeo import gdal
from recording_progress import Log
from treeseg.treeseg_plugin.engine import EngineError
from treeseg.treeseg_plugin.engine.raster.georef import Window, window_geotransform, working_window
from treeseg.treeseg_plugin.engine.raster.input import InputRaster
from treeseg.treeseg_plugin.engine.raster.pixels import RasterSource


def _source(path, bands=None, log=None) -> RasterSource:
    """The whole raster's RGB, as the pipeline makes it (the stretch fitted on the way)."""
    log = log or Log()
    raster = InputRaster(str(path), bands, log)
    return RasterSource(raster, Window(0, 0, raster.width, raster.height), log, lambda fraction: None)


def test_default_bands_first_three_and_warning_for_more(tmp_path):
    log = Log()
    src = _source(make_raster(tmp_path / "a.tif", 20, 20, bands=5), log=log)
    assert src.bands == (1, 2, 3)
    assert any("5 image bands" in w for w in log.warnings)


def test_single_band_is_repeated(tmp_path):
    src = _source(make_raster(tmp_path / "a.tif", 20, 20, bands=1))
    assert src.bands == (1, 1, 1)
    rgb, valid = src.read(0, 0, 20, 20)
    assert rgb.shape == (3, 20, 20) and np.array_equal(rgb[0], rgb[2]) and valid.all()


def test_band_selection_and_out_of_range(tmp_path):
    path = make_raster(tmp_path / "a.tif", 20, 20, bands=4)
    assert _source(path, [4, 2, 1]).bands == (4, 2, 1)
    assert _source(path, [2]).bands == (2, 2, 2)
    with pytest.raises(EngineError, match="Band 7 does not exist: this raster has bands 1 to 4"):
        _source(path, [1, 2, 7])


def test_open_failure_is_an_engine_error(tmp_path):
    (tmp_path / "x.tif").write_text("not a raster")
    with pytest.raises(EngineError, match=r"Cannot open .* as a raster"):
        _source(tmp_path / "x.tif")
    with pytest.raises(EngineError, match="Cannot open"):
        _source(tmp_path / "missing.tif")


def test_byte_is_divided_by_255_and_nodata_is_invalid(tmp_path):
    invalid = np.zeros((10, 12), bool)
    invalid[2:4, 3:5] = True
    data = np.full((3, 10, 12), 51, np.uint8)
    path = make_raster(tmp_path / "a.tif", 12, 10, data=data, nodata=255, invalid=invalid)
    rgb, valid = _source(path).read(0, 0, 12, 10)
    assert np.allclose(rgb[:, ~invalid], 0.2)
    assert np.array_equal(valid, ~invalid)


def test_alpha_band_zero_is_invalid_and_not_a_colour(tmp_path):
    alpha = np.full((10, 12), 255, np.uint8)
    alpha[:, :4] = 0
    src = _source(make_raster(tmp_path / "a.tif", 12, 10, alpha=alpha))
    assert src.bands == (1, 2, 3) and src.raster.alpha_band == 4
    _, valid = src.read(0, 0, 12, 10)
    assert not valid[:, :4].any() and valid[:, 4:].all()
    assert "alpha band 4" in src.raster.describe_masks()


def test_gdal_mask_band_zero_is_invalid(tmp_path):
    mask = np.ones((10, 12), bool)
    mask[5:, :] = False
    src = _source(make_raster(tmp_path / "a.tif", 12, 10, mask=mask))
    _, valid = src.read(0, 0, 12, 10)
    assert np.array_equal(valid, mask)
    assert "dataset mask" in src.raster.describe_masks()


@pytest.mark.parametrize("dtype", ["UInt16", "Int16", "Float32", "UInt32", "Float64"])
def test_percentile_stretch(tmp_path, dtype):
    invalid = np.zeros((64, 64), bool)
    invalid[:8] = True
    nodata = {"UInt16": 0, "Int16": -32768, "UInt32": 0}.get(dtype)  # floats: NaN, no NoData declared
    path = make_raster(tmp_path / "a.tif", 64, 64, dtype=dtype, nodata=nodata, invalid=invalid, kind="noise")
    log = Log()
    src = _source(path, log=log)
    assert set(src.stretch) == {1, 2, 3}
    ds = gdal.Open(str(path))
    values = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)[8:]
    ds = None
    low, high = np.percentile(values, [2, 98])
    assert src.stretch[1].low == pytest.approx(low) and src.stretch[1].high == pytest.approx(high)
    assert any("percentiles" in line for line in log.lines)
    rgb, valid = src.read(0, 0, 64, 64)
    assert np.array_equal(valid, ~invalid)
    assert rgb[:, valid].min() == 0.0 and rgb[:, valid].max() == 1.0
    assert np.isfinite(rgb[:, valid]).all()


def test_byte_needs_no_stretch(tmp_path):
    src = _source(make_raster(tmp_path / "a.tif", 20, 20))
    assert src.stretch == {}


def test_no_value_is_read_before_the_stretch(tmp_path):
    """The opened raster gives raw values only; RGB comes from a source, whose stretch exists from the start."""
    values = np.tile(np.linspace(1000, 5000, 64), (3, 64, 1)).astype(np.uint16)
    path = make_raster(tmp_path / "a.tif", 64, 64, dtype="UInt16", data=values)
    raster = InputRaster(str(path), None, Log())
    assert not hasattr(raster, "read") and not hasattr(raster, "stretch")
    rgb, _ = RasterSource(raster, Window(0, 0, 64, 64), Log(), lambda fraction: None).read(0, 0, 64, 64)
    low, high = np.percentile(values[0].astype(np.float64), [2, 98])
    expected = np.clip((values.astype(np.float64) - low) / (high - low), 0, 1)
    assert np.allclose(rgb, expected, atol=1e-6)  # not the UInt16 values / 255 (up to 19.6)


def test_read_mirrors_beyond_the_raster(tmp_path):
    data = np.arange(3 * 5 * 7, dtype=np.uint8).reshape(3, 5, 7)
    src = _source(make_raster(tmp_path / "a.tif", 7, 5, data=data))
    rgb, valid = src.read(-2, -1, 11, 8)
    expected = data[:, [0, 0, 1, 2, 3, 4, 4, 3]][:, :, [1, 0, 0, 1, 2, 3, 4, 5, 6, 6, 5]] / 255.0
    assert np.allclose(rgb, expected) and valid.all()


def test_extent_snaps_outward_and_is_clipped():
    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1], 0.0, -0.5)
    w = working_window(gt, 100, 80, (ORIGIN[0] + 1.2, ORIGIN[1] - 3.9, ORIGIN[0] + 2.0, ORIGIN[1] - 1.01))
    assert (w.x0, w.y0, w.width, w.height) == (2, 2, 2, 6)
    on_grid = working_window(gt, 100, 80, (ORIGIN[0] + 1.0, ORIGIN[1] - 4.0, ORIGIN[0] + 2.0, ORIGIN[1] - 1.0))
    assert (on_grid.x0, on_grid.y0, on_grid.width, on_grid.height) == (2, 2, 2, 6)
    clipped = working_window(gt, 100, 80, (ORIGIN[0] - 10, ORIGIN[1] - 1.0, ORIGIN[0] + 1.0, ORIGIN[1] + 10))
    assert (clipped.x0, clipped.y0, clipped.width, clipped.height) == (0, 0, 2, 2)
    assert window_geotransform(gt, w) == (ORIGIN[0] + 1.0, 0.5, 0.0, ORIGIN[1] - 1.0, 0.0, -0.5)


def test_extent_outside_the_raster_is_an_error():
    gt = (ORIGIN[0], 0.5, 0.0, ORIGIN[1], 0.0, -0.5)
    with pytest.raises(EngineError, match="does not overlap the raster"):
        working_window(gt, 100, 80, (0.0, 0.0, 10.0, 10.0))
