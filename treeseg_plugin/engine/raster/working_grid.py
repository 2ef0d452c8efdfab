"""A working resolution: the input window resampled as it is read, and the way back onto the input's grid.

Canopy Height (its model's resolution) and Segment Trees / Fit Cluster Model (``working_resolution``) use
the same code. Decisions:

* Ground metres whatever the CRS: the window's central pixel's sides, converted to latitude and longitude
  (osr) and measured on the CRS's ellipsoid (radii of curvature in the meridian and the prime vertical at
  that latitude), so a geographic CRS and Web Mercator's scale are ground metres. A projected CRS whose map
  metre is within 0.5 % of that (UTM's scale factor, national grids) keeps its own pixel size, so ratios the
  analyst means (2.5 cm to 0.1 m: 4) stay exact. Without a CRS (or outside the CRS's area of use) the size
  in metres is unknown and only 0 (native) runs.
* The working grid is a GDAL VRT in memory (``/vsimem``) over the window, ``round(window * pixel size /
  resolution)`` pixels a side: GDAL resamples as each tile is read (``average`` when coarsening,
  ``bilinear`` when refining), so the whole raster is never held. It covers the window exactly, so working
  pixel ``j`` spans input pixels ``j * n / m .. (j + 1) * n / m`` along an axis of ``n`` input and ``m``
  working pixels. A grid the same size as the window is not resampled.
* Back onto the input's grid: each input pixel centre's position on the working grid, ``(i + 0.5) * m / n
  - 0.5`` (working-pixel centres at integers, clamped at the edges); values bilinear between the two
  working pixels around it (heights), classes from the nearest one (labels).
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import EngineError
from ..progress import Progress
from .georef import GeoTransform, Window
from .input import InputRaster

MAP_METRE_TOLERANCE = 0.005
"""A projected CRS whose map metre is within 0.5 % of a ground metre at the window's centre (UTM: at most 0.1 %,
national grids) is taken at its word: 0.1 m from 2.5 cm pixels is then exactly 4 pixels, not 3.9989 (UTM's
scale factor), which would shift the working grid against the input's by a pixel every few thousand."""


def ground_pixel_size(gt: GeoTransform, srs: Optional[osr.SpatialReference], window: Window) \
        -> Optional[Tuple[float, float]]:
    """(column, row) pixel size in ground metres at the window's centre (a projected CRS's own size where it is
    within MAP_METRE_TOLERANCE of that), or None when the CRS does not tell."""
    if srs is None or not (srs.IsProjected() or srs.IsGeographic()):
        return None
    source = srs.Clone()
    source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    geographic = srs.CloneGeogCS()
    geographic.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    col, row = window.x0 + window.width / 2, window.y0 + window.height / 2
    ends = [(col - 0.5, row), (col + 0.5, row), (col, row - 0.5), (col, row + 0.5)]
    points = [(gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]) for c, r in ends]
    lonlat = np.radians(np.asarray(osr.CoordinateTransformation(source, geographic).TransformPoints(points),
                                   dtype=np.float64)[:, :2] * math.degrees(geographic.GetAngularUnits()))
    if not np.isfinite(lonlat).all():
        return None
    inverse_flattening = geographic.GetInvFlattening()
    flattening = 1.0 / inverse_flattening if inverse_flattening else 0.0
    e2 = flattening * (2.0 - flattening)
    latitude = float(lonlat[:, 1].mean())
    w = math.sqrt(1.0 - e2 * math.sin(latitude) ** 2)
    east, north = geographic.GetSemiMajor() / w * math.cos(latitude), geographic.GetSemiMajor() * (1 - e2) / w ** 3

    def metres(a: np.ndarray, b: np.ndarray) -> float:
        return math.hypot((b[0] - a[0]) * east, (b[1] - a[1]) * north)

    ground = metres(lonlat[0], lonlat[1]), metres(lonlat[2], lonlat[3])
    if srs.IsProjected():
        mapped = math.hypot(gt[1], gt[4]) * srs.GetLinearUnits(), math.hypot(gt[2], gt[5]) * srs.GetLinearUnits()
        if all(abs(g / m - 1.0) < MAP_METRE_TOLERANCE for g, m in zip(ground, mapped)):
            return mapped
    return ground


@dataclass
class WorkingGrid:
    """The raster a run encodes: the input's window itself, or a VRT of it at another resolution."""

    raster: InputRaster
    window: Window
    native_m: Optional[Tuple[float, float]]  # the input's (column, row) pixel size in metres; None: unknown
    resampling: Optional[str]  # GDAL's resampling ("average" / "bilinear"); None: the input's own pixels

    @property
    def resampled(self) -> bool:
        return self.resampling is not None


def resampled_size(window: Window, native_m: Tuple[float, float], resolution: float) -> Tuple[int, int]:
    """(width, height) of ``window`` at ``resolution`` metres per pixel (at least 1 px a side)."""
    return (max(1, round(window.width * native_m[0] / resolution)),
            max(1, round(window.height * native_m[1] / resolution)))


