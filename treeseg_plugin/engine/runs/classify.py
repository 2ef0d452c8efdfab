"""Classify from Examples: read -> examples on the patch grid -> encode tiles -> fit (or apply) the classifier ->
write classes -> polygons, tree mask, crowns, statistics (docs/classify.md).

Stages (:data:`TABLE`, run by engine/runs/skeleton.py), as Segment Trees': the input opened and the examples read
and rasterised before the model loads (engine/raster/examples.py: a file, field or class error costs nothing), the
encoding (engine/encode/features.py), "Fitting classifier" (engine/classify/fitting.py: the grouped
cross-validation, then the fit; or a ``.tscc`` applied, checked against the input and the backbone before any
encoding), "Writing classes" (engine/classify/predict.py on the input's exact grid, also at a working resolution),
then the outputs asked for, all staged and moved into place together.

Decisions:

* With one class the output is its similarity raster (0-100): confidence, polygons, tree mask and crowns need two
  classes or more and are refused before the model loads.
* Tree classes are class names; a name that is not a class is refused before the model loads.
* The saved classifier records the weights' SHA-256 (a full read of the weights file), like a cluster model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ...version import plugin_version
from ..classify.classifier_file import load_classifier, save_classifier
from ..classify.fitting import ExampleFit, fit_examples, usable_examples
from ..classify.model import SIMILARITY, Classifier, class_legend
from ..classify.predict import block_classes, nearest_classes
from ..classify.validation import accuracy_text
from ..cluster.model import backbone_identity
from ..encode.features import FeatureStore
from ..encode.tiling import HALF_PATCH, TilePlan, plan_tiles
from ..errors import EngineError, write_error
from ..jobs.classify import ClassifyConfig, validate_classify_config
from ..jobs.results import ClassifyResult
from ..progress import Progress, StageProgress, check_canceled
from ..raster.examples import Examples, examples_on_grid, patch_geotransform
from ..raster.georef import window_geotransform
from ..raster.geotiff import GeoTiffWriter, Grid, blocks
from ..raster.label_raster import label_writer, write_qml
from ..raster.percent_raster import percent_writer, write_percent_qml
from ..raster.polygons import polygonize
from ..raster.working_grid import nearest_axis
from . import tree_steps
from .classify_report import write_classify_stats
from .cluster_model import input_bands
from .inputs import RunInput, open_input
from .segmentation import check_grid, encode_window, load_backbone, output_folder, run_encoding
from .skeleton import Run, Stage, milliseconds, perform, stage_names

TABLE = (Stage("Reading input", 3), Stage("Loading model", 2), Stage("Encoding tiles", 65),
         Stage("Fitting classifier", 10), Stage("Writing classes", 17), Stage("Writing polygons", 1),
         Stage("Writing tree mask", 0.5), Stage("Writing crowns", 0.5), Stage("Writing statistics", 1))
STAGES = stage_names(TABLE)


@dataclass
class Written:
    """The class raster as written: output pixels per value (0..255), the staged path."""

    pixels: np.ndarray
    staged: str


def run_classify(config: ClassifyConfig, progress: Optional[Progress] = None) -> ClassifyResult:
    """Classify ``config.input_path`` into ``config.output_path``; raises EngineError / Canceled. Whatever happens,
    the temporary files are removed and the destination is left as it was unless the run succeeds."""
    return perform(TABLE, validate_classify_config, config, progress, "the temporary files", _run)


def _run(config: ClassifyConfig, run: Run) -> ClassifyResult:
    """The stages in order (TABLE); the run's exit stack closes and removes what they opened."""
    progress, stack, staging = run.progress, run.stack, run.staging
    settings = config.segmentation_settings()
    applied = load_classifier(config.classifier) if config.classifier else None
    with run.stage("Reading input") as report:
        inputs = open_input(settings, applied, progress, report, stack, config.classifier)
        plan = plan_tiles(inputs.encoded_window.height, inputs.encoded_window.width, config.tile_size, config.overlap,
                          config.stride)
        examples = None if applied else _examples(config, inputs, plan, progress)
        names = applied.names if applied else examples.names
        tree_ids = _check_outputs(config, names)
    with run.stage("Loading model"):
        backbone, device, precision = load_backbone(settings, applied, config.classifier, progress)
    with run.stage("Encoding tiles") as report:
        check_grid(backbone, plan)
        staged = staging.path(config.output_path)  # creates a missing output folder, where the features go
        store, skipped = encode_window(settings, output_folder(config.output_path), backbone, inputs, plan, progress,
                                       report, stack)
    fit = None
    if applied is None:
        with run.stage("Fitting classifier") as report:
            fit = fit_examples(store, examples, config.regularisation, config.cross_validation, progress, report)
        _log_fit(fit, progress)
    model = applied or _classifier(config, fit, backbone, run_encoding(settings, device, precision), inputs)
    with run.stage("Writing classes") as report:
        written = _write_classes(config, model, inputs, store, staged, run, report)
        if config.classifier_output:
            _save(model, staging.path(config.classifier_output), config.classifier_output, progress)
    _write_optional_outputs(config, model, written.staged, inputs, tree_ids, run)
    wall, cpu = run.timings()
    stats = _statistics(config, model, fit, written, inputs, backbone, (device, precision, len(plan.tiles), skipped),
                        (wall, cpu))
    if config.stats_path:
        with run.stage("Writing statistics"):
            try:
                write_classify_stats(staging.path(config.stats_path), stats)
            except OSError as exc:
                raise write_error(f"the statistics file '{config.stats_path}'", exc,
                                  output_folder(config.stats_path)) from exc
    run.commit(config.output_path)
    return _result(config, model, fit, stats)


