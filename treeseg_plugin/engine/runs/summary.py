"""A finished segmentation run summed up: its statistics (engine/runs/statistics.py) filled once from what the
stages produced, the per-cluster log lines and the run's result, both read from those statistics."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from osgeo import gdal

from ...version import plugin_version
from ..cluster.choice_of_k import Fit
from ..encode.tiling import TilePlan
from ..jobs.results import SegmentationResult
from ..jobs.segmentation import SegmentationConfig
from ..progress import Progress
from ..raster.palette import Legend
from ..raster.pixels import RasterSource
from ..trees.evidence import EvidenceAccumulator
from .inputs import RunInput
from .statistics import (
    ChoiceOfK,
    ClusterCounts,
    ClusterModelFiles,
    Encoding,
    InputStatistics,
    ModelStatistics,
    Sampling,
    SegmentationStatistics,
    TileCounts,
    Timings,
    TreeStatistics,
    Versions,
)


@dataclass
class LabelCounts:
    """What writing the labels counted: pixels and hectares per label (0 = NoData), each cluster's evidence."""

    pixels: np.ndarray
    hectares: Optional[np.ndarray]
    evidence: EvidenceAccumulator


@dataclass(frozen=True)
class Encoded:
    """What the encoding stage reports: the device and precision used, the tile plan and the tiles skipped."""

    device: str
    precision: str
    plan: TilePlan
    skipped: int


def absolute(path: Optional[str]) -> Optional[str]:
    """``path`` made absolute; None when no path is given."""
    return os.path.abspath(path) if path else None


def _crs(source: RasterSource) -> Optional[str]:
    srs = source.srs
    if srs is None:
        return None
    authority = srs.GetAuthorityName(None)
    return f"{authority}:{srs.GetAuthorityCode(None)}" if authority else srs.ExportToProj4()


def _model(source: str, backbone: Any, checksum: bool) -> ModelStatistics:
    """The backbone loaded from the model setting ``source``; with ``checksum``, its weights' SHA-256."""
    weights = backbone.weights
    checksum = checksum and bool(weights.path) and os.path.isfile(weights.path)
    return ModelStatistics(source, backbone.variant, backbone.embed_dim,
                           str(weights.path) if weights.path else None, weights.format,
                           weights.sha256() if checksum else None,
                           weights.tensors_loaded, weights.tensors_total)


def build_statistics(config: SegmentationConfig, inputs: RunInput, backbone: Any, encoded: Encoded, fit: Fit,
                     labels: LabelCounts, applied_sha256: Optional[str], trees: TreeStatistics, legend: Legend,
                     timings: Timings) -> SegmentationStatistics:
    """The statistics of a finished run, from what its stages produced."""
    source, window, plan = inputs.source, inputs.window, encoded.plan
    mode = "model" if config.cluster_model else "fixed" if config.k else "automatic"
    hectares = None if labels.hectares is None else tuple(float(h) for h in labels.hectares)
    return SegmentationStatistics(
        k=ChoiceOfK(fit.k, mode, config.k_min, config.k_max, config.elbow_threshold, fit.wcss, fit.drop),
        counts=ClusterCounts(tuple(int(n) for n in labels.pixels), inputs.area.map_units, hectares, inputs.area.note),
        input=InputStatistics(os.path.abspath(config.input_path), tuple(source.bands),
                              (window.x0, window.y0, window.width, window.height), _crs(source), source.stretch),
        output=os.path.abspath(config.output_path), model=_model(config.model, backbone, bool(config.stats_path)),
        encoding=Encoding(encoded.device, encoded.precision, config.stride, config.tile_size, config.overlap,
                          config.batch_size, config.working_resolution,
                          (inputs.encoded_window.width, inputs.encoded_window.height)),
        tiles=TileCounts(len(plan.tiles), encoded.skipped, plan.tile_width, plan.tile_height, plan.grid_cols,
                         plan.grid_rows),
        sampling=Sampling(fit.valid_patches, fit.samples, config.seed, config.max_samples),
        cluster_model=ClusterModelFiles(absolute(config.cluster_model), absolute(config.cluster_model_output),
                                        applied_sha256),
        timings=timings,
        versions=Versions(plugin_version(), torch.__version__, np.__version__, gdal.__version__,
                          platform.python_version()),
        trees=trees, legend=legend)


def log_clusters(stats: SegmentationStatistics, progress: Progress) -> None:
    """One log line per cluster: pixels, share of the valid pixels, area."""
    for label in stats.labels:
        area = stats.counts.area(label)
        hectares = "" if area["hectares"] is None else f", {area['hectares']:.4f} ha"
        progress.info(f"Cluster {label}: {stats.counts.pixels[label]} px ({stats.counts.percent(label):.1f} %), "
                      f"{area['map_units']:.6g} map units²{hectares}.")


def segmentation_result(config: SegmentationConfig, stats: SegmentationStatistics) -> SegmentationResult:
    """The run's result: the absolute output paths, the fit, the counts and the statistics' JSON."""
    output = os.path.abspath(config.output_path)
    return SegmentationResult(
        output_path=output, chosen_k=stats.k.chosen_k, wcss=dict(stats.k.wcss),
        wcss_drop=dict(stats.k.wcss_drop_percent),
        cluster_pixels={label: stats.counts.pixels[label] for label in stats.labels},
        cluster_area={label: stats.counts.area(label) for label in stats.labels}, stats=stats.to_json(),
        tree_clusters=list(stats.trees.tree_labels), trees_path=absolute(config.trees_path),
        crowns_path=absolute(config.crowns_path), polygons_path=absolute(config.polygons_path),
        stats_path=absolute(config.stats_path), cluster_model_path=absolute(config.cluster_model_output),
        style_path=os.path.splitext(output)[0] + ".qml")
