"""Canopy Height's run: read -> resample to the model's grid -> CHMv2 on overlapping tiles, blended -> back
onto the input's grid -> Float32 GeoTIFF of metres (NoData where the input is invalid) and its style.

Stages (:data:`TABLE`, run by engine/runs/skeleton.py): "Reading input" 0-3 % (opening, the stretch sample of
non-Byte bands), "Loading model" 3-8 %, "Predicting heights" 8-90 % (cancel checked per batch of tiles),
"Writing heights" 90-99 % (per output block). Outputs are staged (engine/raster/staging.py): a failed or
canceled run leaves nothing.

Decisions:

* The model grid: the working window resampled with GDAL to ``config.resolution`` metres per pixel, or the
  window itself when the resolution is 0 or already that of the input (within half a pixel over the
  window); the input's pixel size in ground metres comes from its CRS (engine/raster/working_grid.py, the
  code Segment Trees' working resolution uses); without a CRS it is unknown and only resolution 0 runs.
* Tiles of ``tile_size`` model pixels (multiples of 16, engine/encode/tiling.py's placement) overlap by
  ``overlap``; their heights are blended with weights that ramp linearly over the overlap at every tile
  edge, so no seam can appear. Beyond the raster, pixels are mirrored (RasterSource). The model input is
  prepared, and the tiles batched, as the segmentation's (encode/batcher.py): invalid pixels at the
  normalisation mean; out of memory halves the batch.
* Back onto the input's grid: bilinear between model-pixel centres (working_grid.bilinear_axis), block by block;
  pixels that are invalid in the input are NoData. The model-grid heights are held in memory (8 bytes per
  model pixel).
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Optional, Tuple

import numpy as np
import torch

from ...dinov3.chmv2.config import TRAINING_GSD_M
from ...dinov3.chmv2.model import CanopyHeightModel
from ..encode.batcher import TileBatcher
from ..encode.runtime import load_chmv2
from ..encode.tiling import PATCH, Tile, axis_tiles
from ..errors import EngineError, write_error
from ..jobs.canopy_height import NODATA, CanopyHeightConfig, CanopyHeightResult, validate_canopy_config
from ..progress import Progress, StageProgress, check_canceled
from ..raster.georef import Window, window_geotransform, working_window
from ..raster.geotiff import GeoTiffWriter, Grid, blocks
from ..raster.height_raster import height_writer, write_height_qml
from ..raster.input import InputRaster
from ..raster.pixels import RasterSource
from ..raster.working_grid import bilinear_axis, working_grid
from .skeleton import Run, Stage, milliseconds, perform, stage_names

TABLE = (Stage("Reading input", 3), Stage("Loading model", 5), Stage("Predicting heights", 82),
         Stage("Writing heights", 9))  # 100 % when the outputs are in place
STAGES = stage_names(TABLE)


def _model_grid(source: InputRaster, window: Window, config: CanopyHeightConfig, progress: Progress,
                stack: contextlib.ExitStack) -> Tuple[InputRaster, Window, Optional[float], bool]:
    """The raster the model reads, its window, the input's pixel size (m) and whether it was resampled."""
    grid = working_grid(source, window, config.resolution, stack)
    size = grid.native_m
    gsd = None if size is None else math.sqrt(size[0] * size[1])
    if config.resolution == 0:
        progress.info(f"Resolution 0: the model runs on the input's own pixels{f' ({gsd:.3g} m)' if gsd else ''}.")
        return source, window, gsd, False
    if size is None:
        raise EngineError(f"The input's pixel size in metres is unknown (no CRS, or one in other units), so it "
                          f"cannot be resampled to {config.resolution:g} m. Assign the raster's CRS, or set the "
                          "resolution to 0 to run the model on the input's own pixels.")
    trained = " (CHMv2's training resolution)" if config.resolution == TRAINING_GSD_M else ""
    if not grid.resampled:
        progress.info(f"The input's pixels ({gsd:.3g} m) match the model resolution {config.resolution:g} m"
                      f"{trained}: no resampling.")
        return source, window, gsd, False
    width, height = grid.window.width, grid.window.height
    progress.info(f"Resampled the input from {gsd:.3g} m ({window.width} x {window.height} px) to "
                  f"{config.resolution:g} m{trained} ({width} x {height} px, GDAL {grid.resampling}) for the "
                  "model; the heights are resampled back onto the input's grid (bilinear).")
    return grid.raster, grid.window, gsd, True


def _ramp(length: int, overlap: int) -> np.ndarray:
    """Blending weights along a tile: rising over ``overlap`` pixels at both ends, 1 inside, never 0."""
    if overlap <= 0:
        return np.ones(length, dtype=np.float32)
    edge = np.minimum(np.arange(length) + 0.5, length - np.arange(length) - 0.5)
    return np.minimum(1.0, edge / overlap).astype(np.float32)


