"""The run's input: the raster opened on its working window and checked before any model is loaded.

Its stretch is fitted as the source is made (or the applied cluster model's is used), and the pixel areas
and the canopy heights (when given) come on the working window's grid. At a working resolution the window is
encoded through a resampling VRT (engine/raster/working_grid.py) whose stretch the input's own pixels share.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Optional

from ..cluster.model import Fitted
from ..encode.tiling import PATCH, grid_length
from ..errors import EngineError
from ..jobs.segmentation import FitSettings, SegmentationConfig
from ..progress import Progress, StageProgress
from ..raster.georef import PixelArea, Window, pixel_area, window_geotransform, working_window
from ..raster.input import InputRaster
from ..raster.pixels import RasterSource
from ..raster.working_grid import encoding_grid
from ..trees.evidence import HeightGrid, check_nir_band
from . import cluster_model as model_run
from . import tree_steps


@dataclass
class RunInput:
    """The input as the run reads it: the working window's pixels, its grid, pixel areas and heights, and the
    grid it is encoded on (``encoded``/``encoded_window``: the same at the raster's own resolution)."""

    source: RasterSource
    window: Window
    geotransform: Any
    area: PixelArea
    heights: Optional[HeightGrid]
    encoded: RasterSource
    encoded_window: Window


def check_size(window: Window, settings: FitSettings, what: str) -> None:
    """Refuse a working window (of the ``what``: "raster" or "extent") with fewer patches than the clusters asked
    for, before loading anything."""
    patches = grid_length(window.width, settings.stride) * grid_length(window.height, settings.stride)
    needed = settings.k or settings.k_min
    if patches >= needed:
        return
    if patches == 1:
        raise EngineError(f"The {what} is too small: {window.width} x {window.height} px is a single 16 x 16 px "
                          "patch, and k-means needs at least 2 patches. Use a raster or extent larger than "
                          "16 x 16 px (at least 64 x 64 px for useful clusters).")
    raise EngineError(f"The {what} is too small: {window.width} x {window.height} px holds {patches} patches at "
                      f"stride {settings.stride}, fewer than the {needed} clusters asked for. Use a larger "
                      "extent, a smaller patch stride, or fewer clusters.")


def open_input(config: SegmentationConfig, model: Optional[Fitted], progress: Progress,
               report: StageProgress, stack: contextlib.ExitStack, model_path: Optional[str] = None) -> RunInput:
    """Stage "Reading input": the input raster (closed with ``stack``) on its working window, checked, with the
    stretch fitted (or the applied model's, read from ``model_path``, by default the config's cluster model;
    sampling reported on ``report``), its pixel areas and, when given, the canopy heights."""
    raster = InputRaster(config.input_path, model_run.run_bands(model, config.bands), progress)
    stack.callback(raster.close)
    window = working_window(raster.geotransform, raster.width, raster.height, config.extent)
    if config.extent is not None:
        progress.info(f"Extent snapped to pixels x {window.x0}..{window.x0 + window.width}, "
                      f"y {window.y0}..{window.y0 + window.height} ({window.width} x {window.height} px).")
    grid = encoding_grid(raster, window, config.working_resolution, PATCH, stack, progress)
    if model is None:
        check_size(grid.window, config, "extent" if config.extent is not None else "raster")
    progress.info(raster.describe_masks())
    check_nir_band(raster, config.nir_band)
    path = model_path or config.cluster_model
    stretch = model_run.model_stretch(model, path, raster, progress) if model is not None else None
    encoded = RasterSource(grid.raster, grid.window, progress, report, stretch)
    source = RasterSource(raster, window, progress, report, encoded.stretch) if grid.resampled else encoded
    gt = window_geotransform(source.geotransform, window)
    area = pixel_area(gt, source.srs, window.width, window.height)
    heights = tree_steps.prepare(config.tree_settings, bool(config.crowns_path), source, window, gt, stack)
    return RunInput(source, window, gt, area, heights, encoded, grid.window)
