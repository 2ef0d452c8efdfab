"""Individual tree crowns (CROWNS) from the canopy mask: marker-controlled watershed (scipy.ndimage).

* Surface: the canopy height (metres, on the label grid) when a canopy height raster is given, else the
  Euclidean distance transform of the canopy mask (pixels to the nearest non-canopy pixel).
* Markers (treetops): local maxima of the surface inside the canopy, in a square window that grows
  with the surface. With heights, the window side is ``3 m + 0.1 x height`` (a 20 m tree: 5 m), and only
  pixels at least MIN_TREE_HEIGHT high can be treetops (lidR's lmf() works the same way, after Popescu &
  Wynne 2004; the law here is our choice); without heights the window reaches as far as the pixel is from
  the canopy edge (side 2 d + 1), so a round blob has one top. Windows are rounded up to a few sizes (steps
  of 15 %) so that one maximum filter serves many pixels. Touching maxima of equal value are one marker.
* Watershed: ``scipy.ndimage.watershed_ift`` on the inverted surface (cm of height, or 0.1 px of
  distance, as uint16 up to 65533), non-canopy pixels flooded from a background marker, so crowns never cross a gap.
  With heights, crowns cover only canopy at least MIN_TREE_HEIGHT high (the low pixels of a tree
  cluster, e.g. gaps, are no crown); canopy without a treetop belongs to no crown.
* Blocks: the label grid is cut into cores of :data:`CORE` px with a halo of :data:`HALO_M` m (at most
  :data:`MAX_HALO` px) around each; a core pixel takes the crown the watershed of its own block gives it,
  and crowns are named by their treetop's position, so a crown that crosses a core edge gets one id.
  Memory is bounded by one block. A crown reaching more than the halo beyond the core that holds a pixel
  of it is cut there (15 m: crowns up to about 30 m across are whole).
* Output: GDAL polygonises the crown ids (4-connected); the parts of one crown are merged; crowns under
  MIN_CROWN_AREA are left out. Fields: ``crown_id`` (1..n), ``area_m2`` (the pixels' true area, from
  georef's pixel area; map units² without a CRS), ``height_max`` and ``height_mean`` (m, null without
  heights), ``cluster`` (the cluster most of its pixels belong to). Geometries are made valid; the CRS is
  the input's. A ``.qml`` beside the file draws the crowns as dark-green outlines with no fill.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Collection, Dict, List, Optional, Tuple

import numpy as np
from osgeo import gdal, ogr
from scipy import ndimage

from ..progress import Progress, check_canceled
from ..raster.georef import PixelArea
from ..raster.geotiff import GeoTiffWriter, Grid, blocks
from ..raster.polygons import Layout, polygonize_then_copy, scratch_folder
from ..raster.styles import outline_style, write_style
from .evidence import HeightGrid, group_max
from .mask import tree_lookup

OUTLINE, OUTLINE_WIDTH_MM = (27, 120, 55), 0.4
"""The crowns' style: dark-green (#1b7837, the tree mask's canopy colour) outlines."""

CORE = 1024
HALO_M = 15.0
MAX_HALO = 512
WINDOW_BASE_M, WINDOW_PER_M = 3.0, 0.1
_WINDOW_STEP = 1.15
FIELDS = (("crown_id", ogr.OFTInteger), ("area_m2", ogr.OFTReal), ("height_max", ogr.OFTReal),
          ("height_mean", ogr.OFTReal), ("cluster", ogr.OFTInteger))
_LAYOUT = Layout(ogr.wkbMultiPolygon, FIELDS, "crowns")


@dataclass
class _Tally:
    """Per crown id (index = id; 0 unused): pixels, area, height sum, count and max, pixels per cluster."""

    k: int
    ids: Dict[Tuple[int, int], int] = field(default_factory=dict)
    pixels: List[int] = field(default_factory=lambda: [0])
    area: List[float] = field(default_factory=lambda: [0.0])
    height_sum: List[float] = field(default_factory=lambda: [0.0])
    height_pixels: List[int] = field(default_factory=lambda: [0])
    height_max: List[float] = field(default_factory=lambda: [-math.inf])
    clusters: List[np.ndarray] = field(default_factory=lambda: [np.zeros(1)])

    def crown_id(self, seed: Tuple[int, int]) -> int:
        if seed not in self.ids:
            self.ids[seed] = len(self.pixels)
            self.pixels.append(0)
            self.area.append(0.0)
            self.height_sum.append(0.0)
            self.height_pixels.append(0)
            self.height_max.append(-math.inf)
            self.clusters.append(np.zeros(self.k + 1, np.int64))
        return self.ids[seed]


def pixel_metres(area: PixelArea, geotransform: Tuple[float, ...]) -> float:
    """The side of a pixel in metres (map units without a CRS), for the treetop windows and the halo."""
    hectares = area.block_hectares(0, 0, 1, 1)
    if hectares is None:
        return abs(geotransform[1])
    return math.sqrt(float(hectares[0, 0]) * 1e4)


def _window_classes(side_px: np.ndarray) -> np.ndarray:
    """Window sides (odd px) rounded up to steps of 15 %."""
    side = np.maximum(side_px, 3.0)
    steps = np.ceil(np.log(side / 3.0) / math.log(_WINDOW_STEP))
    rounded = np.ceil(3.0 * _WINDOW_STEP ** steps).astype(np.int64)
    return rounded + (rounded % 2 == 0)


def treetops(surface: np.ndarray, eligible: np.ndarray, side_px: np.ndarray) -> np.ndarray:
    """Markers [h, w] (int32, 0 = none): connected local maxima of ``surface`` among ``eligible`` pixels,
    each a maximum of the square window of its own side."""
    tops = np.zeros(surface.shape, bool)
    sides = _window_classes(side_px)
    for side in np.unique(sides[eligible]):
        here = eligible & (sides == side)
        tops |= here & (surface >= ndimage.maximum_filter(surface, size=int(side), mode="nearest"))
    markers, _ = ndimage.label(tops, structure=np.ones((3, 3)))
    return markers.astype(np.int32)


def crown_block(canopy: np.ndarray, heights: Optional[np.ndarray], metres: float, min_tree_height: float,
                edge_distance: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Watershed crowns and their markers [h, w] (int32 marker numbers, 0 = none) of one block's canopy mask;
    ``edge_distance``
    (px to the block's edges inside the raster) keeps out treetops whose window the block cuts."""
    if heights is not None:
        surface = np.where(canopy & np.isfinite(heights), heights, np.float32(0)).astype(np.float32)
        canopy = canopy & (surface >= min_tree_height)
        eligible = canopy
        side = (WINDOW_BASE_M + WINDOW_PER_M * surface) / metres
        levels = np.round((surface.max() - surface) * 100.0) if surface.size else surface
    else:
        surface = ndimage.distance_transform_edt(canopy)
        eligible = canopy & (surface > 0)
        side = 2 * surface + 1
        levels = np.round((surface.max() - surface) * 10.0) if surface.size else surface
    markers = treetops(surface, eligible & (edge_distance >= side / 2), side)
    markers[~canopy] = -1  # scipy floods from negative (background) markers after the others
    image = np.clip(levels, 0, 65533).astype(np.uint16)
    image[~canopy] = 65534  # not 65535: scipy 1.10's watershed_ift then floods nothing (it is its sentinel)
    crowns = ndimage.watershed_ift(image, markers, structure=np.ones((3, 3), int))
    crowns[(crowns < 0) | ~canopy] = 0
    markers[markers < 0] = 0
    return crowns, markers


