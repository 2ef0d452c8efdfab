"""A batch run: fit one cluster model on a sample of many rasters, apply it to each, mosaic the labels; or apply
one classifier (``classifier``, a ``.tscc`` of Classify from Examples) to each and mosaic the classes.

Steps (:func:`run_batch`):

1. **Fit** (skipped when a model is given, or when ``<output folder>/cluster-model.tscm`` exists from an
   earlier run of the same command): the stretch of non-Byte bands is pooled over the fit rasters in this
   process (a pixel sample, no model); each fit raster is encoded and sampled by a task (on the workers
   with Dask); the samples come back here and Segment Trees' K choice fits the model
   (engine/runs/fit.py). The fit rasters are all inputs, or ``fit_rasters`` of them spread evenly.
2. **Apply**: one task per raster (or per window of a raster larger than ``window`` px, stitched into
   one output afterwards) runs Segment Trees with the model (or Classify from Examples with the
   classifier). Resumable: an output that exists is kept and skipped, unless the model was fitted in this
   run (then its labels would come from another model).
   Outputs are all-or-nothing, so an interrupted run leaves only finished outputs.
3. **Mosaic**: ``<output folder>/mosaic.vrt`` over every label raster, with the model's colours.

Each task process loads the backbone once (runtime.keep_models_loaded) for all its rasters.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from osgeo import gdal

from ..engine.errors import EngineError
from ..engine.jobs.segmentation import CLUSTER_MODEL_EXTENSION, SegmentationConfig, validate_settings
from ..engine.progress import Progress
from ..engine.raster.gdal_mode import raising_gdal_errors
from .backends import make_backend
from .inputs import expand_inputs, label_paths
from .windows import Part, plan_parts, stitch

MODEL_NAME = "cluster-model" + CLUSTER_MODEL_EXTENSION
MOSAIC_NAME = "mosaic.vrt"


@dataclass
class BatchSettings:
    """One batch run: inputs, output folder, where it runs, and the Segment Trees settings for every raster."""

    inputs: Sequence[str]
    output_folder: str
    engine: SegmentationConfig  # input_path/output_path unused; the rest applies to every raster
    cluster_model: Optional[str] = None  # apply this model; None: fit one (or reuse the folder's)
    classifier: Optional[str] = None  # apply this .tscc classifier instead (class rasters, no cluster model)
    fit_rasters: int = 0  # fit on this many inputs spread evenly (0: all)
    window: int = 0  # split rasters larger than window x window px into windows (0: never)
    scheduler: Optional[str] = None
    workers: int = 0
    redo: bool = False


class PrintProgress(Progress):
    """Engine messages of the run itself (not of the tasks) on stderr."""

    def info(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    warning = info


def _spread(items: Sequence[str], count: int) -> List[str]:
    if count <= 0 or count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)] if count > 1 else [items[0]]


@raising_gdal_errors
def _sample_task(job: Tuple[str, Any, Dict[int, Any], int, str]) -> Tuple[Any, Any, Tuple[str, str]]:
    """On a worker: encode one fit raster and sample its features; with the backbone's identity and the
    device and precision used."""
    from ..engine.cluster.model import backbone_identity
    from ..engine.encode.runtime import keep_models_loaded, load_model
    from ..engine.runs.fit import sample_features

    path, fit_config, stretch, seed, folder = job
    keep_models_loaded()
    progress = Progress()
    backbone, device, precision = load_model(fit_config.for_raster(path), progress)
    sample = sample_features(path, fit_config, backbone, stretch, seed, folder, progress, lambda _: None)
    return sample, backbone_identity(backbone), (device, precision)


def _apply_task(config: SegmentationConfig) -> str:
    """On a worker: Segment Trees with the cluster model on one raster or window; returns the output."""
    from ..engine.encode.runtime import keep_models_loaded
    from ..engine.runs.segmentation import run_segmentation

    keep_models_loaded()
    return run_segmentation(config).output_path


def _classify_task(config: Any) -> str:
    """On a worker: Classify from Examples with the classifier on one raster or window; returns the output."""
    from ..engine.encode.runtime import keep_models_loaded
    from ..engine.runs.classify import run_classify

    keep_models_loaded()
    return run_classify(config).output_path


def _configs(settings: BatchSettings, model_path: str, parts: Sequence[Part]) -> Tuple[Any, List[Any]]:
    """The task and its job per part: Segment Trees with the cluster model, or the classifier applied."""
    if settings.classifier:
        from ..engine.jobs.classify import ClassifyConfig
        from ..engine.jobs.segmentation import fit_settings

        return _classify_task, [ClassifyConfig(p.raster, p.path, extent=p.extent, classifier=settings.classifier,
                                               **fit_settings(settings.engine)) for p in parts]
    return _apply_task, [dataclasses.replace(settings.engine, input_path=p.raster, output_path=p.path,
                                             extent=p.extent, cluster_model=model_path) for p in parts]


def _fit(settings: BatchSettings, rasters: Sequence[str], backend: Any, destination: str, log: Progress) -> None:
    from ..engine.jobs.fit import ClusterFitConfig
    from ..engine.jobs.segmentation import fit_settings
    from ..engine.progress import StageProgress
    from ..engine.raster.staging import Staging
    from ..engine.runs.cluster_model import save_model
    from ..engine.runs.fit import fit_cluster_model, fit_input_bands

    fit_config = ClusterFitConfig(input_paths=list(rasters), output_path=destination, **fit_settings(settings.engine))
    log.info(f"Fitting the cluster model on {len(rasters)} raster(s) ...")
    bands = fit_input_bands(rasters, fit_config.bands, fit_config.working_resolution, fit_config.seed, log,
                            StageProgress(log, 0, 3))
    with Staging() as staging:
        staged = staging.path(destination)
        jobs = [(path, fit_config, bands.stretch, fit_config.seed + i, os.path.dirname(staged))
                for i, path in enumerate(rasters)]
        results = dict((job[0], value) for job, value in _tracked(backend.map(_sample_task, jobs), len(jobs),
                                                                  "sampled", lambda job: job[0]))
        samples = [results[path][0] for path in rasters]
        identities = {results[path][1] for path in rasters}
        if len(identities) != 1:
            raise EngineError("The workers loaded different backbones (another weights file on some machine). "
                              "Give every worker the same weights file.")
        model = fit_cluster_model(samples, fit_config, identities.pop(), _encoding(fit_config, results.values()),
                                  bands, log, lambda _: None)
        save_model(model, staged, destination, log)
        staging.commit(last=os.path.basename(destination))


def _encoding(fit_config: Any, results: Iterable[Tuple[Any, Any, Tuple[str, str]]]) -> Any:
    """The fit's encoding from the workers' devices and precisions: one precision (another one gives other
    features); the devices joined when they differ (the same precision agrees up to rounding)."""
    from ..engine.cluster.model import Encoding

    devices = sorted({device for _, _, (device, _) in results})
    precisions = sorted({precision for _, _, (_, precision) in results})
    if len(precisions) != 1:
        raise EngineError(f"The workers computed features in different precisions ({', '.join(precisions)}), "
                          "which gives different features. Set Precision explicitly (e.g. fp32) for every worker.")
    return Encoding(",".join(devices), precisions[0], fit_config.tile_size, fit_config.overlap,
                    fit_config.working_resolution)


def _tracked(results: Any, total: int, verb: str, name: Any) -> Any:
    """Pass ``results`` through, printing a progress bar line on stderr as each one finishes."""
    started = time.monotonic()
    for done, (item, value) in enumerate(results, 1):
        bar = "#" * (20 * done // total)
        print(f"[{bar:<20}] {done}/{total} {verb}: {os.path.basename(name(item))} "
              f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        yield item, value


def _apply(settings: BatchSettings, model_path: str, outputs: Dict[str, str], backend: Any, fresh_model: bool,
           log: Progress) -> List[str]:
    todo = {raster: output for raster, output in outputs.items()
            if settings.redo or fresh_model or not os.path.exists(output)}
    if len(todo) < len(outputs):
        log.info(f"{len(outputs) - len(todo)} of {len(outputs)} outputs exist already: kept (--redo makes them "
                 "again).")
    parts: List[Part] = []
    for raster, output in todo.items():
        parts += plan_parts(raster, output, settings.window, settings.engine)
    task, configs = _configs(settings, model_path, parts)
    by_path = {p.path: p for p in parts}
    finished = [by_path[path] for _, path in _tracked(backend.map(task, configs), len(configs), "labelled",
                                                      lambda c: c.output_path)]
    for output in todo.values():
        pieces = [p for p in finished if p.output == output and p.path != output]
        if pieces:
            stitch(pieces, output)
    return list(outputs.values())


def _mosaic(folder: str, outputs: Sequence[str]) -> str:
    path = os.path.join(folder, MOSAIC_NAME)
    temporary = path + ".part"
    try:
        gdal.BuildVRT(temporary, [p for p in outputs if os.path.exists(p)]).FlushCache()
    except RuntimeError as exc:
        raise EngineError(f"Could not build the mosaic '{path}': {exc}") from exc
    os.replace(temporary, path)
    style = os.path.splitext(outputs[0])[0] + ".qml"
    if os.path.exists(style):
        shutil.copyfile(style, os.path.splitext(path)[0] + ".qml")
    return path


def _check_models(settings: BatchSettings) -> None:
    """The cluster model or the classifier given exists, and not both are given."""
    if settings.cluster_model and settings.classifier:
        raise EngineError("Both a cluster model and a classifier are given. Give --cluster-model to label the "
                          "rasters with clusters, or --classifier to classify them, not both.")
    for path, what, fix in ((settings.cluster_model, "cluster model", "Give a .tscm file, or leave it out to fit "
                             "one."), (settings.classifier, "classifier", "Give a .tscc file saved by Classify from "
                                       "Examples.")):
        if path and not os.path.isfile(path):
            raise EngineError(f"The {what} '{path}' does not exist. {fix}")


@raising_gdal_errors
def run_batch(settings: BatchSettings, log: Optional[Progress] = None) -> str:
    """Fit (or reuse) the model, label every input, write the mosaic; returns the mosaic's path."""
    log = log or PrintProgress()
    validate_settings(settings.engine)
    if settings.window and settings.engine.working_resolution:
        raise EngineError("--window and --working-resolution cannot be combined yet: a window's working grid would "
                          "not fall on the whole raster's, so its labels could differ from a whole-raster run. Leave "
                          "--window out (the working resolution already makes the encoded raster smaller), or "
                          "resample the rasters first (gdalwarp -tr) and run them at their own resolution.")
    rasters = expand_inputs(settings.inputs)
    outputs = label_paths(rasters, settings.output_folder)
    _check_models(settings)
    os.makedirs(settings.output_folder, exist_ok=True)
    model_path = settings.classifier or settings.cluster_model or \
        os.path.join(os.path.abspath(settings.output_folder), MODEL_NAME)
    backend = make_backend(settings.scheduler, settings.workers)
    fresh_model = False
    try:
        if not os.path.exists(model_path):
            _fit(settings, _spread(rasters, settings.fit_rasters), backend, model_path, log)
            fresh_model = True
        else:
            what = "classifier" if settings.classifier else "cluster model"
            log.info(f"Using the {what} '{model_path}'" + ("" if settings.cluster_model or settings.classifier else
                     " fitted by an earlier run (delete it to fit again)") + ".")
        written = _apply(settings, model_path, outputs, backend, fresh_model, log)
    finally:
        backend.close([settings.output_folder])
    mosaic = _mosaic(settings.output_folder, written)
    log.info(f"Wrote {len(written)} label rasters and the mosaic '{mosaic}'.")
    return mosaic
