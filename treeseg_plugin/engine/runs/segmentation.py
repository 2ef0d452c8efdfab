"""Orchestration: read -> encode tiles -> fit k-means -> label pixels -> write outputs.

Stages (:data:`STAGES`, reported through ``Progress.stage``) and their share of the progress bar:
"Reading input" 0-3 % (opening, and the stretch sample of non-Byte bands), "Loading model" 3-5 %,
"Encoding tiles" 5-70 %, "Fitting k-means" 70-80 %, "Writing labels" 80-97 % (labels are predicted
and written block by block, each cluster's vegetation evidence gathered from the same reads, then the tree
rule decides: engine/runs/tree_steps.py), then, when asked for, "Writing polygons", "Writing tree mask",
"Writing crowns" and "Writing statistics". Cancel is checked as each stage starts, per stretch strip, per
tile, per k-means fit step (inside ``sweep_k``), per output block, during polygonising and just before the
outputs are moved into place.
The input is opened and checked in engine/runs/inputs.py; the statistics, the per-cluster log lines and
the result are put together in engine/runs/statistics.py.
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
import os
import time
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from ...dinov3 import Backbone
from ..cluster import kmeans
from ..cluster.choice_of_k import Fit, fit_store
from ..cluster.labels import block_labels
from ..cluster.model import ClusterModel, Encoding
from ..cluster.model_file import load_cluster_model
from ..encode.features import FeatureStore, TileEncoder
from ..encode.runtime import load_model
from ..encode.tiling import TilePlan, plan_tiles
from ..errors import Canceled, EngineError, resource_errors, write_error
from ..jobs.results import SegmentationResult
from ..jobs.segmentation import SegmentationConfig, validate_config
from ..progress import Progress, StageProgress, check_canceled
from ..raster.gdal_mode import raising_gdal_errors
from ..raster.georef import PixelArea, Window
from ..raster.geotiff import GeoTiffWriter, Grid, blocks
from ..raster.label_raster import label_classes, label_writer, write_qml
from ..raster.palette import Legend, default_legend
from ..raster.pixels import RasterSource
from ..raster.polygons import polygonize
from ..raster.staging import Staging, raster_sidecars
from ..trees.evidence import EvidenceAccumulator, HeightGrid, read_block
from . import cluster_model as model_run
from . import tree_steps
from .inputs import RunInput, open_input
from .report import write_stats
from .statistics import LabelCounts, build_stats, log_clusters, segmentation_result

STAGES = ("Reading input", "Loading model", "Encoding tiles", "Fitting k-means", "Writing labels",
          "Writing polygons", "Writing statistics", "Writing tree mask", "Writing crowns")
# the stages after "Writing labels" only when those outputs are asked for; the tree mask and the crowns
# are written after the polygons and before the statistics (which count them)


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _write_labels(source: RasterSource, window: Window, store: FeatureStore, fit: Fit, area: PixelArea,
                  writer: GeoTiffWriter, config: SegmentationConfig, heights: Optional[HeightGrid],
                  progress: Progress) -> LabelCounts:
    """Predict and write the labels block by block, gathering each cluster's evidence from the same reads."""
    evidence = EvidenceAccumulator(fit.k, config.nir_band is not None, heights is not None)
    pixels = np.zeros(fit.k + 1, dtype=np.int64)
    hectares = np.zeros(fit.k + 1) if area.has_hectares else None
    report = StageProgress(progress, 80, 97)
    for left, top, w, h, ends_row in blocks(window.width, window.height):
        check_canceled(progress)
        block = read_block(source, window.x0 + left, window.y0 + top, w, h, config.nir_band, heights, left, top)
        labels = block_labels(store, fit.centroids, kmeans.squared_distances, config.stride, top, left,
                              block.valid)
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


@raising_gdal_errors
def run_segmentation(config: SegmentationConfig, progress: Optional[Progress] = None) -> SegmentationResult:
    """Segment ``config.input_path`` into ``config.output_path``; raises EngineError / Canceled.

    Whatever happens, the temporary files are removed and the destination is left as it was unless the
    run succeeds.
    """
    progress = progress or Progress()
    validate_config(config)
    with resource_errors("the temporary files", _folder(config.output_path)):
        return _run(config, progress)


