"""Orchestration: read -> encode tiles -> fit k-means -> label pixels -> write outputs.

Stages (:data:`STAGES`, reported through ``Progress.stage``) and their share of the progress bar:
"Reading input" 0-3 % (opening, and the stretch sample of non-Byte bands), "Loading model" 3-5 %,
"Encoding tiles" 5-70 %, "Fitting k-means" 70-80 %, "Writing labels" 80-97 % (labels are predicted
and written block by block, each cluster's vegetation evidence gathered from the same reads, then the tree
rule decides: engine/tree_outputs.py), then, when asked for, "Writing polygons", "Writing tree mask",
"Writing crowns" and "Writing statistics". Cancel is checked as each stage starts, per stretch strip, per
tile, per k-means fit step (inside ``sweep_k``), per output block, during polygonising and just before the
outputs are moved into place.
A canceled or failed run removes its temporary files (``.treeseg-*`` folders) and leaves the
destination folders as they were: an existing output is replaced only at the very end.

Decisions:

* The input is read (and its stretch sampled) before the model is loaded, so a bad or empty input
  fails in seconds, not after loading a large model. A working window with fewer patches than the
  clusters asked for (e.g. a raster or extent of at most 16 x 16 px: a single patch) is refused before
  anything is loaded.
* The fit (engine/fitting.py) samples valid patches from the whole working window. With
  ``cluster_model`` the file's model is applied instead (engine/cluster_model_run.py: checked against
  the input and the backbone before any encoding; its stretch, centroids and colours; no fit, no K
  sweep); ``cluster_model_output`` saves the model this run fitted, staged with the other outputs.
* Failures that are not the user's settings still end in an :class:`EngineError` naming the fix:
  running out of memory (``MemoryError`` or PyTorch's CPU allocator), a full disk, a read error in a
  damaged input, a write error in the output folder (which may also have vanished).
* The stats record timings, so the stats file differs between runs; the label raster does not.
* The weights' SHA-256 (a full read of the file) is computed only when a stats file or a cluster model
  output is asked for, or a cluster model is applied (it is checked against the model's).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
from osgeo import gdal

from ..dinov3 import Backbone
from ..version import plugin_version
from . import cluster_model_run as model_run
from . import clustering, tree_outputs
from .cluster_model import ClusterModel
from .cluster_model_file import load_cluster_model
from .config import SegmentationConfig, validate_config
from .errors import Canceled, EngineError, is_out_of_memory, memory_error, write_error
from .evidence import EvidenceAccumulator, HeightGrid, check_nir_band, read_block
from .features import FeatureStore, TileEncoder
from .fitting import Fit, fit_store
from .gdal_mode import raising_gdal_errors
from .georef import PixelArea, Window, pixel_area, window_geotransform, working_window
from .labels import block_labels
from .palette import default_legend
from .pixels import RasterSource
from .polygons import polygonize
from .progress import Progress, StageProgress, check_canceled
from .raster_io import InputRaster
from .report import write_stats
from .result import SegmentationResult
from .runtime import load_model
from .staging import Staging
from .tiling import TilePlan, grid_length, plan_tiles
from .writer import BLOCK, LabelWriter, write_qml

STAGES = ("Reading input", "Loading model", "Encoding tiles", "Fitting k-means", "Writing labels",
          "Writing polygons", "Writing statistics", "Writing tree mask", "Writing crowns")
# the stages after "Writing labels" only when those outputs are asked for; the tree mask and the crowns
# are written after the polygons and before the statistics (which count them)
SIDECARS = (".aux.xml", ".ovr", ".msk")  # GDAL files beside a raster that describe it: stale ones go


@dataclass
class _Labels:
    pixels: np.ndarray
    hectares: Optional[np.ndarray]
    evidence: EvidenceAccumulator


def _weights_sha256(weights: Any) -> Optional[str]:
    return weights.sha256() if weights.path and os.path.isfile(weights.path) else None


def _absolute(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(path) if path else None


def _finite(value: float) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def _write_labels(source: RasterSource, window: Window, store: FeatureStore, fit: Fit, area: PixelArea,
                  writer: LabelWriter, config: SegmentationConfig, heights: Optional[HeightGrid],
                  progress: Progress) -> _Labels:
    """Predict and write the labels block by block, gathering each cluster's evidence from the same reads."""
    evidence = EvidenceAccumulator(fit.k, config.nir_band is not None, heights is not None)
    pixels = np.zeros(fit.k + 1, dtype=np.int64)
    hectares = np.zeros(fit.k + 1) if area.has_hectares else None
    report = StageProgress(progress, 80, 97)
    for top in range(0, window.height, BLOCK):
        h = min(BLOCK, window.height - top)
        for left in range(0, window.width, BLOCK):
            check_canceled(progress)
            w = min(BLOCK, window.width - left)
            block = read_block(source, window.x0 + left, window.y0 + top, w, h, config.nir_band, heights, left, top)
            labels = block_labels(store, fit.centroids, clustering.squared_distances, config.stride, top, left,
                                  block.valid)
            writer.write(top, left, labels)
            evidence.add(labels, block)
            pixels += np.bincount(labels.ravel(), minlength=fit.k + 1)
            if hectares is not None:
                weights = area.block_hectares(top, left, h, w).ravel()
                hectares += np.bincount(labels.ravel(), weights=weights, minlength=fit.k + 1)
        writer.flush()
        source.flush()
        if heights is not None:
            heights.flush()
        report((top + h) / window.height)
    return _Labels(pixels, hectares, evidence)


