"""Fit Cluster Model: one model from patch features sampled across several rasters.

The parts, so that a distributed runner can place them on workers:

* :func:`fit_input_bands` - the inputs' band choice, checked alike, and the 2-98 % stretch of the non-Byte
  bands from the values of every input pooled;
* :func:`sample_features` - one raster read with that stretch at the working resolution (engine/raster/
  working_grid.py, as Segment Trees reads it), encoded, and a seeded uniform sample of its valid patch
  features (at most ``max_samples`` rows, float16) with its count of valid patches;
* :func:`fit_cluster_model` - the samples' rows split in proportion to each raster's valid patches
  (``max_samples`` in all, largest remainders, seeded), then Segment Trees' fit (engine/cluster/choice_of_k.py: the
  same K choice and WCSS table);
* :func:`run_fit_cluster_model` - all of it in one process (:data:`TABLE`'s stages, run by
  engine/runs/skeleton.py), the model staged and committed there.

With one input the fit sample is exactly Segment Trees' (same seed, same rows), so Fit Cluster Model on
one raster fits the clusters Segment Trees saves for it (Segment Trees' file also names the tree
clusters, which only a labelling pass can tell). Every input must have the band count, band
choice and band types of the first, so the model applies to each of them.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..cluster.choice_of_k import fit_samples, no_valid_pixels
from ..cluster.model import BackboneIdentity, ClusterModel, Encoding, FitInput, InputBands, backbone_identity
from ..encode.features import FeatureStore, TileEncoder
from ..encode.runtime import load_model
from ..encode.tiling import PATCH, plan_tiles
from ..errors import EngineError
from ..jobs.fit import ClusterFitConfig, ClusterFitResult, validate_fit_config
from ..jobs.segmentation import FitSettings
from ..progress import Progress, StageProgress
from ..raster.georef import Window
from ..raster.input import InputRaster
from ..raster.pixels import SAMPLE_SIDE, RasterSource, Stretch, stretch_from_samples, stretch_samples, stretched_bands
from ..raster.working_grid import encoding_grid, working_grid
from .cluster_model import fit_record, model_from_fit, save_model
from .skeleton import Run, Stage, milliseconds, perform, stage_names

TABLE = (Stage("Reading input", 3), Stage("Loading model", 2), Stage("Encoding tiles", 65),
         Stage("Fitting k-means", 25), Stage("Writing cluster model", 5))
STAGES = stage_names(TABLE)


@dataclass
class RasterSample:
    """What one raster gives to the fit: a uniform sample of its valid patch features."""

    name: str  # the raster's file name
    features: np.ndarray  # [m, D] float16, m = min(count asked, valid_patches)
    valid_patches: int


def _describe(raster: InputRaster) -> Tuple[int, Tuple[int, ...], List[int]]:
    return raster.ds.RasterCount, tuple(raster.bands), stretched_bands(raster)


def fit_input_bands(paths: Sequence[str], bands: Any, resolution: float, seed: int, progress: Progress,
                    report: StageProgress) -> InputBands:
    """The inputs' band choice, with the stretch of the non-Byte bands fitted on the values of all ``paths``
    pooled, each read at the working ``resolution`` (each raster gives at most its share of SAMPLE_SIDE² values,
    its sampling reported on its part of ``report``); refuses inputs read otherwise than the first."""
    pooled: Dict[int, List[np.ndarray]] = {}
    share = math.ceil(SAMPLE_SIDE * SAMPLE_SIDE / len(paths))
    first = InputRaster(paths[0], bands, progress)
    try:
        for index, path in enumerate(paths):
            with contextlib.ExitStack() as stack:
                raster = first if index == 0 else InputRaster(path, bands, progress)
                if raster is not first:
                    stack.callback(raster.close)
                if _describe(raster) != _describe(first):
                    raise EngineError(_differs(paths[0], _describe(first), path, _describe(raster)))
                grid = working_grid(raster, Window(0, 0, raster.width, raster.height), resolution, stack)
                for band, values in stretch_samples(grid.raster, grid.window, progress,
                                                    report.part(index, len(paths))).items():
                    if values.size > share:
                        values = np.random.default_rng(seed + index).choice(values, share, replace=False)
                    pooled.setdefault(band, []).append(values)
        stretch = stretch_from_samples(first, {b: np.concatenate(v) for b, v in pooled.items()},
                                       "any of the rasters", progress)
        return InputBands(tuple(first.bands), first.ds.RasterCount, stretch)
    finally:
        first.close()


def _reading(described: Tuple[int, Tuple[int, ...], List[int]]) -> str:
    count, bands, stretched = described
    return f"{count} bands, bands {list(bands)} as RGB, non-Byte bands {stretched or 'none'}"


def _differs(a: str, ours: Tuple, b: str, theirs: Tuple) -> str:
    return (f"The rasters of one cluster model must be read alike: '{a}' has {_reading(ours)}; '{b}' has "
            f"{_reading(theirs)}. Fit a model per kind of raster, or choose the bands to use.")


def sample_features(path: str, config: ClusterFitConfig, backbone: Any, stretch: Dict[int, Stretch], seed: int,
                    folder: str, progress: Progress, report: Callable[[float], None]) -> RasterSample:
    """Encode the raster at ``path`` (read with ``stretch``) and sample at most ``config.max_samples`` of its
    valid patch features with ``seed``; the features live in a temporary folder in ``folder`` meanwhile."""
    with contextlib.ExitStack() as stack:
        raster = InputRaster(path, config.bands, progress)
        stack.callback(raster.close)
        grid = encoding_grid(raster, Window(0, 0, raster.width, raster.height), config.working_resolution, PATCH,
                             stack, progress)
        window = grid.window
        source = RasterSource(grid.raster, window, progress, report, stretch)
        plan = plan_tiles(window.height, window.width, config.tile_size, config.overlap, config.stride)
        store = stack.enter_context(FeatureStore(folder, plan.grid_rows, plan.grid_cols, backbone.embed_dim))
        TileEncoder(backbone, source, window, plan, store, config.batch_size).run(progress, report)
        valid = store.count_valid()
        features = store.sample(config.max_samples, seed).astype(np.float16) if valid else \
            np.zeros((0, backbone.embed_dim), np.float16)
    progress.info(f"'{os.path.basename(path)}': {valid} valid patches, {len(features)} sampled.")
    return RasterSample(os.path.basename(path), features, valid)


def split_budget(valid: Sequence[int], budget: int) -> List[int]:
    """Rows per raster: ``min(budget, sum(valid))`` in all, in proportion to ``valid`` (largest remainders,
    ties to the earlier raster)."""
    total = sum(valid)
    budget = min(budget, total)
    counts = [budget * v // total for v in valid]
    remainders = sorted(range(len(valid)), key=lambda i: (-(budget * valid[i] % total), i))
    for i in remainders[:budget - sum(counts)]:
        counts[i] += 1
    return counts


def fit_cluster_model(samples: Sequence[RasterSample], settings: FitSettings, backbone: BackboneIdentity,
                      encoding: Encoding, bands: InputBands, progress: Progress,
                      report: Callable[[float], None]) -> ClusterModel:
    """One model from the rasters' samples: rows split by valid patches, then Segment Trees' K choice."""
    valid = [s.valid_patches for s in samples]
    if sum(valid) == 0:
        raise no_valid_pixels("any of the rasters")
    counts = split_budget(valid, settings.max_samples)
    parts = []
    for index, (sample, count) in enumerate(zip(samples, counts)):
        rows = sample.features
        if count < len(rows):
            rows = rows[np.sort(np.random.default_rng(settings.seed + index).choice(len(rows), count, replace=False))]
        parts.append(rows.astype(np.float32))
    fit = fit_samples(np.concatenate(parts), sum(valid), settings, progress, report)
    inputs = [FitInput(s.name, s.valid_patches, len(rows)) for s, rows in zip(samples, parts)]
    return model_from_fit(fit, backbone, bands, fit_record(settings, inputs, encoding))


def run_fit_cluster_model(config: ClusterFitConfig, progress: Optional[Progress] = None) -> ClusterFitResult:
    """Fit one model on ``config.input_paths`` and save it to ``config.output_path``; raises EngineError."""
    return perform(TABLE, validate_fit_config, config, progress, "the temporary files", _run)


def _run(config: ClusterFitConfig, run: Run) -> ClusterFitResult:
    """The stages in order (TABLE)."""
    paths, progress = config.input_paths, run.progress
    with run.stage("Reading input") as report:
        bands = fit_input_bands(paths, config.bands, config.working_resolution, config.seed, progress, report)
    with run.stage("Loading model"):
        backbone, device, precision = load_model(config.for_raster(paths[0]), progress)
    encoding = Encoding(device, precision, config.tile_size, config.overlap, config.working_resolution)
    staged = run.staging.path(config.output_path)  # creates the output folder, removed again on failure
    with run.stage("Encoding tiles") as report:
        samples = [sample_features(path, config, backbone, bands.stretch, config.seed + index,
                                   os.path.dirname(staged), progress, report.part(index, len(paths)))
                   for index, path in enumerate(paths)]
    with run.stage("Fitting k-means") as report:
        model = fit_cluster_model(samples, config, backbone_identity(backbone), encoding, bands, progress, report)
    with run.stage("Writing cluster model"):
        save_model(model, staged, config.output_path, progress)
    wall, cpu = run.timings()
    run.commit(config.output_path, raster=False)
    inputs = [{"path": os.path.abspath(p), "valid_patches": i.valid_patches, "sampled": i.sampled}
              for p, i in zip(paths, model.fit.inputs)]
    return ClusterFitResult(os.path.abspath(config.output_path), model.k, dict(model.wcss), dict(model.wcss_drop),
                            inputs, milliseconds(wall), milliseconds(cpu))