def _edge_distance(window: Tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Pixels from each pixel of ``window`` (x0, y0, x1, y1) to its nearest edge that is not the raster's."""
    x0, y0, x1, y1 = window
    far = float(max(width, height))
    rows, cols = np.arange(y1 - y0, dtype=np.float64), np.arange(x1 - x0, dtype=np.float64)
    dy = np.minimum(rows if y0 > 0 else far, rows[::-1] if y1 < height else far) + np.zeros_like(rows)
    dx = np.minimum(cols if x0 > 0 else far, cols[::-1] if x1 < width else far) + np.zeros_like(cols)
    return np.minimum(dy[:, None], dx[None, :])


def _seed_positions(markers: np.ndarray) -> Dict[int, Tuple[int, int]]:
    """Marker number -> (row, col) of its first pixel in the block (the treetop plateau's first pixel)."""
    numbers, first = np.unique(markers.ravel(), return_index=True)
    return {int(n): divmod(int(i), markers.shape[1]) for n, i in zip(numbers, first) if n}


def _crown_raster(labels_path: str, path: str, tree_labels: Collection[int], heights: Optional[HeightGrid],
                  area: PixelArea, min_tree_height: float, progress: Progress, k: int) -> _Tally:
    """Write the crown ids (UInt32, 0 = none) on the grid of ``labels_path`` to ``path``; returns the tally."""
    labels = gdal.Open(labels_path)
    source = labels.GetRasterBand(1)
    try:
        grid = Grid.of(labels)
        with GeoTiffWriter(path, grid, gdal.GDT_UInt32, 0) as out:
            tally = _crowns_by_core(source, grid, out, tree_labels, heights, area, min_tree_height, progress, k)
            out.finish()
    finally:
        source = labels = None
    return tally


def _crowns_by_core(source: gdal.Band, grid: Grid, out: GeoTiffWriter, tree_labels: Collection[int],
                    heights: Optional[HeightGrid], area: PixelArea, min_tree_height: float, progress: Progress,
                    k: int) -> _Tally:
    """The watershed of each core with its halo, the core's crown ids written to ``out``; returns the tally."""
    width, height = grid.width, grid.height
    metres = pixel_metres(area, grid.geotransform)
    halo = min(MAX_HALO, math.ceil(HALO_M / metres))
    lookup = tree_lookup(tree_labels) == 1
    tally = _Tally(k)
    for left, top, w, h, ends_row in blocks(width, height, CORE):
        check_canceled(progress)
        x0, y0 = max(0, left - halo), max(0, top - halo)
        x1, y1 = min(width, left + CORE + halo), min(height, top + CORE + halo)
        window_labels = source.ReadAsArray(x0, y0, x1 - x0, y1 - y0)
        window_heights = heights.read(x0, y0, x1 - x0, y1 - y0) if heights is not None else None
        crowns, markers = crown_block(lookup[window_labels], window_heights, metres, min_tree_height,
                                      _edge_distance((x0, y0, x1, y1), width, height))
        seeds = _seed_positions(markers)
        ids = np.zeros(int(crowns.max()) + 1, np.uint32)
        for number, (row, col) in seeds.items():
            ids[number] = tally.crown_id((y0 + row, x0 + col))
        core = (slice(top - y0, top + h - y0), slice(left - x0, left + w - x0))
        core_ids = ids[crowns[core]]
        out.write(top, left, core_ids)
        _count(tally, core_ids, window_labels[core], None if window_heights is None else window_heights[core],
               area, top, left)
        if ends_row:
            out.flush()
    return tally


def _count(tally: _Tally, ids: np.ndarray, labels: np.ndarray, heights: Optional[np.ndarray], area: PixelArea,
           top: int, left: int) -> None:
    """Add one core's pixels to the tally of their crowns (one bincount per quantity)."""
    inside = ids > 0
    if not inside.any():
        return
    block_ha = area.block_hectares(top, left, *ids.shape)
    pixel_area = block_ha[inside] * 1e4 if block_ha is not None else np.full(int(inside.sum()), area.map_units)
    crowns, index = np.unique(ids[inside], return_inverse=True)
    n = len(crowns)
    pixels = np.bincount(index, minlength=n)
    areas = np.bincount(index, weights=pixel_area, minlength=n)
    clusters = np.bincount(index * (tally.k + 1) + labels[inside], minlength=n * (tally.k + 1)).reshape(n, -1)
    h_sum = h_count = h_max = None
    if heights is not None:
        h = heights[inside].astype(np.float64)
        ok = np.isfinite(h)
        h_sum = np.bincount(index[ok], weights=h[ok], minlength=n)
        h_count = np.bincount(index[ok], minlength=n)
        h_max = group_max(index[ok], h[ok], n)
    for i, crown in enumerate(crowns.tolist()):
        tally.pixels[crown] += int(pixels[i])
        tally.area[crown] += float(areas[i])
        tally.clusters[crown] += clusters[i]
        if h_count is not None and h_count[i]:
            tally.height_sum[crown] += float(h_sum[i])
            tally.height_pixels[crown] += int(h_count[i])
            tally.height_max[crown] = max(tally.height_max[crown], float(h_max[i]))


def write_crowns(labels_path: str, crowns_path: str, tree_labels: Collection[int], heights: Optional[HeightGrid],
                 area: PixelArea, min_tree_height: float, min_crown_area: float, k: int, progress: Progress) -> int:
    """Write the crowns of the tree clusters of ``labels_path`` to ``crowns_path``; returns their number.

    Raises RuntimeError/OSError from GDAL/OGR (the caller names the file), Canceled on a cancel."""
    with scratch_folder(crowns_path, ".crowns") as scratch:
        ids_path = os.path.join(scratch, "crown_ids.tif")
        tally = _crown_raster(labels_path, ids_path, tree_labels, heights, area, min_tree_height, progress, k)

        def copy(parts: ogr.DataSource, _source: ogr.Layer, _vector: ogr.DataSource, layer: ogr.Layer) -> int:
            return _copy_crowns(parts, layer, tally, min_crown_area, progress)

        count = polygonize_then_copy(ids_path, scratch, "crown", crowns_path, _LAYOUT, copy, progress)
    write_style(os.path.splitext(crowns_path)[0] + ".qml", outline_style(OUTLINE, OUTLINE_WIDTH_MM))
    return count


def _copy_crowns(parts: ogr.DataSource, layer: ogr.Layer, tally: _Tally, min_crown_area: float,
                 progress: Progress) -> int:
    """One feature per crown (its parts merged, valid), numbered 1..n in treetop order; small ones left out."""
    ordered = parts.ExecuteSQL("SELECT crown, geom FROM parts ORDER BY crown")
    defn = layer.GetLayerDefn()
    count, current, geometry = 0, None, None
    try:
        for feature in itertools.chain(ordered, [None]):
            crown = feature.GetField("crown") if feature is not None else None
            if crown != current and geometry is not None and tally.area[current] >= min_crown_area:
                check_canceled(progress)
                count += 1
                _write_crown(layer, defn, count, current, geometry, tally)
            if feature is None:
                break
            if crown != current:
                current, geometry = crown, ogr.Geometry(ogr.wkbMultiPolygon)
            geometry.AddGeometry(feature.GetGeometryRef())
    finally:
        parts.ReleaseResultSet(ordered)
    return count


def _write_crown(layer: ogr.Layer, defn: ogr.FeatureDefn, number: int, crown: int, geometry: ogr.Geometry,
                 tally: _Tally) -> None:
    merged = geometry  # parts touching at corners only (4-connected pieces of an 8-connected crown) are valid
    if not merged.IsValid():
        merged = merged.UnionCascaded()  # parts sharing edges (a crown across a core edge)
    if not merged.IsValid():
        merged = merged.MakeValid()
    merged = ogr.ForceToMultiPolygon(merged)
    feature = ogr.Feature(defn)
    feature.SetField("crown_id", number)
    feature.SetField("area_m2", tally.area[crown])
    if tally.height_max[crown] > -math.inf:
        feature.SetField("height_max", tally.height_max[crown])
        feature.SetField("height_mean", tally.height_sum[crown] / tally.height_pixels[crown])
    feature.SetField("cluster", int(np.argmax(tally.clusters[crown][1:]) + 1))
    feature.SetGeometry(merged)
    if layer.CreateFeature(feature) != ogr.OGRERR_NONE:
        raise RuntimeError(f"Writing crown {number} failed: {gdal.GetLastErrorMsg()}")