def _build_stats(config: SegmentationConfig, source: RasterSource, window: Window, backbone: Any,
                 device: str, precision: str, plan_info: Dict[str, Any], fit: Fit, labels: _Labels,
                 area: PixelArea, timings: Dict[str, float]) -> Dict[str, Any]:
    total = int(labels.pixels[1:].sum())
    cluster_pixels = {str(k): int(labels.pixels[k]) for k in range(1, fit.k + 1)}
    cluster_area = {str(k): {"map_units": float(labels.pixels[k] * area.map_units),
                             "hectares": None if labels.hectares is None else float(labels.hectares[k])}
                    for k in range(1, fit.k + 1)}
    weights = backbone.weights
    srs = source.srs
    crs = None
    if srs is not None:
        authority = srs.GetAuthorityName(None)
        crs = f"{authority}:{srs.GetAuthorityCode(None)}" if authority else srs.ExportToProj4()
    return {
        "chosen_k": fit.k,
        "k_mode": "model" if config.cluster_model else "fixed" if config.k else "automatic",
        "k_min": config.k_min,
        "k_max": config.k_max,
        "elbow_threshold": config.elbow_threshold,
        "wcss": {str(k): v for k, v in fit.wcss.items()},
        "wcss_drop_percent": {str(k): _finite(v) for k, v in fit.drop.items()},
        "cluster_pixels": cluster_pixels,
        "cluster_percent": {k: (100.0 * v / total if total else 0.0) for k, v in cluster_pixels.items()},
        "cluster_area": cluster_area,
        "area_note": area.note,
        "valid_pixels": total,
        "nodata_pixels": int(labels.pixels[0]),
        "input": {"path": os.path.abspath(config.input_path), "bands": list(source.bands),
                  "window": {"x0": window.x0, "y0": window.y0, "width": window.width, "height": window.height},
                  "crs": crs,
                  "stretch": {str(b): {"low": s.low, "high": s.high} for b, s in source.stretch.items()}},
        "output": os.path.abspath(config.output_path),
        "model": {"source": config.model, "variant": backbone.variant, "embed_dim": backbone.embed_dim,
                  "weights_path": str(weights.path) if weights.path else None, "weights_format": weights.format,
                  "weights_sha256": _weights_sha256(weights) if config.stats_path else None,
                  "tensors_loaded": weights.tensors_loaded, "tensors_total": weights.tensors_total},
        "device": device,
        "precision": precision,
        "stride": config.stride,
        "tile_size": config.tile_size,
        "overlap": config.overlap,
        "batch_size": config.batch_size,
        "tiles": plan_info,
        "patches": {"valid": fit.valid_patches, "sampled": fit.samples},
        "seed": config.seed,
        "max_samples": config.max_samples,
        "cluster_model": {"applied": _absolute(config.cluster_model), "saved": _absolute(config.cluster_model_output)},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "versions": {"treeseg": plugin_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "gdal": gdal.__version__, "python": platform.python_version()},
    }


def _check_size(window: Window, config: SegmentationConfig) -> None:
    """Refuse a working window with fewer patches than the clusters asked for, before loading anything."""
    patches = grid_length(window.width, config.stride) * grid_length(window.height, config.stride)
    needed = config.k or config.k_min
    if patches >= needed:
        return
    what = "extent" if config.extent is not None else "raster"
    if patches == 1:
        raise EngineError(f"The {what} is too small: {window.width} x {window.height} px is a single 16 x 16 px "
                          "patch, and k-means needs at least 2 patches. Use a raster or extent larger than "
                          "16 x 16 px (at least 64 x 64 px for useful clusters).")
    raise EngineError(f"The {what} is too small: {window.width} x {window.height} px holds {patches} patches at "
                      f"stride {config.stride}, fewer than the {needed} clusters asked for. Use a larger "
                      "extent, a smaller patch stride, or fewer clusters.")


