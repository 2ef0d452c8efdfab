"""A cluster model in a run: applied (its bands, stretch, centroids and legend; no fit) or built from the fit.

Decisions:

* Applying checks the model against the run twice before any encoding: the input (band count, bands,
  which bands are stretched) right after the raster is opened, the backbone (variant, embedding, weights
  SHA-256, patch size and stride, normalisation) right after the weights are loaded. Every difference is
  named at once. A precision or tiling other than the fit's is warned about (the features differ a little,
  the labels may too), not refused.
* An applied model's stretch replaces the run's own percentile stretch, so every raster labelled with one
  model sees its values scaled the same way; with no band choice given, the model's bands are used.
* A saved model records the weights' SHA-256 (a full read of the weights file) and its encoding (device,
  precision, tile size, overlap).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from ...version import plugin_version
from ..cluster.choice_of_k import Fit, no_valid_pixels
from ..cluster.model import (
    BackboneIdentity,
    ClusterModel,
    Encoding,
    FitInput,
    FitRecord,
    Fitted,
    InputBands,
    backbone_differences,
    backbone_identity,
    encoding_notes,
    input_differences,
    refuse_mismatch,
)
from ..cluster.model_file import save_cluster_model
from ..encode.features import FeatureStore
from ..errors import write_error
from ..jobs.segmentation import FitSettings, SegmentationConfig
from ..progress import Progress
from ..raster.input import InputRaster
from ..raster.palette import Legend, default_legend
from ..raster.pixels import RasterSource, Stretch, stretched_bands


def run_bands(model: Optional[Fitted], bands: Optional[Sequence[int]]) -> Optional[Sequence[int]]:
    """The band choice to open the input with: the run's, else the applied model's."""
    return model.input.bands if model is not None and bands is None else bands


def model_stretch(model: Fitted, path: str, raster: InputRaster, progress: Progress) -> Dict[int, Stretch]:
    """Refuse a model whose input differs from ``raster``; else the model's stretch, to read ``raster`` with."""
    refuse_mismatch(path, input_differences(model, raster.ds.RasterCount, raster.bands, stretched_bands(raster)),
                    model.what)
    for band, stretch in sorted(model.input.stretch.items()):
        progress.info(f"Band {band} stretched to 0..1 between {stretch.low:.6g} and {stretch.high:.6g}, as in "
                      f"the {model.what}.")
    return dict(model.input.stretch)


def check_backbone(model: Fitted, path: str, backbone: Any) -> None:
    """Refuse a model fitted with another backbone, weights, stride or normalisation than ``backbone``."""
    refuse_mismatch(path, backbone_differences(model, backbone_identity(backbone)), model.what)


def compare_encoding(model: Fitted, run: Encoding, progress: Progress) -> None:
    """Warn when this run's precision or tiling differs from the fit's (the features, and labels, may differ)."""
    warnings, notes = encoding_notes(model, run)
    for text in warnings:
        progress.warning(text)
    for text in notes:
        progress.info(text)


def applied_fit(model: ClusterModel, path: str, store: FeatureStore, where: str, progress: Progress) -> Fit:
    """The model as this run's fit: no k-means, no K sweep."""
    valid = store.count_valid()
    if valid == 0:
        raise no_valid_pixels(where)
    progress.info(f"Applying the cluster model '{path}': K = {model.k} fitted on {model.fit.samples} patches of "
                  f"{len(model.fit.inputs)} raster(s); no k-means fit and no K sweep in this run.")
    return Fit(model.k, model.centroids, dict(model.wcss), dict(model.wcss_drop), 0, valid)


def fit_record(settings: FitSettings, inputs: Sequence[FitInput], encoding: Encoding) -> FitRecord:
    """How a model was fitted, from the run's K settings, its inputs and its encoding."""
    return FitRecord("fixed" if settings.k else "automatic", settings.k_min, settings.k_max,
                     float(settings.elbow_threshold), settings.seed, settings.max_samples, tuple(inputs),
                     plugin_version(), encoding)


def input_bands(source: RasterSource) -> InputBands:
    """The band choice and stretch ``source`` is read with."""
    return InputBands(tuple(source.bands), source.raster.ds.RasterCount, dict(source.stretch))


def model_from_fit(fit: Fit, backbone: BackboneIdentity, bands: InputBands, record: FitRecord,
                   legend: Optional[Legend] = None) -> ClusterModel:
    """The cluster model of ``fit`` on features of ``backbone`` from rasters read with ``bands``; its legend is
    ``legend`` (e.g. with the tree names a Segment Trees run gave its labels), else the fixed palette."""
    return ClusterModel(fit.centroids, dict(fit.wcss), dict(fit.drop), backbone, bands,
                        legend or default_legend(fit.k), record)


def save_model(model: ClusterModel, staged: str, destination: str, progress: Progress) -> None:
    """Write ``model`` to its staged path; a failure names the destination."""
    try:
        save_cluster_model(model, staged)
    except OSError as exc:
        raise write_error(f"the cluster model '{destination}'", exc,
                          os.path.dirname(os.path.abspath(destination))) from exc
    progress.info(f"Cluster model (K = {model.k}) saved to '{destination}'.")


def save_fitted(config: SegmentationConfig, fit: Fit, backbone: Any, encoding: Encoding, source: RasterSource,
                legend: Legend, staged: str, progress: Progress) -> None:
    """Save the model a Segment Trees run fitted on its one input, with the legend its labels got, to the
    staged ``cluster_model_output``."""
    record = fit_record(config, [FitInput(os.path.basename(config.input_path), fit.valid_patches, fit.samples)],
                        encoding)
    model = model_from_fit(fit, backbone_identity(backbone), input_bands(source), record, legend)
    save_model(model, staged, config.cluster_model_output, progress)