class _Stages:
    """Enters the run's stages (STAGES): names each to the progress, checks for cancel, and times it in wall
    and in process CPU seconds (all threads; robust to other load on the machine)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.started = (time.perf_counter(), time.process_time())
        self.seconds: Dict[str, float] = {}
        self.cpu_seconds: Dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.progress.stage(name)
        check_canceled(self.progress)
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.seconds[name] = time.perf_counter() - wall
        self.cpu_seconds[name] = time.process_time() - cpu

    def timings(self) -> Tuple[Dict[str, float], Dict[str, float]]:
        """The statistics' timings_s and cpu_s, since this object was made."""
        return (_grouped(self.seconds, time.perf_counter() - self.started[0]),
                _grouped(self.cpu_seconds, time.process_time() - self.started[1]))


def _grouped(seconds: Dict[str, float], total: float) -> Dict[str, float]:
    """Stage times as the statistics group them: reading counts with encoding, polygons, mask and crowns with
    the labels."""
    of = seconds.get
    return {"load_model": of(STAGES[1], 0.0),
            "read_encode": of(STAGES[0], 0.0) + of(STAGES[2], 0.0),
            "fit": of(STAGES[3], 0.0),
            "predict_write": sum(of(name, 0.0) for name in (STAGES[4], STAGES[5], STAGES[7], STAGES[8])),
            "total": total}


def _load_backbone(config: SegmentationConfig, model: Optional[ClusterModel],
                   progress: Progress) -> Tuple[Backbone, str, str]:
    """Stage "Loading model" (3-5 %): the backbone, its device and precision, checked against an applied model."""
    backbone, device, precision = load_model(config, progress)
    if model is not None:
        model_run.check_backbone(model, config.cluster_model, backbone)
        model_run.compare_encoding(model, _encoding(config, device, precision), progress)
    check_canceled(progress)
    return backbone, device, precision


def _encoding(config: SegmentationConfig, device: str, precision: str) -> Encoding:
    return Encoding(device, precision, config.tile_size, config.overlap)


def _check_grid(backbone: Backbone, plan: TilePlan) -> None:
    grid = tuple(backbone.grid_size(plan.tile_height, plan.tile_width))
    if grid != plan.tile_grid:
        raise EngineError(f"The model's patch grid {grid} does not match the tiling {plan.tile_grid}; the "
                          "weights are not a ViT with 16 px patches. Use DINOv3 ViT weights (patch size 16).")


def _encode(config: SegmentationConfig, backbone: Backbone, inputs: RunInput, plan: TilePlan, progress: Progress,
            stack: contextlib.ExitStack) -> Tuple[FeatureStore, int]:
    """Stage "Encoding tiles" (5-70 %): every tile's patch features into the store (closed with ``stack``);
    returns the store and the number of tiles skipped for having no valid pixel."""
    window = inputs.window
    store = stack.enter_context(FeatureStore(_folder(config.output_path), plan.grid_rows, plan.grid_cols,
                                             backbone.embed_dim))
    progress.info(f"{len(plan.tiles)} tiles of {plan.tile_width} x {plan.tile_height} px "
                  f"(overlap {config.overlap} px) over {window.width} x {window.height} px; patch grid "
                  f"{plan.grid_cols} x {plan.grid_rows} at stride {config.stride}.")
    encoder = TileEncoder(backbone, inputs.source, window, plan, store, config.batch_size)
    encoder.run(progress, StageProgress(progress, 5, 70))
    progress.info(f"Encoded {len(plan.tiles) - encoder.skipped} tiles; skipped {encoder.skipped} "
                  "with no valid pixel.")
    return store, encoder.skipped


def _fit(config: SegmentationConfig, model: Optional[ClusterModel], store: FeatureStore, stage: _Stages,
         progress: Progress) -> Fit:
    """The applied model's fit, else stage "Fitting k-means" (70-80 %) on the store."""
    where = "the chosen extent" if config.extent is not None else "the raster"
    if model is not None:
        return model_run.applied_fit(model, config.cluster_model, store, where, progress)
    with stage(STAGES[3]):
        return fit_store(store, config, where, progress, StageProgress(progress, 70, 80))


