"""Segment Trees: Processing parameters in, engine call, declared outputs back."""

from __future__ import annotations

import time
from typing import Any

from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProcessingOutputNumber

from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.segmentation import (
    SegmentationConfig,
    validate_cluster_model_paths,
    validate_settings,
)
from ..treeseg_plugin.i18n import tr
from ..treeseg_plugin.version import help_url
from . import parameters as spec
from .help_text import short_help
from .web_input import LayerInputs
from .worker_algorithm import WorkerAlgorithm

SEGMENT_TREES_PARAMETERS = (
    spec.orthophoto("The orthophoto to segment: any GDAL raster (GeoTIFF, VRT, JPEG2000...) or any QGIS raster layer "
                    "(XYZ, WMS, WMTS, WCS...: fetched over the extent at the working resolution)."),
    spec.WORKING_RESOLUTION,
    spec.bands("Three bands in red, green, blue order. Empty: the first three bands, or the single band repeated for "
               "a one-band raster."),
    spec.EXTENT, *spec.CLUSTER_SETTINGS, spec.CLUSTER_MODEL, spec.NIR_BAND, spec.CANOPY_HEIGHT, spec.MIN_TREE_HEIGHT,
    spec.TREE_CLUSTERS, spec.MIN_CROWN_AREA, spec.LABELS, spec.STATS, spec.OUTPUT_POLYGONS, spec.CLUSTER_MODEL_OUTPUT,
    spec.TREES, spec.CROWNS)
"""Segment Trees' parameters in dialog order (declared in parameters.py)."""


