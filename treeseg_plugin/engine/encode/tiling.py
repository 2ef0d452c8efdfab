"""Tile grid maths: the global patch grid of the working window and the tiles that cover it.

Geometry (all in pixels relative to the working window's top-left corner, ``s`` = stride):

* Patch ``(r, c)`` of the global grid covers pixels ``[r*s, r*s+16) x [c*s, c*s+16)``; its centre is
  at ``(r*s + 8, c*s + 8)``. The grid has ``max(1, ceil((n - 16) / s) + 1)`` patches along an axis of
  ``n`` pixels, so the patches cover the whole window; anything beyond the raster is mirrored.
* Tiles are ``tile`` pixels long (shrunk to the multiple of 16 that covers a smaller window), start
  on multiples of the stride (so tile patches fall exactly on the global grid) and step by
  ``tile - overlap``. The last tile along an axis is only as long as the rest of the grid needs (a
  multiple of 16, at least half a tile) and ends at the grid's end, so no pixel is encoded twice
  beyond the overlaps.
* Each patch is *kept* from exactly one tile: consecutive tiles split their overlap in the middle,
  and the first/last tile keep everything up to the window edge. With ``overlap`` >= 16 (or stride
  16) every kept patch lies inside its tile, with at least ``overlap/2 - 8`` px of context.
* A patch's *cell* is the set of pixels nearer to its centre than to any other centre (the first
  and last cells reach the window edges). A patch counts as valid for the fit when more than half
  of its cell's pixels are valid.
* A pixel's label depends on the patches whose centres are within one stride of it (bilinear
  interpolation, clamped at the edges), i.e. within :data:`SUPPORT_PX` pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

PATCH = 16
HALF_PATCH = PATCH // 2
SUPPORT_PX = 16


def grid_length(size: int, stride: int) -> int:
    """Patches along an axis of ``size`` pixels."""
    return max(1, math.ceil((size - PATCH) / stride) + 1)


def patch_centre(index: int, stride: int) -> int:
    """Pixel coordinate of the centre of patch ``index``."""
    return index * stride + HALF_PATCH


def cell_of(pixels: np.ndarray, stride: int, length: int) -> np.ndarray:
    """Index of the patch whose centre is nearest to each pixel (pixel centres at ``i + 0.5``)."""
    return np.clip((2 * pixels + 1 - PATCH + stride) // (2 * stride), 0, length - 1)


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: first pixel, length in pixels and the range of global patches it keeps."""

    origin: int
    length: int
    keep_start: int
    keep_stop: int

    def support(self, stride: int, size: int) -> Tuple[int, int]:
        """Pixel range ``[start, stop)`` (clipped to ``size``) whose labels depend on the kept patches."""
        start = patch_centre(self.keep_start, stride) - SUPPORT_PX
        stop = patch_centre(self.keep_stop - 1, stride) + SUPPORT_PX + 1
        return max(0, start), min(size, stop)


def _multiple_of_patch(pixels: int) -> int:
    return math.ceil(pixels / PATCH) * PATCH


def axis_tiles(size: int, tile: int, overlap: int, stride: int) -> Tuple[int, List[AxisTile]]:
    """Tile length and tiles along an axis of ``size`` pixels (the last tile may be shorter)."""
    n = grid_length(size, stride)
    needed = (n - 1) * stride + PATCH
    length = min(tile, _multiple_of_patch(needed))
    if needed <= length:
        spans = [(0, length)]
    else:
        step = length - overlap
        count = 1 + math.ceil((needed - length) / step)
        last = max(_multiple_of_patch(needed - (count - 1) * step), _multiple_of_patch(length // 2))
        spans = [(i * step, length) for i in range(count - 1)] + [(needed - last, last)]
    bounds = [(a + length_a + b) // 2 for (a, length_a), (b, _) in zip(spans[:-1], spans[1:])]
    firsts = [0, *(math.ceil((b - HALF_PATCH) / stride) for b in bounds)]
    stops = [*firsts[1:], n]
    return length, [AxisTile(o, ln, f, t) for (o, ln), f, t in zip(spans, firsts, stops)]


@dataclass(frozen=True)
class Tile:
    """A tile of the working window: its row and column extents."""

    row: AxisTile
    col: AxisTile

    @property
    def shape(self) -> Tuple[int, int]:
        """Pixels (rows, cols)."""
        return self.row.length, self.col.length

    def grid(self, stride: int) -> Tuple[int, int]:
        """Patches (rows, cols)."""
        return (self.row.length - PATCH) // stride + 1, (self.col.length - PATCH) // stride + 1


@dataclass(frozen=True)
class TilePlan:
    """The global patch grid of a window and the tiles covering it."""

    height: int
    width: int
    stride: int
    grid_rows: int
    grid_cols: int
    tile_height: int
    tile_width: int
    tiles: Tuple[Tile, ...]

    @property
    def tile_grid(self) -> Tuple[int, int]:
        """Patches per tile (rows, cols)."""
        return ((self.tile_height - PATCH) // self.stride + 1, (self.tile_width - PATCH) // self.stride + 1)


def plan_tiles(height: int, width: int, tile: int, overlap: int, stride: int) -> TilePlan:
    """Tiles (row-major) covering a ``height`` x ``width`` window."""
    tile_h, rows = axis_tiles(height, tile, overlap, stride)
    tile_w, cols = axis_tiles(width, tile, overlap, stride)
    tiles = tuple(Tile(r, c) for r in rows for c in cols)
    return TilePlan(height, width, stride, grid_length(height, stride), grid_length(width, stride),
                    tile_h, tile_w, tiles)


def cell_valid_fraction(valid: np.ndarray, top: int, left: int, plan: TilePlan,
                        tile: Tile) -> np.ndarray:
    """Fraction of valid pixels in the cell of each patch ``tile`` keeps.

    ``valid`` is the validity of pixels ``[top, top+h) x [left, left+w)`` of the window (pixels
    outside the window may be present and are ignored); it must contain the kept patches' cells.
    """
    def axis(start: int, count: int, size: int, length: int, keep: AxisTile) -> Tuple[np.ndarray, np.ndarray]:
        pixels = np.arange(start, start + count)
        cells = cell_of(pixels, plan.stride, length)
        mask = (pixels >= 0) & (pixels < size) & (cells >= keep.keep_start) & (cells < keep.keep_stop)
        return np.flatnonzero(mask), cells[mask] - keep.keep_start

    rsel, rcell = axis(top, valid.shape[0], plan.height, plan.grid_rows, tile.row)
    csel, ccell = axis(left, valid.shape[1], plan.width, plan.grid_cols, tile.col)
    n_cols = tile.col.keep_stop - tile.col.keep_start
    n_cells = (tile.row.keep_stop - tile.row.keep_start) * n_cols
    ids = (rcell[:, None] * n_cols + ccell[None, :]).ravel()
    sub = valid[np.ix_(rsel, csel)].ravel()
    total = np.bincount(ids, minlength=n_cells)
    good = np.bincount(ids, weights=sub, minlength=n_cells)
    fraction = good / np.maximum(total, 1)
    return fraction.reshape(-1, n_cols)