def predict_heights(model: CanopyHeightModel, source: RasterSource, window: Window, config: CanopyHeightConfig,
                    progress: Progress, report: StageProgress) -> np.ndarray:
    """Blended heights [h, w] (float32 metres) of the model grid ``window`` of ``source``."""
    tile_h, rows = axis_tiles(window.height, config.tile_size, config.overlap, PATCH)
    tile_w, cols = axis_tiles(window.width, config.tile_size, config.overlap, PATCH)
    tiles = [Tile(r, c) for r in rows for c in cols]
    progress.info(f"{len(tiles)} tiles of {tile_w} x {tile_h} model px (overlap {config.overlap} px, blended; "
                  f"the last row and column as long as needed) over {window.width} x {window.height} model px.")
    total = np.zeros((window.height, window.width), dtype=np.float32)
    weight_sum = np.zeros_like(total)

    def blend(tile: Tile, _: object, heights: np.ndarray) -> None:
        h, w = tile.shape
        weights = np.outer(_ramp(h, config.overlap), _ramp(w, config.overlap))
        top, left = tile.row.origin, tile.col.origin
        rows_in, cols_in = min(h, window.height - top), min(w, window.width - left)
        total[top:top + rows_in, left:left + cols_in] += heights[:rows_in, :cols_in] * weights[:rows_in, :cols_in]
        weight_sum[top:top + rows_in, left:left + cols_in] += weights[:rows_in, :cols_in]

    def forward(batch: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(batch)).cpu().numpy()  # [B, h, w]

    shapes = list(dict.fromkeys(tile.shape for tile in tiles))
    by_shape = sorted(tiles, key=lambda tile: shapes.index(tile.shape))  # the order the sums were always taken in
    batcher = TileBatcher(model, forward, source, window, config.batch_size, (tile_w, tile_h), other_models=False)
    batcher.run(by_shape, blend, progress, report)
    return total / weight_sum


def write_heights(source: InputRaster, window: Window, heights: np.ndarray, writer: GeoTiffWriter,
                  progress: Progress, report: StageProgress) -> np.ndarray:
    """Write ``heights`` (model grid) onto the window's grid; returns the valid heights' count, sum, min, max."""
    summary = np.array([0.0, 0.0, np.inf, -np.inf])
    for left, top, w, h, ends_row in blocks(window.width, window.height):
        if left == 0:
            r0, r1, rf = bilinear_axis(top, h, window.height, heights.shape[0])
            rows = heights[r0] * (1 - rf)[:, None] + heights[r1] * rf[:, None]
        check_canceled(progress)
        c0, c1, cf = bilinear_axis(left, w, window.width, heights.shape[1])
        block = rows[:, c0] * (1 - cf) + rows[:, c1] * cf
        valid = source.read_valid(window.x0 + left, window.y0 + top, w, h)
        writer.write(top, left, np.where(valid, block, np.float32(NODATA)))
        if valid.any():
            values = block[valid]
            summary += [values.size, float(values.sum(dtype=np.float64)), 0, 0]
            summary[2], summary[3] = min(summary[2], float(values.min())), max(summary[3], float(values.max()))
        if ends_row:
            source.flush()
            report((top + h) / window.height)
    return summary


def run_canopy_height(config: CanopyHeightConfig, progress: Optional[Progress] = None) -> CanopyHeightResult:
    """Canopy heights of ``config.input_path`` into ``config.output_path``; raises EngineError / Canceled."""
    return perform(TABLE, validate_canopy_config, config, progress, "the height raster", _run)


def _run(config: CanopyHeightConfig, run: Run) -> CanopyHeightResult:
    """The stages in order (TABLE)."""
    progress, stack = run.progress, run.stack
    with run.stage("Reading input") as report:
        source = InputRaster(config.input_path, config.bands, progress)
        stack.callback(source.close)
        window = working_window(source.geotransform, source.width, source.height, config.extent)
        progress.info(source.describe_masks())
        model_raster, model_window, input_gsd, resampled = _model_grid(source, window, config, progress, stack)
        model_source = RasterSource(model_raster, model_window, progress, report)
    with run.stage("Loading model"):
        model, device, precision = load_chmv2(config, progress)
    with run.stage("Predicting heights") as report:
        heights = predict_heights(model, model_source, model_window, config, progress, report)
    with run.stage("Writing heights") as report:
        count, total, low, high = _write(config, source, window, heights, run, report)
    stats = (low, total / count, high) if count else (None, None, None)
    summary = "none." if not count else f"min {low:.2f} m, mean {total / count:.2f} m, max {high:.2f} m."
    progress.info(f"Heights of {int(count)} valid pixels: {summary} ({run.elapsed():.1f} s)")
    wall, cpu = run.timings()
    run.commit(config.output_path)
    output = os.path.abspath(config.output_path)
    model_gsd = config.resolution if resampled else input_gsd
    return CanopyHeightResult(output, os.path.splitext(output)[0] + ".qml", input_gsd, model_gsd, resampled,
                              int(count), *(None if v is None else float(v) for v in stats), device, precision,
                              milliseconds(wall), milliseconds(cpu))


def _write(config: CanopyHeightConfig, source: InputRaster, window: Window, heights: np.ndarray, run: Run,
           report: StageProgress) -> np.ndarray:
    """Stage "Writing heights": the staged height raster and its style; returns write_heights' summary."""
    staged = run.staging.path(config.output_path)
    try:
        grid = Grid(window.width, window.height, window_geotransform(source.geotransform, window), source.srs)
        writer = run.stack.enter_context(height_writer(staged, grid))
        summary = write_heights(source, window, heights, writer, run.progress, report)
        writer.finish()
        write_height_qml(os.path.splitext(staged)[0] + ".qml")
    except OSError as exc:
        raise write_error(f"the height raster '{config.output_path}'", exc,
                          os.path.dirname(os.path.abspath(config.output_path))) from exc
    return summary