def _examples(config: ClassifyConfig, inputs: RunInput, plan: TilePlan, progress: Progress) -> Examples:
    """The examples on the patch grid of the encoded window, checked (before the model loads)."""
    encoded_gt = window_geotransform(inputs.encoded.geotransform, inputs.encoded_window)
    examples = examples_on_grid(config.examples_path, config.examples_layer, config.class_field, inputs.source.srs,
                                patch_geotransform(encoded_gt, config.stride, HALF_PATCH), plan.grid_rows,
                                plan.grid_cols)
    return usable_examples(examples, config.cross_validation, progress)


def _check_outputs(config: ClassifyConfig, names: Sequence[str]) -> Tuple[int, ...]:
    """Refuse outputs one class cannot give, and tree classes that are not classes; the tree classes' ids."""
    if len(names) == 1:
        asked = [what for what, path in (("confidence", config.confidence_path), ("polygons", config.polygons_path),
                                         ("tree mask", config.trees_path), ("crowns", config.crowns_path)) if path]
        if asked:
            raise EngineError(f"The examples name one class ('{names[0]}'), so the output is its similarity raster; "
                              f"the {', '.join(asked)} need two classes or more. Add examples of another class, or "
                              "leave those outputs empty.")
    unknown = [name for name in config.tree_classes or () if name not in names]
    if unknown:
        raise EngineError(f"Tree class(es) {', '.join(unknown)} are not classes of the examples or the classifier "
                          f"({', '.join(names)}). Give tree classes by their names.")
    return tuple(i for i, name in enumerate(names, start=1) if name in (config.tree_classes or ()))


def _log_fit(fit: ExampleFit, progress: Progress) -> None:
    if fit.accuracy is not None:
        progress.info(accuracy_text(fit.accuracy))
    for text in fit.warnings:
        progress.warning(text)


def _classifier(config: ClassifyConfig, fit: ExampleFit, backbone: Any, encoding: Any, inputs: RunInput) \
        -> Classifier:
    """The classifier this run fitted (the weights' SHA-256 only when it is saved)."""
    accuracy = fit.accuracy["overall_accuracy"] if fit.accuracy else None
    identity = backbone_identity(backbone, with_sha256=bool(config.classifier_output))
    return Classifier(fit.mode, fit.linear, class_legend(fit.names, tuple(config.tree_classes or ())), identity,
                      input_bands(inputs.source), encoding, float(config.regularisation), dict(fit.polygons),
                      accuracy, plugin_version())


def _save(model: Classifier, staged: str, destination: str, progress: Progress) -> None:
    try:
        save_classifier(model, staged)
    except OSError as exc:
        raise write_error(f"the classifier '{destination}'", exc, output_folder(destination)) from exc
    progress.info(f"Classifier ({len(model.names)} class(es)) saved to '{destination}'.")


def _writers(config: ClassifyConfig, model: Classifier, grid: Grid, staged: str, run: Run) \
        -> Tuple[GeoTiffWriter, Optional[GeoTiffWriter]]:
    """The class (or similarity) raster's writer (at ``staged``) and the confidence raster's (when asked for)."""
    if model.mode == SIMILARITY:
        writer = percent_writer(staged, grid, f"similarity to '{model.names[0]}' (%)")
    else:
        writer = label_writer(staged, grid, len(model.names), model.legend)
    run.stack.enter_context(writer)
    confidence = None
    if config.confidence_path:
        confidence = run.stack.enter_context(percent_writer(run.staging.path(config.confidence_path), grid,
                                                            "probability of the class (%)"))
    return writer, confidence


def _write_classes(config: ClassifyConfig, model: Classifier, inputs: RunInput, store: FeatureStore, staged: str,
                   run: Run, report: StageProgress) -> Written:
    """Stage "Writing classes": the staged class (or similarity) raster and the confidence, block by block on
    the input's grid, with their styles."""
    window, encoded = inputs.window, inputs.encoded_window
    grid = Grid(window.width, window.height, inputs.geotransform, inputs.source.srs)
    try:
        writer, confidence = _writers(config, model, grid, staged, run)
        pixels = np.zeros(256, dtype=np.int64)
        for left, top, w, h, ends_row in blocks(window.width, window.height):
            check_canceled(run.progress)
            valid = inputs.source.read_valid(window.x0 + left, window.y0 + top, w, h)
            if encoded == window:
                values, probability = block_classes(store, model, config.stride, top, left, valid)
            else:
                values, probability = nearest_classes(store, model, config.stride, valid,
                                                      nearest_axis(top, h, window.height, encoded.height),
                                                      nearest_axis(left, w, window.width, encoded.width))
            writer.write(top, left, values)
            if confidence is not None:
                confidence.write(top, left, probability)
            pixels += np.bincount(values.ravel(), minlength=256)
            if ends_row:
                for target in (writer, confidence, inputs.source):
                    if target is not None:
                        target.flush()
                report((top + h) / window.height)
        for target in (writer, confidence):
            if target is not None:
                target.finish()
        _write_styles(model, writer.path, confidence.path if confidence is not None else None)
    except OSError as exc:
        raise write_error(f"the class raster '{config.output_path}'", exc, output_folder(config.output_path)) from exc
    return Written(pixels, writer.path)