def working_grid(source: InputRaster, window: Window, resolution: float, stack: contextlib.ExitStack) -> WorkingGrid:
    """``window`` of ``source`` at ``resolution`` metres per pixel (0: as it is); the VRT and its raster are
    removed with ``stack``. The caller refuses a resolution when the size in metres is unknown."""
    size = ground_pixel_size(source.geotransform, source.srs, window)
    if resolution == 0 or size is None:
        return WorkingGrid(source, window, size, None)
    width, height = resampled_size(window, size, resolution)
    if (width, height) == (window.width, window.height):
        return WorkingGrid(source, window, size, None)
    resampling = "average" if width < window.width else "bilinear"
    path = f"/vsimem/treeseg-grid-{os.getpid()}-{uuid.uuid4().hex}.vrt"
    gdal.Translate(path, source.ds, format="VRT", srcWin=[window.x0, window.y0, window.width, window.height],
                   width=width, height=height, resampleAlg=resampling)
    stack.callback(gdal.Unlink, path)
    raster = InputRaster(path, source.bands, Progress())
    stack.callback(raster.close)
    return WorkingGrid(raster, Window(0, 0, width, height), size, resampling)


FINE_PIXEL_M = 0.05
"""Encoded pixels finer than this get the log's guidance: a patch covers leaves and branches, not crowns."""
SUGGESTED_RESOLUTION_M = 0.1


def encoding_grid(source: InputRaster, window: Window, resolution: float, patch_px: int, stack: contextlib.ExitStack,
                  progress: Progress) -> WorkingGrid:
    """Segment Trees' and Fit Cluster Model's working grid for ``working_resolution``, said in the log with
    what a ``patch_px`` patch covers (and a suggestion when that is finer than :data:`FINE_PIXEL_M` per pixel)."""
    grid = working_grid(source, window, resolution, stack)
    size = grid.native_m
    if resolution and size is None:
        raise EngineError(f"The raster's pixel size in metres is unknown (no CRS, or one in other units), so it "
                          f"cannot be encoded at a working resolution of {resolution:g} m. Assign the raster's CRS "
                          "(Raster > Projections > Assign Projection), or set the working resolution to 0.")
    native = "unknown" if size is None else f"{size[0]:.4g} x {size[1]:.4g} m"
    if source.srs is not None and source.srs.IsGeographic() and size is not None:
        native += " (degrees converted to ground metres on the ellipsoid at the window's centre)"
    work = grid.window
    if grid.resampled:
        how = f"working resolution {resolution:g} m (GDAL {grid.resampling} as it reads)"
    else:
        how = "its own pixels" + (f" (working resolution {resolution:g} m is the same)" if resolution else "")
    progress.info(f"Native pixel size {native}; encoded at {how}: {work.width} x {work.height} = "
                  f"{work.width * work.height} px for {window.width * window.height} input px.")
    if size is not None:
        encoded_m = resolution if grid.resampled else math.sqrt(size[0] * size[1])
        progress.info(_footprint(encoded_m, patch_px))
    return grid


def _footprint(encoded_m: float, patch_px: int) -> str:
    """What one patch covers on the ground; for pixels finer than FINE_PIXEL_M, a coarser working resolution."""
    text = f"A {patch_px} px patch covers {patch_px * encoded_m:.3g} m x {patch_px * encoded_m:.3g} m on the ground."
    if encoded_m >= FINE_PIXEL_M:
        return text
    fewer = (SUGGESTED_RESOLUTION_M / encoded_m) ** 2
    return (f"{text} That is leaves and branches rather than whole crowns: a working resolution of "
            f"{SUGGESTED_RESOLUTION_M:g} m (WORKING_RESOLUTION, --working-resolution) makes a patch "
            f"{patch_px * SUGGESTED_RESOLUTION_M:.3g} m and encodes {fewer:.3g} times fewer pixels "
            "(docs/resolution.md).")


def _position(start: int, count: int, size: int, grid_size: int) -> np.ndarray:
    """Positions on an axis of ``grid_size`` working pixels of input pixels ``start .. start + count - 1`` of an
    axis of ``size`` (working-pixel centres at integers, clamped at the edges)."""
    return np.clip((np.arange(start, start + count) + 0.5) * grid_size / size - 0.5, 0, grid_size - 1)


def bilinear_axis(start: int, count: int, size: int, grid_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two working pixels around each input pixel centre and the weight of the second."""
    position = _position(start, count, size, grid_size)
    low = np.floor(position).astype(np.int64)
    return low, np.minimum(low + 1, grid_size - 1), (position - low).astype(np.float32)


def nearest_axis(start: int, count: int, size: int, grid_size: int) -> np.ndarray:
    """The working pixel that holds each input pixel centre (the nearest working-pixel centre)."""
    return np.minimum(np.floor(_position(start, count, size, grid_size) + 0.5).astype(np.int64), grid_size - 1)