class SegmentTreesAlgorithm(WorkerAlgorithm):
    """treeseg:segmenttrees: DINOv3 patch features, k-means with elbow K, styled label raster."""

    CLUSTER_MODEL = "CLUSTER_MODEL"
    NIR_BAND = "NIR_BAND"
    CANOPY_HEIGHT = "CANOPY_HEIGHT"
    MIN_TREE_HEIGHT = "MIN_TREE_HEIGHT"
    TREE_CLUSTERS = "TREE_CLUSTERS"
    MIN_CROWN_AREA = "MIN_CROWN_AREA"
    TREES = "TREES"
    CROWNS = "CROWNS"
    OUTPUT = "OUTPUT"
    STATS = "STATS"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    CLUSTER_MODEL_OUTPUT = "CLUSTER_MODEL_OUTPUT"
    CHOSEN_K = "CHOSEN_K"

    _outputs: dict[str, Any] | None = None
    _summary: tuple[dict[str, Any], float] | None = None  # the run's statistics and its duration in seconds
    _input_path = ""

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self._add_parameters(SEGMENT_TREES_PARAMETERS)
        self.addOutput(QgsProcessingOutputNumber(self.CHOSEN_K, self.tr("Chosen number of clusters")))

    def name(self) -> str:
        return "segmenttrees"

    def displayName(self) -> str:
        return self.tr("Segment Trees")

    def tags(self) -> list[str]:
        return self.tr("trees,forest,canopy,dinov3,k-means,clustering,unsupervised,orthophoto").split(",")

    def shortHelpString(self) -> str:
        return short_help()

    def helpUrl(self) -> str:
        return help_url("segment-trees")

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        problem = self._input_problem(parameters, context)
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:  # the engine's own rules, in its words (the paths are checked when the run starts)
            validate_settings(SegmentationConfig(input_path="", output_path="",
                                                 **cluster_settings(self, parameters, context),
                                                 **self._tree_arguments(parameters, context)))
            validate_cluster_model_paths(self.parameterAsFile(parameters, self.CLUSTER_MODEL, context),
                                         self.parameterAsFileOutput(parameters, self.CLUSTER_MODEL_OUTPUT, context))
        except EngineError as error:
            return False, str(error)
        problem = self._bands_problem(parameters, context)
        return not problem, problem

    def _input_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """Why an INPUT path that QGIS cannot load is not a raster (QGIS alone says only "not found")."""
        value = parameters.get(self.INPUT)
        if not isinstance(value, str) or not value or \
                self.parameterAsRasterLayer(parameters, self.INPUT, context) is not None:
            return ""
        from ..treeseg_plugin.engine.raster.input import input_problem

        return input_problem(value)

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        started = time.monotonic()
        with LayerInputs(feedback) as inputs:
            result = self._run_job(lambda: self._config(parameters, context, inputs), feedback)
        self._summary = (result.stats, time.monotonic() - started)
        self._outputs = {
            self.OUTPUT: result.output_path,
            self.STATS: result.stats_path,
            self.OUTPUT_POLYGONS: result.polygons_path,
            self.CLUSTER_MODEL_OUTPUT: result.cluster_model_path,
            self.TREES: result.trees_path,
            self.CROWNS: result.crowns_path,
            self.CHOSEN_K: result.chosen_k,
        }
        return self._outputs

    def _config(self, parameters: dict[str, Any], context: QgsProcessingContext,
                inputs: LayerInputs) -> SegmentationConfig:
        config = SegmentationConfig(**self._engine_arguments(parameters, context, inputs))
        self._input_path = config.input_path
        return config

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """In QGIS: the result layers named, grouped and styled, an HTML report in the results viewer, the
        run's summary on the message bar."""
        if self._outputs:
            from .results import ResultLayer, list_report, present_results, qml_style
            from .run_summary import show_summary, summary_text

            out = self._outputs
            trees_shown = any(out[name] and context.willLoadLayerOnCompletion(out[name])
                              for name in (self.TREES, self.CROWNS))
            present_results(context, self._input_path, (  # the opaque clusters would hide the orthophoto
                ResultLayer(out[self.CROWNS], self.tr("crowns"), qml_style),
                ResultLayer(out[self.OUTPUT_POLYGONS], self.tr("cluster polygons")),
                ResultLayer(out[self.TREES], self.tr("trees"), qml_style),
                ResultLayer(out[self.OUTPUT], self.tr("clusters"), qml_style, visible=not trees_shown)))
            list_report(out[self.STATS], self.icon(), self.tr("Segment Trees report"))
            if self._summary:
                show_summary(self.displayName(), summary_text(*self._summary), out[self.STATS])
        return {}

    def _engine_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext,
                          inputs: LayerInputs) -> dict[str, Any]:
        """Translate Processing parameters into SegmentationConfig fields (a layer that is not a file fetched
        by ``inputs``)."""
        layer = self._input_layer(parameters, context)
        heights = self.parameterAsRasterLayer(parameters, self.CANOPY_HEIGHT, context)
        settings = cluster_settings(self, parameters, context)
        input_path, extent = self._input_source(inputs, layer, parameters, context,
                                                (settings["working_resolution"], spec.WORKING_RESOLUTION.name))
        return {
            "input_path": input_path,
            "canopy_height_path": heights.source() if heights is not None else None,
            "output_path": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            "extent": extent,
            **settings,
            **self._tree_arguments(parameters, context),
            "token": self._token,
            "stats_path": self.parameterAsFileOutput(parameters, self.STATS, context) or None,
            "polygons_path": self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context) or None,
            "cluster_model": self.parameterAsFile(parameters, self.CLUSTER_MODEL, context) or None,
            "cluster_model_output": self.parameterAsFileOutput(parameters, self.CLUSTER_MODEL_OUTPUT, context) or None,
            "trees_path": self.parameterAsOutputLayer(parameters, self.TREES, context) or None,
            "crowns_path": self.parameterAsOutputLayer(parameters, self.CROWNS, context) or None,
        }

    def _tree_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The SegmentationConfig fields that decide which clusters are trees and shape the crowns."""
        return {
            "nir_band": self.parameterAsInt(parameters, self.NIR_BAND, context) or None,
            "min_tree_height": self.parameterAsDouble(parameters, self.MIN_TREE_HEIGHT, context),
            "min_crown_area": self.parameterAsDouble(parameters, self.MIN_CROWN_AREA, context),
            "tree_clusters": parse_tree_clusters(self.parameterAsString(parameters, self.TREE_CLUSTERS, context)),
        }


def cluster_settings(algorithm: WorkerAlgorithm, parameters: dict[str, Any],
                     context: QgsProcessingContext) -> dict[str, Any]:
    """The SegmentationConfig fields of ``spec.CLUSTER_SETTINGS`` (Segment Trees and Fit Cluster Model)."""
    def integer(parameter: spec.ParameterSpec) -> int:
        return algorithm.parameterAsInt(parameters, parameter.name, context)

    return {
        **algorithm._encoding_arguments(parameters, context),
        "k": integer(spec.K),
        "k_min": integer(spec.K_MIN),
        "k_max": integer(spec.K_MAX),
        "elbow_threshold": algorithm.parameterAsDouble(parameters, spec.ELBOW_THRESHOLD.name, context),
        "seed": integer(spec.SEED),
        "max_samples": integer(spec.MAX_SAMPLES),
    }


def parse_tree_clusters(text: str) -> list[int] | None:
    """TREE_CLUSTERS ("2, 5") as label numbers; None when empty. Raises EngineError naming the fix."""
    parts = [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]
    if not parts:
        return None
    if not all(part.isdigit() for part in parts):
        raise EngineError(tr("Tree clusters '{text}': give cluster numbers separated by commas, e.g. 2,5.")
                          .format(text=text))
    return sorted({int(part) for part in parts})
