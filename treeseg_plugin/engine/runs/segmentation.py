"""Orchestration: read -> encode tiles -> fit k-means -> label pixels -> write outputs.

Stages (:data:`TABLE`, run by engine/runs/skeleton.py) and their share of the progress bar:
"Reading input" 0-3 % (opening, and the stretch sample of non-Byte bands), "Loading model" 3-5 %,
"Encoding tiles" 5-70 %, "Fitting k-means" 70-80 %, "Writing labels" 80-97 % (labels are predicted
and written block by block, each cluster's vegetation evidence gathered from the same reads, then the tree
rule decides: engine/runs/tree_steps.py), then, when asked for, "Writing polygons", "Writing tree mask",
"Writing crowns" and "Writing statistics" (99-100 %). Cancel is checked as each stage starts, per stretch
strip, per tile, per k-means fit step (inside ``sweep_k``), per output block, during polygonising and just
before the outputs are moved into place.
The input is opened and checked in engine/runs/inputs.py; the statistics, the per-cluster log lines and
the result are put together in engine/runs/summary.py (the typed statistics: engine/runs/statistics.py).
A canceled or failed run removes its temporary files (``.treeseg-*`` folders) and leaves the
destination folders as they were: an existing output is replaced only at the very end.

Decisions:

* The input is read (and its stretch sampled) before the model is loaded, so a bad or empty input
  fails in seconds, not after loading a large model. A working window with fewer patches than the
  clusters asked for (e.g. a raster or extent of at most 16 x 16 px: a single patch) is refused before
  anything is loaded.
* The fit (engine/cluster/choice_of_k.py) samples valid patches from the whole working window. With
  ``cluster_model`` the file's model is applied instead (engine/runs/cluster_model.py: checked against
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
import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np

from ...dinov3 import Backbone
from ..cluster import kmeans
from ..cluster.choice_of_k import Fit, fit_store
from ..cluster.labels import block_labels, nearest_labels
from ..cluster.model import ClusterModel, Encoding, Fitted
from ..cluster.model_file import load_cluster_model
from ..encode.features import FeatureStore, TileEncoder
from ..encode.runtime import load_model
from ..encode.tiling import TilePlan, plan_tiles
from ..errors import EngineError, write_error
from ..jobs.results import SegmentationResult
from ..jobs.segmentation import FitSettings, SegmentationConfig, validate_config
from ..progress import Progress, StageProgress, check_canceled
from ..raster.georef import PixelArea, Window
from ..raster.geotiff import GeoTiffWriter, Grid, blocks
from ..raster.label_raster import label_classes, label_writer, write_qml
from ..raster.palette import Legend, default_legend
from ..raster.pixels import RasterSource
from ..raster.polygons import polygonize
from ..raster.staging import Staging
from ..raster.working_grid import nearest_axis
from ..trees.evidence import EvidenceAccumulator, HeightGrid, read_block
from . import cluster_model as model_run
from . import tree_steps
from .inputs import RunInput, open_input
from .report import write_stats
from .skeleton import Run, Stage, perform, stage_names
from .statistics import SegmentationStatistics, Timings, TreeStatistics
from .summary import Encoded, LabelCounts, build_statistics, log_clusters, segmentation_result

TABLE = (Stage("Reading input", 3), Stage("Loading model", 2), Stage("Encoding tiles", 65),
         Stage("Fitting k-means", 10), Stage("Writing labels", 17), Stage("Writing polygons", 1),
         Stage("Writing tree mask", 0.5), Stage("Writing crowns", 0.5), Stage("Writing statistics", 1))
STAGES = stage_names(TABLE)
# the stages after "Writing labels" only when those outputs are asked for


def run_segmentation(config: SegmentationConfig, progress: Optional[Progress] = None) -> SegmentationResult:
    """Segment ``config.input_path`` into ``config.output_path``; raises EngineError / Canceled.

    Whatever happens, the temporary files are removed and the destination is left as it was unless the
    run succeeds.
    """
    return perform(TABLE, validate_config, config, progress, "the temporary files", _run)


def _run(config: SegmentationConfig, run: Run) -> SegmentationResult:
    """The stages in order (TABLE); the run's exit stack closes and removes what they opened."""
    progress, stack, staging = run.progress, run.stack, run.staging
    model = load_cluster_model(config.cluster_model) if config.cluster_model else None
    with run.stage("Reading input") as report:
        inputs = open_input(config, model, progress, report, stack)

    with run.stage("Loading model"):
        backbone, device, precision = load_backbone(config, model, config.cluster_model, progress)

    with run.stage("Encoding tiles") as report:
        plan = plan_tiles(inputs.encoded_window.height, inputs.encoded_window.width, config.tile_size, config.overlap,
                          config.stride)
        check_grid(backbone, plan)
        staged_output = staging.path(config.output_path)
        store, skipped = encode_window(config, output_folder(config.output_path), backbone, inputs, plan, progress,
                                       report, stack)

    fit = _fit(config, model, store, run)

    with run.stage("Writing labels") as report:
        labels, trees, legend = _label(config, model, inputs, store, fit, staged_output, stack, progress, report)
        if config.cluster_model_output:
            model_run.save_fitted(config, fit, backbone, run_encoding(config, device, precision), inputs.source,
                                  legend, staging.path(config.cluster_model_output), progress)
    trees = _write_optional_outputs(config, staged_output, inputs, fit.k, trees, run)

    wall, cpu = run.timings()
    stats = build_statistics(config, inputs, backbone, Encoded(device, precision, plan, skipped), fit, labels,
                             model.sha256 if model is not None else None, trees, legend,
                             Timings(_grouped(wall), _grouped(cpu)))
    log_clusters(stats, progress)
    if config.stats_path:
        with run.stage("Writing statistics"):
            _write_statistics(config.stats_path, staging, stats)
    run.commit(config.output_path)
    return segmentation_result(config, stats)