@raising_gdal_errors
def run_segmentation(config: SegmentationConfig, progress: Optional[Progress] = None) -> SegmentationResult:
    """Segment ``config.input_path`` into ``config.output_path``; raises EngineError / Canceled.

    Whatever happens, the temporary files are removed and the destination is left as it was unless the
    run succeeds.
    """
    progress = progress or Progress()
    validate_config(config)
    try:
        return _run(config, progress)
    except EngineError:
        raise
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise memory_error(exc) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise write_error("the temporary files", exc, os.path.dirname(os.path.abspath(config.output_path))) \
                from exc
        raise


class _Stages:
    """Enters the run's stages (STAGES): names each to the progress, checks for cancel, and times it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.progress.stage(name)
        check_canceled(self.progress)
        tick = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - tick

    def timings(self, total: float) -> Dict[str, float]:
        """The statistics' timings_s: reading counts with encoding, polygons, mask and crowns with the labels."""
        seconds = self.seconds.get
        return {"load_model": seconds(STAGES[1], 0.0),
                "read_encode": seconds(STAGES[0], 0.0) + seconds(STAGES[2], 0.0),
                "fit": seconds(STAGES[3], 0.0),
                "predict_write": sum(seconds(name, 0.0) for name in (STAGES[4], STAGES[5], STAGES[7], STAGES[8])),
                "total": total}


def _open_input(config: SegmentationConfig, model: Optional[ClusterModel], progress: Progress,
                stack: contextlib.ExitStack) -> Tuple[RasterSource, Window]:
    """The input raster (closed with ``stack``), its working window, checked, with the stretch fitted (or
    the applied model's)."""
    raster = InputRaster(config.input_path, model_run.run_bands(model, config.bands), progress)
    stack.callback(raster.close)
    window = working_window(raster.geotransform, raster.width, raster.height, config.extent)
    if config.extent is not None:
        progress.info(f"Extent snapped to pixels x {window.x0}..{window.x0 + window.width}, "
                      f"y {window.y0}..{window.y0 + window.height} ({window.width} x {window.height} px).")
    if model is None:
        _check_size(window, config)
    progress.info(raster.describe_masks())
    check_nir_band(raster, config.nir_band)
    stretch = model_run.model_stretch(model, config.cluster_model, raster, progress) if model is not None else None
    return RasterSource(raster, window, progress, StageProgress(progress, 0, 3), stretch), window


def _check_grid(backbone: Backbone, plan: TilePlan) -> None:
    grid = tuple(backbone.grid_size(plan.tile_height, plan.tile_width))
    if grid != plan.tile_grid:
        raise EngineError(f"The model's patch grid {grid} does not match the tiling {plan.tile_grid}; the "
                          "weights are not a ViT with 16 px patches. Use DINOv3 ViT weights (patch size 16).")


