"""Georeferencing maths: the input's pixel frame, the working window (extent snapping), its geotransform and
pixel areas.

Decisions:

* A raster without a geotransform (a PNG or JPEG drone frame, a GeoTIFF without georeferencing) is placed
  as QGIS draws it: pixel size (1, -1) from (0, 0), i.e. x = column, y = -row (QGIS's GDAL provider does
  this; GDAL's own default (0, 1, 0, 0, 0, 1) is south-up, and QGIS would warp a label raster carrying it
  upside down). The labels get that frame, shifted to the window, so they overlay the input in QGIS, and
  an extent drawn on the input in QGIS selects the right pixels. Rasters georeferenced only by GCPs or
  RPCs are refused before anything runs: warping them first keeps their georeferencing.
* The extent is snapped OUTWARD to whole input pixels (a pixel the extent touches is kept), with a
  1e-6 pixel tolerance so an extent already on the grid is not grown by floating-point noise, then
  clipped to the raster. An extent that misses the raster is an error.
* Areas: ``map_units`` is the planar pixel area in map units² (degrees² for a geographic CRS). Hectares
  are areas on the CRS's ellipsoid, whatever the projection: the corners of cells of ``cell`` x ``cell``
  pixels are transformed to geographic coordinates (osr) and each cell's area is exact on the ellipsoid
  for a cell whose sides are straight in Lambert's cylindrical equal-area projection (authalic latitude),
  which for cells this small equals the true footprint to rounding. Every pixel of a cell gets the cell's
  mean pixel area. ``cell`` is 64 px, halved until the relative change of the pixel area across a cell,
  measured at nine places in the window, is below 1e-5; that change bounds the error of any cluster's
  hectares and is reported in the note. Without a CRS hectares are ``None`` and a note says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import EngineError
from ..progress import Progress

GeoTransform = Tuple[float, float, float, float, float, float]
PIXEL_FRAME: GeoTransform = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # how QGIS places a raster without georeferencing
_SNAP_TOLERANCE_PX = 1e-6


@dataclass(frozen=True)
class Window:
    """A pixel rectangle of the input raster: column/row of its top-left pixel and its size."""

    x0: int
    y0: int
    width: int
    height: int


def input_geotransform(ds: gdal.Dataset, log: Progress) -> GeoTransform:
    """The geotransform of ``ds`` as QGIS places it; refuses GCP- or RPC-only georeferencing."""
    gt = ds.GetGeoTransform(can_return_null=True)
    if gt is not None:
        return tuple(gt)
    how = "ground control points (GCPs)" if ds.GetGCPCount() else "RPCs" if ds.GetMetadata("RPC") else ""
    if how:
        fix = "gdalwarp -rpc" if how == "RPCs" else "gdalwarp -tps (or -order 1)"
        raise EngineError(
            f"The raster is georeferenced by {how} only, without a geotransform; TreeSeg writes the labels on "
            f"the input's pixel grid and cannot carry {how} over. Warp it to a georeferenced orthophoto first "
            f"(Raster > Projections > Warp, or {fix} in.tif ortho.tif) and run on that.")
    log.warning("The raster has no georeferencing (no geotransform): the labels are placed as QGIS draws "
                "such a raster (x = column, y = -row, one unit per pixel), so they overlay it; areas are in "
                "pixels. Georeference it first (Georeferencer, or a world file) for map units and hectares.")
    return PIXEL_FRAME


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


_MAX_CELL_PX = 64
_CELL_ERROR_TARGET = 1e-5


class _Ellipsoid:
    """Areas on the ellipsoid of ``geographic`` (lon/lat): (a²/2) times the area in (longitude, q) space."""

    def __init__(self, geographic: osr.SpatialReference) -> None:
        self.a = geographic.GetSemiMajor()
        inv_flattening = geographic.GetInvFlattening()
        flattening = 1.0 / inv_flattening if inv_flattening else 0.0
        self.e = math.sqrt(flattening * (2.0 - flattening))
        self.name = geographic.GetAttrValue("SPHEROID") or geographic.GetAttrValue("ELLIPSOID") or "the"

    def q(self, lat: np.ndarray) -> np.ndarray:
        """Snyder's q(φ): the area between the equator and φ per radian of longitude is a²·q/2."""
        s = np.sin(lat)
        if self.e == 0.0:
            return 2.0 * s
        e2 = self.e * self.e
        return (1.0 - e2) * (s / (1.0 - e2 * s * s) + np.arctanh(self.e * s) / self.e)

    def quad_areas(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """m² of the cells between nodes lon/lat [rows+1, cols+1] (radians): half the diagonals' cross product."""
        q = self.q(lat)

        def east(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # longitude difference across the antimeridian
            return (a - b + math.pi) % (2.0 * math.pi) - math.pi

        d1_lon, d1_q = east(lon[1:, 1:], lon[:-1, :-1]), q[1:, 1:] - q[:-1, :-1]
        d2_lon, d2_q = east(lon[1:, :-1], lon[:-1, 1:]), q[1:, :-1] - q[:-1, 1:]
        return self.a * self.a / 4.0 * np.abs(d1_lon * d2_q - d2_lon * d1_q)


class PixelArea:
    """Areas of the output pixels: ``map_units`` (planar, constant) and ellipsoidal hectares per pixel."""

    def __init__(self, gt: Sequence[float], srs: Optional[osr.SpatialReference], width: int, height: int) -> None:
        self.gt = tuple(gt)
        self.map_units = abs(gt[1] * gt[5] - gt[2] * gt[4])
        self.cell = _MAX_CELL_PX
        self.width = width
        self._band: Optional[Tuple[Tuple[int, int], np.ndarray]] = None
        self._to_lonlat: Optional[osr.CoordinateTransformation] = None
        self._radians = 1.0
        if srs is None:
            self.note = ("The raster has no CRS; areas are in map units² (pixels without georeferencing), "
                         "hectares unknown.")
            return
        if not (srs.IsProjected() or srs.IsGeographic()):
            self.note = "The CRS is neither projected nor geographic; hectares unknown."
            return
        source = srs.Clone()
        source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        geographic = srs.CloneGeogCS()
        geographic.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        self._to_lonlat = osr.CoordinateTransformation(source, geographic)
        self._radians = geographic.GetAngularUnits()
        self._ellipsoid = _Ellipsoid(geographic)
        self.note = self._describe(srs, width, height)

    @property
    def has_hectares(self) -> bool:
        return self._to_lonlat is not None

    def block_hectares(self, top: int, left: int, height: int, width: int) -> Optional[np.ndarray]:
        """Hectares of each pixel [height, width] of the block at window pixel (top, left); None if unknown.

        Cells are aligned on the window's columns and on ``top``; the cells of the whole band of rows
        ``top``..``top + height`` are computed once (one coordinate transformation) for all its blocks."""
        if self._to_lonlat is None:
            return None
        c = self.cell
        if self._band is None or self._band[0] != (top, height):
            rows = np.minimum(c * np.arange(-(-height // c) + 1), height)
            cols = np.minimum(c * np.arange(-(-self.width // c) + 1), self.width)
            cell_m2 = self._cell_areas(cols, top + rows)
            self._band = ((top, height), cell_m2 / np.outer(np.diff(rows), np.diff(cols)) / 1e4)
        first, end = left // c, -(-(left + width) // c)
        cells = self._band[1][:, first:end]  # hectares per pixel in each cell
        every_pixel = np.broadcast_to(cells[:, None, :, None], (cells.shape[0], c, end - first, c))
        offset = left - first * c
        return every_pixel.reshape(cells.shape[0] * c, (end - first) * c)[:height, offset:offset + width]

    def _cell_areas(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """m² of the cells between the pixel-corner nodes ``cols`` x ``rows`` (window pixel coordinates)."""
        gt = self.gt
        c, r = np.meshgrid(cols.astype(np.float64), rows.astype(np.float64))
        x = gt[0] + c * gt[1] + r * gt[2]
        y = gt[3] + c * gt[4] + r * gt[5]
        points = self._to_lonlat.TransformPoints(np.column_stack([x.ravel(), y.ravel()]).tolist())
        lonlat = np.asarray(points, dtype=np.float64)[:, :2].reshape(*x.shape, 2) * self._radians
        if not np.isfinite(lonlat).all():
            raise EngineError("Part of the raster lies outside the area where its CRS can be converted to "
                              "latitude and longitude, so its hectares cannot be computed. Check the raster's "
                              "CRS (gdalinfo), or choose an extent inside the CRS's area of use.")
        return self._ellipsoid.quad_areas(lonlat[..., 0], lonlat[..., 1])

    def _change_per_pixel(self, width: int, height: int) -> float:
        """The largest relative change of the pixel area from one pixel to the next, at nine places."""
        worst = 0.0
        for col in (0, max(0, width // 2 - 1), max(0, width - 2)):
            for row in (0, max(0, height // 2 - 1), max(0, height - 2)):
                cells = self._cell_areas(np.arange(col, col + 3), np.arange(row, row + 3))
                worst = max(worst, abs(cells[0, 1] / cells[0, 0] - 1.0), abs(cells[1, 0] / cells[0, 0] - 1.0))
        return worst

    def _describe(self, srs: osr.SpatialReference, width: int, height: int) -> str:
        change = self._change_per_pixel(width, height)
        while self.cell > 1 and change * (self.cell - 1) > _CELL_ERROR_TARGET:
            self.cell //= 2
        centre = self._cell_areas(np.array([width // 2, width // 2 + 1]), np.array([height // 2, height // 2 + 1]))
        bound = change * (self.cell - 1)
        hectares = (f"Hectares are ellipsoidal ({self._ellipsoid.name} ellipsoid; pixel corners converted to "
                    f"latitude/longitude in cells of {self.cell} px; relative error below {max(bound, 1e-9):.0e}).")
        if srs.IsGeographic():
            return f"Geographic CRS: map-unit areas are in degrees². {hectares}"
        metres = srs.GetLinearUnits()
        ratio = self.map_units * metres * metres / centre[0, 0]
        return (f"{hectares} Map-unit areas are planar ({srs.GetName()}, 1 map unit = {metres:g} m): "
                f"{ratio:.4g} x the true area at the centre of the raster.")


def pixel_area(gt: Sequence[float], srs: Optional[osr.SpatialReference], width: int, height: int) -> PixelArea:
    """How to turn pixel counts into areas for a width x height raster with geotransform ``gt`` (windowed)."""
    return PixelArea(gt, srs, width, height)
