"""Windows of a large raster in a batch run (batch/windows.py): where their tiles fall, and the stitch.

Real GDAL rasters; the expected tile origins are worked out by hand from the tiling rule (engine/encode/tiling.py:
tiles step by tile size minus overlap; the last one ends where the patch grid ends).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_factory import ORIGIN, make_raster
from osgeo import gdal
from treeseg.treeseg_plugin.batch.windows import plan_parts, stitch
from treeseg.treeseg_plugin.engine import SegmentationConfig
from treeseg.treeseg_plugin.engine.encode.tiling import axis_tiles

PIXEL = 0.1  # make_raster's pixel size

# 64 px tiles, overlap 16: step 48. Columns of 320 px (a 320 px patch grid): 0, 48, ..., 240, then the last
# 32 px tile at 288. Rows of 256 px: 0, 48, 96, 144, then the last 64 px tile at 192.
WHOLE_COLUMNS = {0, 48, 96, 144, 192, 240, 288}
WHOLE_ROWS = {0, 48, 96, 144, 192}


@pytest.mark.parametrize("stride", [16, 8])
def test_the_tiles_of_every_window_are_tiles_of_the_whole_raster(tmp_path, stride):
    raster = make_raster(tmp_path / "big.tif", 320, 256)
    engine = SegmentationConfig("", "", tile_size=64, overlap=16, stride=stride)
    parts = plan_parts(str(raster), str(tmp_path / "big_labels.tif"), 128, engine)
    assert len(parts) > 4
    origin_x, origin_y = gdal.Open(str(raster)).GetGeoTransform()[::3]
    for part in parts:
        x0, y0 = round((part.extent[0] - origin_x) / PIXEL), round((origin_y - part.extent[3]) / PIXEL)
        width, height = round((part.extent[2] - part.extent[0]) / PIXEL), \
            round((part.extent[3] - part.extent[1]) / PIXEL)
        assert (x0 + part.offset[0], y0 + part.offset[1]) == part.core[:2]
        columns = {x0 + tile.origin for tile in axis_tiles(width, 64, 16, stride)[1]}
        rows = {y0 + tile.origin for tile in axis_tiles(height, 64, 16, stride)[1]}
        assert columns <= WHOLE_COLUMNS and rows <= WHOLE_ROWS, (part.core, sorted(columns), sorted(rows))


def test_a_restitched_output_leaves_no_sidecar_of_the_old_one(tmp_path):
    """``--redo`` over an earlier output with overviews and statistics: the new raster has the parts' labels
    and no stale ``.ovr`` / ``.aux.xml`` of the old one beside it (they would show the old result)."""
    raster = make_raster(tmp_path / "big.tif", 320, 256)
    output = tmp_path / "big_labels.tif"
    labels = np.random.default_rng(0).integers(0, 5, (256, 320), dtype=np.uint8)
    parts = plan_parts(str(raster), str(output), 128, SegmentationConfig("", "", tile_size=64, overlap=16))
    origin_x, origin_y = gdal.Open(str(raster)).GetGeoTransform()[::3]
    for part in parts:
        x0, y0 = round((part.extent[0] - origin_x) / PIXEL), round((origin_y - part.extent[3]) / PIXEL)
        x1, y1 = round((part.extent[2] - origin_x) / PIXEL), round((origin_y - part.extent[1]) / PIXEL)
        Path(part.path).parent.mkdir(parents=True, exist_ok=True)
        ds = gdal.GetDriverByName("GTiff").Create(part.path, x1 - x0, y1 - y0, 1, gdal.GDT_Byte)
        ds.SetGeoTransform((part.extent[0], PIXEL, 0.0, part.extent[3], 0.0, -PIXEL))
        ds.GetRasterBand(1).WriteArray(labels[y0:y1, x0:x1])
        ds = None
        Path(part.path).with_suffix(".qml").write_text("<qgis/>")
    gdal.GetDriverByName("GTiff").Create(str(output), 320, 256, 1, gdal.GDT_Byte).FlushCache()
    gdal.Open(str(output)).BuildOverviews("NEAREST", [2])  # opened read-only: external overviews (.ovr)
    (tmp_path / "big_labels.tif.aux.xml").write_text("<PAMDataset><Metadata><MDI key='old'>1</MDI></Metadata>"
                                                     "</PAMDataset>")
    assert (tmp_path / "big_labels.tif.ovr").is_file()
    stitch(parts, str(output))
    assert np.array_equal(gdal.Open(str(output)).ReadAsArray(), labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif", "big_labels.qml", "big_labels.tif"]


def test_each_core_gets_a_halo_of_one_tiling_step_clipped_at_the_raster_edge(tmp_path):
    """Tile 64 px, overlap 16: the tiling step (tile size minus the overlap) is 48 px; a 128 px window rounds up
    to 3 steps, 144 px, so the cores of a 320 x 256 raster start at x 0, 144, 288 and y 0, 144. A part starts one
    step before its core (a whole-raster tile origin; earlier where the part would be shorter than a tile) and
    ends one tile after it, clipped at the raster's edge: core x 0..144 -> part 0..208, core x 144..288 -> 96..320
    (clipped), core x 288..320 -> 240..320."""
    raster = make_raster(tmp_path / "big.tif", 320, 256)
    engine = SegmentationConfig("", "", tile_size=64, overlap=16)
    parts = plan_parts(str(raster), str(tmp_path / "out" / "big_labels.tif"), 128, engine)
    # (core x0, y0, width, height), (part's pixel columns x0..x1, rows y0..y1)
    expected = [
        ((0, 0, 144, 144), (0, 208, 0, 208)),
        ((144, 0, 144, 144), (96, 320, 0, 208)),
        ((288, 0, 32, 144), (240, 320, 0, 208)),
        ((0, 144, 144, 112), (0, 208, 96, 256)),
        ((144, 144, 144, 112), (96, 320, 96, 256)),
        ((288, 144, 32, 112), (240, 320, 96, 256)),
    ]
    assert [part.core for part in parts] == [core for core, _ in expected]
    for part, (core, (x0, x1, y0, y1)) in zip(parts, expected):
        assert part.offset == (core[0] - x0, core[1] - y0)
        left, top = ORIGIN[0] + x0 * PIXEL, ORIGIN[1] - y0 * PIXEL
        right, bottom = ORIGIN[0] + x1 * PIXEL, ORIGIN[1] - y1 * PIXEL
        assert part.extent == pytest.approx((left, bottom, right, top), abs=PIXEL / 100), core


def test_a_raster_within_the_window_is_one_task(tmp_path):
    raster = make_raster(tmp_path / "small.tif", 128, 96)
    parts = plan_parts(str(raster), str(tmp_path / "labels.tif"), 128, SegmentationConfig("", "", tile_size=64,
                                                                                          overlap=16))
    assert [(part.path, part.extent, part.core, part.offset) for part in parts] == \
        [(str(tmp_path / "labels.tif"), None, (0, 0, 128, 96), (0, 0))]


@pytest.mark.parametrize("width, height", [(320, 96), (96, 320)])
def test_a_raster_larger_than_the_window_on_one_side_only_is_split_along_that_side(tmp_path, width, height):
    """Tile 64 px, overlap 16, window 128 -> cores of 144 px (3 steps of 48): the long side of 320 px is cut at 0,
    144, 288 (cores of 144, 144 and 32 px), the short side of 96 px stays one core."""
    raster = make_raster(tmp_path / "long.tif", width, height)
    parts = plan_parts(str(raster), str(tmp_path / "labels.tif"), 128, SegmentationConfig("", "", tile_size=64,
                                                                                          overlap=16))
    along = [(0, 144), (144, 144), (288, 32)]
    expected = [(start, 0, size, 96) if width > height else (0, start, 96, size) for start, size in along]
    assert [part.core for part in parts] == expected
    assert all(part.path != str(tmp_path / "labels.tif") for part in parts)
