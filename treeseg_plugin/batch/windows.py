"""Windows of one raster too large for one task, and stitching their labels into one output.

A raster wider or taller than ``window`` px is cut into a grid of windows ("cores") whose sides are
multiples of the tiling step (tile size minus the overlap, engine/encode/tiling.py). Each task labels its core plus
a halo (:func:`_span`): from one step before the core (a tile origin of the whole raster; further back where
the part would be shorter than a tile) to one tile after it, clipped at the raster's edge. So the part's tiles
fall where the whole raster's tiles would, every patch that a core pixel's label depends on comes from the
same tile as in the whole raster, and the core's labels are those of a run on the whole raster. The stitched
output takes each core from its part and is written through engine/raster/staging.py (all-or-nothing; the old
output's sidecars go with it), with the style of the first part. Windows need a north-up georeferenced raster
(the tasks take map-coordinate extents).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from osgeo import gdal

from ..engine.errors import EngineError
from ..engine.jobs.segmentation import SegmentationConfig
from ..engine.raster.staging import Staging, raster_sidecars

PARTS_FOLDER = ".treeseg-parts"


@dataclass(frozen=True)
class Part:
    """One task's share of a raster: the whole raster (``path == output``) or one window with its halo."""

    raster: str
    output: str  # the raster's label file
    path: str  # what the task writes
    extent: Optional[Tuple[float, float, float, float]]  # the task's extent (core + halo), map coordinates
    core: Tuple[int, int, int, int]  # x0, y0, width, height of the core in the raster's pixels
    offset: Tuple[int, int]  # the core's top-left pixel inside the part's raster


def _size_and_geotransform(raster: str) -> Tuple[int, int, Tuple[float, ...]]:
    try:
        dataset = gdal.Open(raster)
    except RuntimeError as exc:
        raise EngineError(f"Cannot open '{raster}' to plan its windows: {exc}") from exc
    return dataset.RasterXSize, dataset.RasterYSize, tuple(dataset.GetGeoTransform(can_return_null=True) or ())


def _starts(size: int, core: int) -> List[int]:
    return list(range(0, size, core))


def _span(start: int, length: int, size: int, tile: int, step: int) -> Tuple[int, int]:
    """Pixels ``[first, stop)`` of the part of a core ``[start, start + length)`` along an axis of ``size``."""
    stop = min(size, start + length + tile)
    return max(0, min(start - step, stop - tile) // step * step), stop


def plan_parts(raster: str, output: str, window: int, engine: SegmentationConfig) -> List[Part]:
    """The tasks for ``raster``: itself when it fits in ``window`` px (or windows are off), else its windows."""
    width, height, gt = _size_and_geotransform(raster)
    if window <= 0 or (width <= window and height <= window):
        return [Part(raster, output, output, None, (0, 0, width, height), (0, 0))]
    if len(gt) != 6 or gt[2] != 0 or gt[4] != 0:
        raise EngineError(f"'{raster}' is not a north-up georeferenced raster, so it cannot be split into "
                          "windows. Run it whole (leave out --window) or warp it north-up first.")
    step = engine.tile_size - engine.overlap  # the whole raster's tile step (engine/encode/tiling.py)
    core = max(step, math.ceil(window / step) * step)
    stem = os.path.splitext(os.path.basename(output))[0]
    folder = os.path.join(os.path.dirname(output), PARTS_FOLDER, stem)
    parts = []
    for y0 in _starts(height, core):
        for x0 in _starts(width, core):
            w, h = min(core, width - x0), min(core, height - y0)
            (px0, px1), (py0, py1) = (_span(x0, w, width, engine.tile_size, step),
                                      _span(y0, h, height, engine.tile_size, step))
            extent = (gt[0] + px0 * gt[1], gt[3] + py1 * gt[5], gt[0] + px1 * gt[1], gt[3] + py0 * gt[5])
            path = os.path.join(folder, f"{stem}_{y0}_{x0}.tif")
            parts.append(Part(raster, output, path, extent, (x0, y0, w, h), (x0 - px0, y0 - py0)))
    return parts


def stitch(parts: Sequence[Part], output: str) -> None:
    """Write ``output`` from the cores of ``parts`` (all of one raster), then remove the parts."""
    folder = os.path.dirname(parts[0].path)
    cores = []
    for index, part in enumerate(parts):
        core = os.path.join(folder, f"core_{index}.vrt")
        ox, oy = part.offset
        gdal.Translate(core, part.path, format="VRT", srcWin=[ox, oy, part.core[2], part.core[3]])
        cores.append(core)
    mosaic = os.path.join(folder, "cores.vrt")
    gdal.BuildVRT(mosaic, cores).FlushCache()
    with Staging() as staging:
        staged = staging.path(output)
        try:
            written = gdal.Translate(staged, mosaic, format="GTiff", creationOptions=["COMPRESS=DEFLATE", "TILED=YES"])
        except RuntimeError as exc:
            raise EngineError(f"Could not write '{output}' from its windows: {exc}") from exc
        written.SetGeoTransform(_size_and_geotransform(parts[0].raster)[2])  # exact: the VRT's is recomputed
        written = None
        shutil.copyfile(os.path.splitext(parts[0].path)[0] + ".qml", os.path.splitext(staged)[0] + ".qml")
        staging.commit(last=os.path.basename(output), stale=raster_sidecars(os.path.basename(output)))
    shutil.rmtree(folder, ignore_errors=True)
    with_parts = os.path.dirname(folder)
    if os.path.isdir(with_parts) and not os.listdir(with_parts):
        os.rmdir(with_parts)