def _label(config: SegmentationConfig, model: Optional[ClusterModel], inputs: RunInput, store: FeatureStore,
           fit: Fit, staged_output: str, stack: contextlib.ExitStack,
           progress: Progress) -> Tuple[LabelCounts, Dict[str, Any], Legend]:
    """Stage "Writing labels" (80-97 %): the staged label raster, the tree rule's decision, the legend and the
    .qml; returns the counts, the statistics' "trees" section and the legend."""
    try:
        grid = Grid(inputs.window.width, inputs.window.height, inputs.geotransform, inputs.source.srs)
        writer = stack.enter_context(label_writer(staged_output, grid, fit.k,
                                                  model.legend if model is not None else None))
        labels = _write_labels(inputs.source, inputs.window, store, fit, inputs.area, writer, config, inputs.heights,
                               progress)
        trees = tree_steps.decide(labels.evidence, config, progress)
        # An applied model keeps its colours and names (those of the run that fitted it) everywhere.
        legend = model.legend if model is not None else default_legend(fit.k, trees["tree_labels"])
        writer.set_classes(label_classes(legend))
        writer.finish()
        write_qml(os.path.splitext(staged_output)[0] + ".qml", fit.k, legend)
    except OSError as exc:  # the writer's WriteError, the .qml, or the feature file gone with its folder
        raise write_error(f"the label raster '{config.output_path}'", exc, _folder(config.output_path)) from exc
    return labels, trees, legend


def _write_optional_outputs(config: SegmentationConfig, staging: Staging, staged_output: str, inputs: RunInput,
                            k: int, trees: Dict[str, Any], stage: _Stages, progress: Progress) -> None:
    """The stages of the outputs asked for: polygons, tree mask, crowns (these two add to ``trees``)."""
    if config.polygons_path:
        with stage(STAGES[5]):
            count = polygonize(staged_output, staging.path(config.polygons_path), progress, config.polygons_path)
            progress.info(f"Wrote {count} polygons.")
    if config.trees_path:
        with stage(STAGES[7]):
            trees.update(tree_steps.write_mask(config, staging, staged_output, trees["tree_labels"], progress))
    if config.crowns_path:
        with stage(STAGES[8]):
            trees.update(tree_steps.write_crown_polygons(config, staging, staged_output, trees["tree_labels"],
                                                           inputs.heights, inputs.area, k, progress))


def _write_statistics(config: SegmentationConfig, staging: Staging, stats: Dict[str, Any]) -> None:
    """The staged statistics file (inside stage "Writing statistics")."""
    try:
        write_stats(staging.path(config.stats_path), stats)
    except OSError as exc:
        raise write_error(f"the statistics file '{config.stats_path}'", exc, _folder(config.stats_path)) from exc


def _run(config: SegmentationConfig, progress: Progress) -> SegmentationResult:
    """The stages in order (STAGES), inside one exit stack that closes and removes what they opened."""
    stage = _Stages(progress)
    model = load_cluster_model(config.cluster_model) if config.cluster_model else None
    with contextlib.ExitStack() as stack:
        with stage(STAGES[0]):
            inputs = open_input(config, model, progress, stack)
        progress.progress(3)

        with stage(STAGES[1]):
            backbone, device, precision = _load_backbone(config, model, progress)
        progress.progress(5)

        with stage(STAGES[2]):
            plan = plan_tiles(inputs.window.height, inputs.window.width, config.tile_size, config.overlap,
                              config.stride)
            _check_grid(backbone, plan)
            staging = stack.enter_context(Staging())
            staged_output = staging.path(config.output_path)
            store, skipped = _encode(config, backbone, inputs, plan, progress, stack)

        fit = _fit(config, model, store, stage, progress)

        with stage(STAGES[4]):
            labels, trees, legend = _label(config, model, inputs, store, fit, staged_output, stack, progress)
            if config.cluster_model_output:
                model_run.save_fitted(config, fit, backbone, _encoding(config, device, precision), inputs.source,
                                      legend, staging.path(config.cluster_model_output), progress)
        _write_optional_outputs(config, staging, staged_output, inputs, fit.k, trees, stage, progress)
        progress.progress(99)

        stats = build_stats(config, inputs.source, inputs.window, backbone, device, precision, plan, skipped, fit,
                            labels, inputs.area, *stage.timings())
        stats["trees"] = trees
        stats["cluster_model"]["applied_sha256"] = model.sha256 if model is not None else None
        stats["legend"] = {"colors": list(legend.colors), "names": list(legend.names)}  # as the raster has them
        log_clusters(stats, fit.k, progress)
        if config.stats_path:
            with stage(STAGES[6]):
                _write_statistics(config, staging, stats)
        if not progress.may_commit():
            raise Canceled()
        name = os.path.basename(config.output_path)
        staging.commit(last=name, stale=raster_sidecars(name))
    progress.progress(100)
    return segmentation_result(config, fit, labels, stats, trees["tree_labels"])
