"""A segmentation run's statistics (the stats file's content), its per-cluster log lines and its result."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from osgeo import gdal

from ...version import plugin_version
from ..cluster.choice_of_k import Fit
from ..encode.tiling import TilePlan
from ..jobs.results import SegmentationResult
from ..jobs.segmentation import SegmentationConfig
from ..progress import Progress
from ..raster.georef import PixelArea, Window
from ..raster.pixels import RasterSource
from ..trees.evidence import EvidenceAccumulator


@dataclass
class LabelCounts:
    """What writing the labels counted: pixels and hectares per label (0 = NoData), each cluster's evidence."""

    pixels: np.ndarray
    hectares: Optional[np.ndarray]
    evidence: EvidenceAccumulator


def absolute(path: Optional[str]) -> Optional[str]:
    """``path`` made absolute; None when no path is given."""
    return os.path.abspath(path) if path else None


def _weights_sha256(weights: Any) -> Optional[str]:
    return weights.sha256() if weights.path and os.path.isfile(weights.path) else None


def _finite(value: float) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def _crs(source: RasterSource) -> Optional[str]:
    srs = source.srs
    if srs is None:
        return None
    authority = srs.GetAuthorityName(None)
    return f"{authority}:{srs.GetAuthorityCode(None)}" if authority else srs.ExportToProj4()


def build_stats(config: SegmentationConfig, source: RasterSource, window: Window, backbone: Any,
                device: str, precision: str, plan: TilePlan, skipped: int, fit: Fit, labels: LabelCounts,
                area: PixelArea, timings: Dict[str, float], cpu_timings: Dict[str, float]) -> Dict[str, Any]:
    """The statistics of a run, in the stats file's key order (the caller adds "trees" and "legend")."""
    total = int(labels.pixels[1:].sum())
    cluster_pixels = {str(k): int(labels.pixels[k]) for k in range(1, fit.k + 1)}
    cluster_area = {str(k): {"map_units": float(labels.pixels[k] * area.map_units),
                             "hectares": None if labels.hectares is None else float(labels.hectares[k])}
                    for k in range(1, fit.k + 1)}
    weights = backbone.weights
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
                  "crs": _crs(source),
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
        "tiles": {"total": len(plan.tiles), "skipped": skipped, "tile_width": plan.tile_width,
                  "tile_height": plan.tile_height, "grid_cols": plan.grid_cols, "grid_rows": plan.grid_rows},
        "patches": {"valid": fit.valid_patches, "sampled": fit.samples},
        "seed": config.seed,
        "max_samples": config.max_samples,
        "cluster_model": {"applied": absolute(config.cluster_model), "saved": absolute(config.cluster_model_output)},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "cpu_s": {k: round(v, 3) for k, v in cpu_timings.items()},
        "versions": {"treeseg": plugin_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "gdal": gdal.__version__, "python": platform.python_version()},
    }


def log_clusters(stats: Dict[str, Any], k: int, progress: Progress) -> None:
    """One log line per cluster: pixels, share of the valid pixels, area."""
    for label in map(str, range(1, k + 1)):
        ha = stats["cluster_area"][label]["hectares"]
        hectares = "" if ha is None else f", {ha:.4f} ha"
        progress.info(f"Cluster {label}: {stats['cluster_pixels'][label]} px "
                      f"({stats['cluster_percent'][label]:.1f} %), "
                      f"{stats['cluster_area'][label]['map_units']:.6g} map units²{hectares}.")


def segmentation_result(config: SegmentationConfig, fit: Fit, labels: LabelCounts, stats: Dict[str, Any],
                        tree_labels: List[int]) -> SegmentationResult:
    """The run's result: the absolute output paths, the fit and the counts."""
    output = os.path.abspath(config.output_path)
    return SegmentationResult(
        output_path=output, chosen_k=fit.k, wcss=dict(fit.wcss), wcss_drop=dict(fit.drop),
        cluster_pixels={k: int(labels.pixels[k]) for k in range(1, fit.k + 1)},
        cluster_area={int(k): v for k, v in stats["cluster_area"].items()}, stats=stats,
        tree_clusters=list(tree_labels), trees_path=absolute(config.trees_path),
        crowns_path=absolute(config.crowns_path), polygons_path=absolute(config.polygons_path),
        stats_path=absolute(config.stats_path), cluster_model_path=absolute(config.cluster_model_output),
        style_path=os.path.splitext(output)[0] + ".qml")