def _write_styles(model: Classifier, staged: str, staged_confidence: Optional[str]) -> None:
    """The ``.qml`` styles beside the staged rasters: the classes' palette (or the similarity ramp), the
    confidence ramp."""
    if model.mode == SIMILARITY:
        write_percent_qml(os.path.splitext(staged)[0] + ".qml")
    else:
        write_qml(os.path.splitext(staged)[0] + ".qml", len(model.names), model.legend)
    if staged_confidence:
        write_percent_qml(os.path.splitext(staged_confidence)[0] + ".qml")


def _write_optional_outputs(config: ClassifyConfig, model: Classifier, staged: str, inputs: RunInput,
                            tree_ids: Tuple[int, ...], run: Run) -> None:
    """The stages of the outputs asked for: polygons (class names), tree mask and crowns (the tree wing's)."""
    progress, staging = run.progress, run.staging
    if config.polygons_path:
        with run.stage("Writing polygons"):
            count = polygonize(staged, staging.path(config.polygons_path), progress, config.polygons_path,
                               model.legend.names)
            progress.info(f"Wrote {count} polygons.")
    if config.trees_path:
        with run.stage("Writing tree mask"):
            tree_steps.write_mask(config.trees_path, staging, staged, tree_ids, progress)
    if config.crowns_path:
        with run.stage("Writing crowns"):
            settings = config.segmentation_settings().tree_settings
            tree_steps.write_crown_polygons(config.crowns_path, settings, staging, staged, tree_ids, inputs.heights,
                                            inputs.area, len(model.names), progress)


def _statistics(config: ClassifyConfig, model: Classifier, fit: Optional[ExampleFit], written: Written,
                inputs: RunInput, backbone: Any, encoded: Tuple[str, str, int, int],
                seconds: Tuple[Dict[str, float], Dict[str, float]]) -> Dict[str, Any]:
    """The statistics (the stats file's JSON and the result's ``stats``)."""
    device, precision, tiles, skipped = encoded
    count = len(model.names)
    values = range(1, count + 1) if model.mode != SIMILARITY else []
    valid = int(sum(written.pixels[v] for v in values)) or 1
    classes = [{"class_id": v, "name": model.names[v - 1], "color": model.legend.colors[v - 1],
                "pixels": int(written.pixels[v]), "percent": 100.0 * int(written.pixels[v]) / valid,
                "examples": fit.polygons[model.names[v - 1]] if fit else None,
                "example_patches": fit.patches[model.names[v - 1]] if fit else None} for v in values]
    window = inputs.window
    srs = inputs.source.srs
    return {
        "input": {"path": config.input_path, "bands": list(inputs.source.bands),
                  "window": {"x0": window.x0, "y0": window.y0, "width": window.width, "height": window.height},
                  "crs": srs.GetName() if srs is not None else None},
        "output": config.output_path, "mode": model.mode, "classes": classes,
        "accuracy": fit.accuracy if fit else None, "warnings": list(fit.warnings) if fit else [],
        "classifier": {"applied": config.classifier, "applied_sha256": model.sha256 if config.classifier else None,
                       "saved": config.classifier_output, "regularisation": model.regularisation},
        "model": {"variant": str(backbone.variant), "weights": str(backbone.weights.path or backbone.weights.format)},
        "encoding": {"device": device, "precision": precision, "stride": config.stride,
                     "tile_size": config.tile_size, "overlap": config.overlap,
                     "working_resolution": config.working_resolution},
        "tiles": {"total": tiles, "skipped": skipped},
        "timings_s": milliseconds(seconds[0]), "cpu_s": milliseconds(seconds[1]),
    }


def _result(config: ClassifyConfig, model: Classifier, fit: Optional[ExampleFit], stats: Dict[str, Any]) \
        -> ClassifyResult:
    """What the run produced, at the final paths."""
    pixels = {row["name"]: row["pixels"] for row in stats["classes"]}
    return ClassifyResult(
        config.output_path, model.mode, list(model.names), list(model.legend.colors), pixels,
        dict(fit.polygons) if fit else {}, stats["accuracy"], stats["warnings"], stats["timings_s"], stats["cpu_s"],
        config.confidence_path, config.polygons_path, config.stats_path,
        os.path.splitext(config.output_path)[0] + ".qml", config.classifier_output, config.trees_path,
        config.crowns_path)