def _grouped(seconds: Dict[str, float]) -> Dict[str, float]:
    """Stage times as the statistics group them: reading counts with encoding, polygons, mask and crowns with
    the labels."""
    of = seconds.get
    return {"load_model": of("Loading model", 0.0),
            "read_encode": of("Reading input", 0.0) + of("Encoding tiles", 0.0),
            "fit": of("Fitting k-means", 0.0),
            "predict_write": sum(of(name, 0.0) for name in ("Writing labels", "Writing polygons",
                                                            "Writing tree mask", "Writing crowns")),
            "total": seconds["total"]}


def output_folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _write_labels(source: RasterSource, window: Window, store: FeatureStore, fit: Fit, area: PixelArea,
                  writer: GeoTiffWriter, config: SegmentationConfig, heights: Optional[HeightGrid],
                  encoded: Window, progress: Progress, report: StageProgress) -> LabelCounts:
    """Predict and write the labels block by block, gathering each cluster's evidence from the same reads; a
    pixel takes the label of the ``encoded`` grid's pixel nearest to it (itself at the raster's resolution)."""
    evidence = EvidenceAccumulator(fit.k, config.nir_band is not None, heights is not None)
    pixels = np.zeros(fit.k + 1, dtype=np.int64)
    hectares = np.zeros(fit.k + 1) if area.has_hectares else None
    for left, top, w, h, ends_row in blocks(window.width, window.height):
        check_canceled(progress)
        block = read_block(source, window.x0 + left, window.y0 + top, w, h, config.nir_band, heights, left, top)
        if encoded == window:
            labels = block_labels(store, fit.centroids, kmeans.squared_distances, config.stride, top, left,
                                  block.valid)
        else:
            labels = nearest_labels(store, fit.centroids, kmeans.squared_distances, config.stride, block.valid,
                                    nearest_axis(top, h, window.height, encoded.height),
                                    nearest_axis(left, w, window.width, encoded.width))
        writer.write(top, left, labels)
        evidence.add(labels, block)
        pixels += np.bincount(labels.ravel(), minlength=fit.k + 1)
        if hectares is not None:
            weights = area.block_hectares(top, left, h, w).ravel()
            hectares += np.bincount(labels.ravel(), weights=weights, minlength=fit.k + 1)
        if ends_row:
            writer.flush()
            source.flush()
            if heights is not None:
                heights.flush()
            report((top + h) / window.height)
    return LabelCounts(pixels, hectares, evidence)


def load_backbone(settings: FitSettings, model: Optional[Fitted], model_path: Optional[str],
                  progress: Progress) -> Tuple[Backbone, str, str]:
    """Stage "Loading model": the backbone, its device and precision, checked against an applied model (read
    from ``model_path``)."""
    backbone, device, precision = load_model(settings, progress)
    if model is not None:
        model_run.check_backbone(model, model_path, backbone)
        model_run.compare_encoding(model, run_encoding(settings, device, precision), progress)
    check_canceled(progress)
    return backbone, device, precision


def run_encoding(settings: FitSettings, device: str, precision: str) -> Encoding:
    return Encoding(device, precision, settings.tile_size, settings.overlap, settings.working_resolution)


def check_grid(backbone: Backbone, plan: TilePlan) -> None:
    grid = tuple(backbone.grid_size(plan.tile_height, plan.tile_width))
    if grid != plan.tile_grid:
        raise EngineError(f"The model's patch grid {grid} does not match the tiling {plan.tile_grid}; the "
                          "weights are not a ViT with 16 px patches. Use DINOv3 ViT weights (patch size 16).")


