"""Georeferencing maths: the working window (extent snapping), its geotransform and pixel areas.

Decisions:

* The extent is snapped OUTWARD to whole input pixels (a pixel the extent touches is kept), with a
  1e-6 pixel tolerance so an extent already on the grid is not grown by floating-point noise, then
  clipped to the raster. An extent that misses the raster is an error.
* Areas: for a projected CRS, pixel area in map units² and hectares from the CRS linear unit. For a
  geographic CRS the map-unit area is in degrees² (kept for completeness) and hectares are
  approximate: each row's pixels get the area of a spherical quadrangle (authalic radius
  6 371 007 m) at that row's latitude. Without a CRS hectares are ``None`` and a note says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from osgeo import osr

from .errors import EngineError

GeoTransform = Tuple[float, float, float, float, float, float]
EARTH_AUTHALIC_RADIUS_M = 6371007.2
_SNAP_TOLERANCE_PX = 1e-6


@dataclass(frozen=True)
class Window:
    """A pixel rectangle of the input raster: column/row of its top-left pixel and its size."""

    x0: int
    y0: int
    width: int
    height: int


def _inverse(gt: Sequence[float]) -> GeoTransform:
    det = gt[1] * gt[5] - gt[2] * gt[4]
    if det == 0:
        raise EngineError("The raster's geotransform is degenerate (zero pixel size). Fix its georeferencing.")
    a, b, d, e = gt[5] / det, -gt[2] / det, -gt[4] / det, gt[1] / det
    return (-(a * gt[0] + b * gt[3]), a, b, -(d * gt[0] + e * gt[3]), d, e)


def raster_bounds(gt: Sequence[float], width: int, height: int) -> Tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a width x height raster with geotransform ``gt``."""
    xs, ys = [], []
    for col, row in ((0, 0), (width, 0), (0, height), (width, height)):
        xs.append(gt[0] + col * gt[1] + row * gt[2])
        ys.append(gt[3] + col * gt[4] + row * gt[5])
    return min(xs), min(ys), max(xs), max(ys)


def working_window(gt: Sequence[float], width: int, height: int,
                   extent: Optional[Sequence[float]]) -> Window:
    """The pixel window covering ``extent`` (xmin, ymin, xmax, ymax), snapped outward and clipped."""
    if extent is None:
        return Window(0, 0, width, height)
    xmin, ymin, xmax, ymax = (float(v) for v in extent)
    inv = _inverse(gt)
    cols, rows = [], []
    for x, y in ((xmin, ymin), (xmax, ymin), (xmin, ymax), (xmax, ymax)):
        cols.append(inv[0] + x * inv[1] + y * inv[2])
        rows.append(inv[3] + x * inv[4] + y * inv[5])
    c0 = max(0, math.floor(min(cols) + _SNAP_TOLERANCE_PX))
    c1 = min(width, math.ceil(max(cols) - _SNAP_TOLERANCE_PX))
    r0 = max(0, math.floor(min(rows) + _SNAP_TOLERANCE_PX))
    r1 = min(height, math.ceil(max(rows) - _SNAP_TOLERANCE_PX))
    if c1 <= c0 or r1 <= r0:
        bounds = ", ".join(f"{v:.6g}" for v in raster_bounds(gt, width, height))
        raise EngineError(
            f"The extent ({xmin:.6g}, {ymin:.6g}, {xmax:.6g}, {ymax:.6g}) does not overlap the raster "
            f"(its extent is {bounds} in the raster's CRS). Choose an extent inside the raster, in the "
            "raster's CRS, or leave it empty.")
    return Window(c0, r0, c1 - c0, r1 - r0)


def window_geotransform(gt: Sequence[float], window: Window) -> GeoTransform:
    """The geotransform of ``window`` (same pixel size and rotation, shifted origin)."""
    return (gt[0] + window.x0 * gt[1] + window.y0 * gt[2], gt[1], gt[2],
            gt[3] + window.x0 * gt[4] + window.y0 * gt[5], gt[4], gt[5])


@dataclass(frozen=True)
class PixelArea:
    """Area of the output pixels: ``map_units`` (constant) and hectares per output row (or None)."""

    map_units: float
    hectares_per_pixel: Optional[float]
    geographic: Optional[Tuple[float, float, float]]  # (lat0 rad, dlat rad per row, dlon rad), None if not
    note: str

    def row_hectares(self, rows: np.ndarray) -> Optional[np.ndarray]:
        """Hectares of one pixel on each (window-relative) row, or None when unknown."""
        if self.geographic is not None:
            lat0, dlat, dlon = self.geographic
            top = lat0 + rows * dlat
            band = np.abs(np.sin(top) - np.sin(top + dlat))
            return EARTH_AUTHALIC_RADIUS_M ** 2 * abs(dlon) * band / 1e4
        if self.hectares_per_pixel is None:
            return None
        return np.full(rows.shape, self.hectares_per_pixel)


def pixel_area(gt: Sequence[float], srs: Optional[osr.SpatialReference]) -> PixelArea:
    """How to turn pixel counts into areas for a raster with geotransform ``gt`` (already windowed)."""
    map_units = abs(gt[1] * gt[5] - gt[2] * gt[4])
    if srs is None:
        return PixelArea(map_units, None, None, "The raster has no CRS; areas are in pixel units and hectares unknown.")
    if srs.IsProjected():
        metres = srs.GetLinearUnits()
        return PixelArea(map_units, map_units * metres * metres / 1e4, None,
                         f"Projected CRS; 1 map unit = {metres:g} m.")
    if srs.IsGeographic():
        radians = srs.GetAngularUnits()
        return PixelArea(map_units, None, (gt[3] * radians, gt[5] * radians, gt[1] * radians),
                         "Geographic CRS: map-unit areas are in degrees²; hectares are approximate "
                         "(spherical Earth, per-row latitude).")
    return PixelArea(map_units, None, None, "The CRS is neither projected nor geographic; hectares unknown.")