def _run(config: SegmentationConfig, progress: Progress) -> SegmentationResult:
    started = time.perf_counter()
    stage = _Stages(progress)
    output_folder = os.path.dirname(os.path.abspath(config.output_path))
    model = load_cluster_model(config.cluster_model) if config.cluster_model else None
    with contextlib.ExitStack() as stack:
        with stage(STAGES[0]):
            source, window = _open_input(config, model, progress, stack)
            gt = window_geotransform(source.geotransform, window)
            area = pixel_area(gt, source.srs, window.width, window.height)
            heights = tree_outputs.prepare(config, source, window, gt, stack)
        progress.progress(3)

        with stage(STAGES[1]):
            backbone, device, precision = load_model(config, progress)
            if model is not None:
                model_run.check_backbone(model, config.cluster_model, backbone)
            check_canceled(progress)
        progress.progress(5)

        with stage(STAGES[2]):
            plan = plan_tiles(window.height, window.width, config.tile_size, config.overlap, config.stride)
            _check_grid(backbone, plan)
            staging = stack.enter_context(Staging())
            staged_output = staging.path(config.output_path)
            store = stack.enter_context(FeatureStore(output_folder, plan.grid_rows, plan.grid_cols,
                                                     backbone.embed_dim))
            progress.info(f"{len(plan.tiles)} tiles of {plan.tile_width} x {plan.tile_height} px "
                          f"(overlap {config.overlap} px) over {window.width} x {window.height} px; patch grid "
                          f"{plan.grid_cols} x {plan.grid_rows} at stride {config.stride}.")
            encoder = TileEncoder(backbone, source, window, plan, store, config.batch_size)
            encoder.run(progress, StageProgress(progress, 5, 70))
            progress.info(f"Encoded {len(plan.tiles) - encoder.skipped} tiles; skipped {encoder.skipped} "
                          "with no valid pixel.")

        where = "the chosen extent" if config.extent is not None else "the raster"
        if model is not None:
            fit = model_run.applied_fit(model, config.cluster_model, store, where, progress)
        else:
            with stage(STAGES[3]):
                fit = fit_store(store, config, where, progress, StageProgress(progress, 70, 80))

        with stage(STAGES[4]):
            try:
                writer = LabelWriter(staged_output, window.width, window.height, gt, source.srs, fit.k,
                                     model.legend if model is not None else None)
                stack.callback(writer.close)
                labels = _write_labels(source, window, store, fit, area, writer, config, heights, progress)
                trees = tree_outputs.decide(labels.evidence, config, progress)
                # An applied model keeps its colours and names (those of the run that fitted it) everywhere.
                legend = model.legend if model is not None else default_legend(fit.k, trees["tree_labels"])
                writer.set_legend(legend)
                writer.finish()
                write_qml(os.path.splitext(staged_output)[0] + ".qml", fit.k, legend)
            except OSError as exc:  # LabelWriter's WriteError, the .qml, or the feature file gone with its folder
                raise write_error(f"the label raster '{config.output_path}'", exc, output_folder) from exc
            if config.cluster_model_output:
                model_run.save_fitted(config, fit, backbone, source, legend, staging.path(config.cluster_model_output),
                                      progress)
        if config.polygons_path:
            with stage(STAGES[5]):
                count = polygonize(staged_output, staging.path(config.polygons_path), progress,
                                   config.polygons_path)
                progress.info(f"Wrote {count} polygons.")
        if config.trees_path:
            with stage(STAGES[7]):
                trees.update(tree_outputs.write_mask(config, staging, staged_output, trees["tree_labels"], progress))
        if config.crowns_path:
            with stage(STAGES[8]):
                trees.update(tree_outputs.write_crown_polygons(config, staging, staged_output, trees["tree_labels"],
                                                               heights, area, fit.k, progress))
        progress.progress(99)
        plan_info = {"total": len(plan.tiles), "skipped": encoder.skipped, "tile_width": plan.tile_width,
                     "tile_height": plan.tile_height, "grid_cols": plan.grid_cols, "grid_rows": plan.grid_rows}
        stats = _build_stats(config, source, window, backbone, device, precision, plan_info, fit, labels,
                             area, stage.timings(time.perf_counter() - started))
        stats["trees"] = trees
        stats["legend"] = {"colors": list(legend.colors), "names": list(legend.names)}  # as the raster has them
        for k in range(1, fit.k + 1):
            ha = stats["cluster_area"][str(k)]["hectares"]
            progress.info(f"Cluster {k}: {stats['cluster_pixels'][str(k)]} px "
                          f"({stats['cluster_percent'][str(k)]:.1f} %), "
                          f"{stats['cluster_area'][str(k)]['map_units']:.6g} map units²"
                          + ("" if ha is None else f", {ha:.4f} ha") + ".")
        if config.stats_path:
            with stage(STAGES[6]):
                try:
                    write_stats(staging.path(config.stats_path), stats)
                except OSError as exc:
                    raise write_error(f"the statistics file '{config.stats_path}'", exc,
                                      os.path.dirname(os.path.abspath(config.stats_path))) from exc
        if not progress.may_commit():
            raise Canceled()
        name = os.path.basename(config.output_path)
        staging.commit(last=name, stale=[name + suffix for suffix in SIDECARS])
    progress.progress(100)
    output = os.path.abspath(config.output_path)
    return SegmentationResult(
        output_path=output, chosen_k=fit.k, wcss=dict(fit.wcss), wcss_drop=dict(fit.drop),
        cluster_pixels={k: int(labels.pixels[k]) for k in range(1, fit.k + 1)},
        cluster_area={int(k): v for k, v in stats["cluster_area"].items()}, stats=stats,
        tree_clusters=list(trees["tree_labels"]), trees_path=_absolute(config.trees_path),
        crowns_path=_absolute(config.crowns_path), polygons_path=_absolute(config.polygons_path),
        stats_path=_absolute(config.stats_path), cluster_model_path=_absolute(config.cluster_model_output),
        style_path=os.path.splitext(output)[0] + ".qml")