def encode_window(settings: FitSettings, folder: str, backbone: Backbone, inputs: RunInput, plan: TilePlan,
                  progress: Progress, report: StageProgress, stack: contextlib.ExitStack) -> Tuple[FeatureStore, int]:
    """Stage "Encoding tiles": every tile's patch features into the store (in ``folder``, closed with ``stack``);
    returns the store and the number of tiles skipped for having no valid pixel."""
    window = inputs.encoded_window
    store = stack.enter_context(FeatureStore(folder, plan.grid_rows, plan.grid_cols, backbone.embed_dim))
    progress.info(f"{len(plan.tiles)} tiles of {plan.tile_width} x {plan.tile_height} px "
                  f"(overlap {settings.overlap} px) over {window.width} x {window.height} px; patch grid "
                  f"{plan.grid_cols} x {plan.grid_rows} at stride {settings.stride}.")
    encoder = TileEncoder(backbone, inputs.encoded, window, plan, store, settings.batch_size)
    encoder.run(progress, report)
    progress.info(f"Encoded {len(plan.tiles) - encoder.skipped} tiles; skipped {encoder.skipped} "
                  "with no valid pixel.")
    return store, encoder.skipped


def _fit(config: SegmentationConfig, model: Optional[ClusterModel], store: FeatureStore, run: Run) -> Fit:
    """The applied model's fit, else stage "Fitting k-means" on the store."""
    where = "the chosen extent" if config.extent is not None else "the raster"
    if model is not None:
        return model_run.applied_fit(model, config.cluster_model, store, where, run.progress)
    with run.stage("Fitting k-means") as report:
        return fit_store(store, config, where, run.progress, report)


def _label(config: SegmentationConfig, model: Optional[ClusterModel], inputs: RunInput, store: FeatureStore,
           fit: Fit, staged_output: str, stack: contextlib.ExitStack,
           progress: Progress, report: StageProgress) -> Tuple[LabelCounts, TreeStatistics, Legend]:
    """Stage "Writing labels": the staged label raster, the tree rule's decision, the legend and the
    .qml; returns the counts, the statistics' tree section and the legend."""
    try:
        grid = Grid(inputs.window.width, inputs.window.height, inputs.geotransform, inputs.source.srs)
        writer = stack.enter_context(label_writer(staged_output, grid, fit.k,
                                                  model.legend if model is not None else None))
        labels = _write_labels(inputs.source, inputs.window, store, fit, inputs.area, writer, config, inputs.heights,
                               inputs.encoded_window, progress, report)
        trees = tree_steps.decide(labels.evidence, config.tree_settings, progress)
        # An applied model keeps its colours and names (those of the run that fitted it) everywhere.
        legend = model.legend if model is not None else default_legend(fit.k, trees.tree_labels)
        writer.set_classes(label_classes(legend))
        writer.finish()
        write_qml(os.path.splitext(staged_output)[0] + ".qml", fit.k, legend)
    except OSError as exc:  # the writer's WriteError, the .qml, or the feature file gone with its folder
        raise write_error(f"the label raster '{config.output_path}'", exc, output_folder(config.output_path)) from exc
    return labels, trees, legend


def _write_optional_outputs(config: SegmentationConfig, staged_output: str, inputs: RunInput, k: int,
                            trees: TreeStatistics, run: Run) -> TreeStatistics:
    """The stages of the outputs asked for: polygons, tree mask, crowns; returns ``trees`` with the counts of
    the mask and the crowns."""
    progress, staging = run.progress, run.staging
    if config.polygons_path:
        with run.stage("Writing polygons"):
            count = polygonize(staged_output, staging.path(config.polygons_path), progress, config.polygons_path)
            progress.info(f"Wrote {count} polygons.")
    canopy_pixels = crowns = None
    if config.trees_path:
        with run.stage("Writing tree mask"):
            canopy_pixels = tree_steps.write_mask(config.trees_path, staging, staged_output, trees.tree_labels,
                                                  progress)
    if config.crowns_path:
        with run.stage("Writing crowns"):
            crowns = tree_steps.write_crown_polygons(config.crowns_path, config.tree_settings, staging, staged_output,
                                                     trees.tree_labels, inputs.heights, inputs.area, k, progress)
    return dataclasses.replace(trees, canopy_pixels=canopy_pixels, crowns=crowns)


def _write_statistics(path: str, staging: Staging, stats: SegmentationStatistics) -> None:
    """The statistics file ``path``, staged (inside stage "Writing statistics")."""
    try:
        write_stats(staging.path(path), stats)
    except OSError as exc:
        raise write_error(f"the statistics file '{path}'", exc, output_folder(path)) from exc
