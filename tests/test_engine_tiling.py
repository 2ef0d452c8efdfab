"""Tile grid maths, reflection indices, patch cells and interpolation weights (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from treeseg.treeseg_plugin.engine.cluster.kmeans import squared_distances
from treeseg.treeseg_plugin.engine.cluster.labels import axis_weights, block_labels
from treeseg.treeseg_plugin.engine.encode.features import FeatureStore
from treeseg.treeseg_plugin.engine.encode.tiling import (
    PATCH,
    axis_tiles,
    cell_of,
    cell_valid_fraction,
    grid_length,
    patch_centre,
    plan_tiles,
)
from treeseg.treeseg_plugin.engine.raster.pixels import reflect_indices


def _check_axis(size: int, tile: int, overlap: int, stride: int) -> None:
    length, tiles = axis_tiles(size, tile, overlap, stride)
    n = grid_length(size, stride)
    assert length % 16 == 0 and 16 <= length <= tile
    assert (n - 1) * stride + PATCH >= size  # the patches cover the whole axis
    assert tiles[0].origin == 0 and tiles[0].keep_start == 0 and tiles[-1].keep_stop == n
    for left, right in zip(tiles, tiles[1:]):
        assert left.keep_stop == right.keep_start  # every patch kept exactly once
        assert right.origin > left.origin
        assert right.origin <= left.origin + left.length - overlap  # tiles overlap at least by `overlap`
    assert all(t.length == length for t in tiles[:-1])
    assert tiles[-1].length % 16 == 0 and tiles[-1].length <= length
    assert len(tiles) == 1 or tiles[-1].length >= length // 2  # a short last tile keeps half a tile of context
    for t in tiles:
        assert t.origin % stride == 0  # tile patches fall on the global grid
        assert t.keep_start < t.keep_stop
        first, last = t.origin // stride, t.origin // stride + (t.length - PATCH) // stride
        assert first <= t.keep_start and t.keep_stop - 1 <= last  # kept patches lie inside the tile
    assert tiles[-1].origin + tiles[-1].length == max(length, (n - 1) * stride + PATCH)  # ends at the grid's end


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 3000), tile_units=st.integers(1, 40), overlap_units=st.integers(0, 19),
       stride=st.sampled_from([16, 8, 4]))
def test_axis_tiles_cover_each_patch_once(size, tile_units, overlap_units, stride):
    tile, overlap = tile_units * 16, overlap_units * 16
    assume(overlap * 2 < tile and (stride == 16 or overlap >= 16))  # the settings validate_config accepts
    _check_axis(size, tile, overlap, stride)


@pytest.mark.parametrize("size", [1, 5, 15])
@pytest.mark.parametrize("stride", [16, 8, 4])
def test_raster_smaller_than_a_patch_gets_one_16px_tile(size, stride):
    length, tiles = axis_tiles(size, 512, 64, stride)
    assert length == 16 and len(tiles) == 1 and grid_length(size, stride) == 1


def test_raster_smaller_than_a_tile_gets_one_shrunk_tile():
    length, tiles = axis_tiles(400, 512, 64, 16)
    assert (length, len(tiles), tiles[0].keep_stop) == (400, 1, 25)
    length, tiles = axis_tiles(401, 512, 64, 16)
    assert (length, len(tiles), tiles[0].keep_stop) == (416, 1, 26)


def test_exactly_one_tile_and_one_more_pixel():
    assert len(axis_tiles(512, 512, 64, 16)[1]) == 1
    length, tiles = axis_tiles(513, 512, 64, 16)
    assert length == 512 and len(tiles) == 2
    # The grid ends at 528: the second tile is half a tile long, pulled back to end there.
    assert (tiles[1].origin, tiles[1].length) == (272, 256)


def test_last_tile_is_only_as_long_as_the_rest_of_the_grid():
    _, tiles = axis_tiles(2299, 384, 32, 16)  # the bench raster's width: 7 tiles, step 352
    assert [t.origin for t in tiles] == [0, 352, 704, 1056, 1408, 1760, 2112]
    assert [t.length for t in tiles] == [384] * 6 + [192]  # 2112 + 192 = 2304, the grid's end
    assert sum(t.length for t in tiles) < 7 * 384  # fewer pixels encoded than 7 full tiles


def test_overlap_is_split_in_the_middle():
    _, tiles = axis_tiles(2000, 512, 64, 16)
    assert [t.origin for t in tiles[:3]] == [0, 448, 896]
    # boundary between tile 0 and 1 is at pixel 448 + 32: patch centres >= 480 go to tile 1
    assert tiles[0].keep_stop == 30 and patch_centre(30, 16) >= 480 > patch_centre(29, 16)


def test_plan_tiles_grid_and_order():
    plan = plan_tiles(700, 1000, 256, 32, 8)
    assert plan.grid_rows == grid_length(700, 8) and plan.grid_cols == grid_length(1000, 8)
    assert plan.tile_grid == ((256 - 16) // 8 + 1,) * 2
    rows = sorted({t.row.origin for t in plan.tiles})
    cols = sorted({t.col.origin for t in plan.tiles})
    assert len(plan.tiles) == len(rows) * len(cols)
    assert plan.tiles[0].row.origin == 0 and plan.tiles[1].row.origin == 0  # row-major


def test_reflect_indices_repeat_for_tiny_rasters():
    assert reflect_indices(-3, 10, 4).tolist() == [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]
    assert reflect_indices(-2, 5, 1).tolist() == [0] * 5
    assert reflect_indices(3, 6, 5).tolist() == [3, 4, 4, 3, 2, 1]


@pytest.mark.parametrize("stride", [16, 8, 4])
def test_cells_partition_the_axis(stride):
    size = 123
    n = grid_length(size, stride)
    cells = cell_of(np.arange(size), stride, n)
    assert cells[0] == 0 and cells[-1] == n - 1
    assert np.all(np.diff(cells) >= 0) and set(cells.tolist()) == set(range(n))
    centres = np.array([patch_centre(i, stride) for i in range(n)])
    nearest = np.clip(np.abs((np.arange(size) + 0.5)[:, None] - centres[None, :]).argmin(axis=1), 0, n - 1)
    assert np.array_equal(cells, nearest)


def test_cell_valid_fraction_counts_only_window_pixels():
    plan = plan_tiles(40, 40, 512, 64, 16)
    tile = plan.tiles[0]
    valid = np.zeros((40 + 32, 48 + 32), dtype=bool)  # read region: tile 48 px + 16 px border each side
    valid[16:16 + 16, 16:16 + 16] = True  # window pixels [0, 16) x [0, 16): all of patch (0, 0)'s cell
    valid[16 + 16:16 + 24, 16:16 + 16] = True  # half of patch (1, 0)'s 16 px cell
    fraction = cell_valid_fraction(valid, -16, -16, plan, tile)
    assert fraction.shape == (plan.grid_rows, plan.grid_cols) == (3, 3)
    assert fraction[0, 0] == 1.0 and fraction[1, 0] == 0.5 and fraction[0, 1] == 0.0


def test_axis_weights_interpolate_between_centres_and_clamp():
    lo, hi, w = axis_weights(0, 48, 16, 3)
    assert (lo[0], hi[0]) == (0, 0)  # before the first centre: clamped to patch 0
    assert (lo[8], hi[8], float(w[8])) == (0, 1, pytest.approx(0.5 / 16))
    assert (lo[24], hi[24]) == (1, 2)
    assert (lo[47], hi[47]) == (2, 2)  # after the last centre: clamped


@pytest.mark.parametrize(("top", "left", "h", "w"), [(0, 0, 40, 56), (13, 29, 37, 50), (60, 90, 20, 22)])
def test_block_labels_are_the_nearest_centroid_to_bilinear_distances(tmp_path, top, left, h, w):
    rng = np.random.default_rng(top)
    rows, cols, dim, k = 5, 7, 6, 4
    features = rng.standard_normal((rows, cols, dim)).astype(np.float16)
    centroids = rng.standard_normal((k, dim)).astype(np.float32)
    valid = rng.random((h, w)) > 0.2
    with FeatureStore(str(tmp_path), rows, cols, dim) as store:
        store.write(0, 0, features, np.ones((rows, cols), dtype=bool))
        labels = block_labels(store, centroids, squared_distances, 16, top, left, valid)
    patch_distances = squared_distances(features.astype(np.float32).reshape(-1, dim), centroids).reshape(rows, cols, k)
    expected = np.zeros((h, w), dtype=np.uint8)
    for i in range(h):
        for j in range(w):
            t_row, t_col = (top + i + 0.5 - 8) / 16, (left + j + 0.5 - 8) / 16
            r, c = int(np.floor(t_row)), int(np.floor(t_col))
            a, b = np.float32(t_row - r), np.float32(t_col - c)
            r0, r1 = np.clip([r, r + 1], 0, rows - 1)
            c0, c1 = np.clip([c, c + 1], 0, cols - 1)
            upper = patch_distances[r0, c0] * (1 - b) + patch_distances[r0, c1] * b
            lower = patch_distances[r1, c0] * (1 - b) + patch_distances[r1, c1] * b
            interpolated = upper * (1 - a) + lower * a
            expected[i, j] = 1 + int(np.argmin(interpolated)) if valid[i, j] else 0
    mismatched = np.count_nonzero(labels != expected)
    assert labels.dtype == np.uint8 and labels.shape == (h, w)
    assert mismatched <= 2, f"{mismatched} of {h * w} pixels differ"  # rounding of near-ties only
    assert set(np.unique(labels[valid])) <= set(range(1, k + 1)) and not labels[~valid].any()


@pytest.mark.parametrize(("centroids", "label"), [([[1, 0], [1, 0], [9, 9]], 1), ([[9, 9], [1, 2], [1, 2]], 2)])
def test_equally_near_centroids_give_the_lower_label(tmp_path, centroids, label):
    """Two identical centroids are equally near every pixel: the tie goes to the lower label (1 = the biggest
    cluster), never the higher."""
    features = np.tile(np.asarray(centroids[label - 1], np.float16), (2, 3, 1))
    with FeatureStore(str(tmp_path), 2, 3, 2) as store:
        store.write(0, 0, features, np.ones((2, 3), dtype=bool))
        labels = block_labels(store, np.asarray(centroids, np.float32), squared_distances, 16, 0, 0,
                              np.ones((32, 48), dtype=bool))
    assert labels.shape == (32, 48) and bool((labels == label).all())
