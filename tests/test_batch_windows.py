"""Windows of a raster too large for one batch task (treeseg_plugin.batch.windows): cores and halos by hand."""

from __future__ import annotations

import pytest
from data_factory import ORIGIN, make_raster
from treeseg.treeseg_plugin.batch.windows import plan_parts
from treeseg.treeseg_plugin.engine import SegmentationConfig

PIXEL = 0.1  # make_raster's pixel size


def test_each_core_gets_a_halo_of_one_tiling_step_clipped_at_the_raster_edge(tmp_path):
    """Tile 64 px, overlap 16: the step (tile size minus twice the overlap, the module's docstring) is 32 px;
    a 128 px window is 4 steps, so the cores of a 320 x 256 raster start at x 0, 128, 256 and y 0, 128, and
    each part reaches 32 px beyond its core on every side that is not the raster's edge."""
    raster = make_raster(tmp_path / "big.tif", 320, 256)
    engine = SegmentationConfig("", "", tile_size=64, overlap=16)
    parts = plan_parts(str(raster), str(tmp_path / "out" / "big_labels.tif"), 128, engine)
    # (core x0, y0, width, height), (part's pixel columns x0..x1, rows y0..y1)
    expected = [
        ((0, 0, 128, 128), (0, 160, 0, 160)),
        ((128, 0, 128, 128), (96, 288, 0, 160)),
        ((256, 0, 64, 128), (224, 320, 0, 160)),
        ((0, 128, 128, 128), (0, 160, 96, 256)),
        ((128, 128, 128, 128), (96, 288, 96, 256)),
        ((256, 128, 64, 128), (224, 320, 96, 256)),
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
