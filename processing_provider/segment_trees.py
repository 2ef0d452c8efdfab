"""Segment Trees: Processing parameters in, engine call, declared outputs back."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

from ..treeseg_plugin import settings as treeseg_settings
from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.segmentation import (
    STRIDES,
    SegmentationConfig,
    validate_cluster_model_paths,
    validate_settings,
)
from .help_text import SHORT_HELP
from .segment_trees_parameters import MODELS, SegmentTreesParameters, parse_tree_clusters

HELP_URL = "https://github.com/treeseg/treeseg#segment-trees"


class SegmentTreesAlgorithm(SegmentTreesParameters):
    """treeseg:segmenttrees: DINOv3 patch features, k-means with elbow K, styled label raster.

    Its parameters are declared in segment_trees_parameters.py; here: checks, the worker call, the outputs.
    """

    _outputs: dict[str, Any] | None = None

    def name(self) -> str:
        return "segmenttrees"

    def displayName(self) -> str:
        return self.tr("Segment Trees")

    def tags(self) -> list[str]:
        return self.tr("trees,forest,canopy,dinov3,k-means,clustering,unsupervised,orthophoto").split(",")

    def shortHelpString(self) -> str:
        return self.tr(SHORT_HELP)

    def helpUrl(self) -> str:
        return HELP_URL

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        problem = self._input_problem(parameters, context)
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:  # the engine's own rules, in its words (the paths are checked when the run starts)
            validate_settings(SegmentationConfig(input_path="", output_path="",
                                                 **self._settings_arguments(parameters, context),
                                                 **self._tree_arguments(parameters, context)))
            validate_cluster_model_paths(self.parameterAsFile(parameters, self.CLUSTER_MODEL, context),
                                         self.parameterAsFileOutput(parameters, self.CLUSTER_MODEL_OUTPUT, context))
        except EngineError as error:
            return False, str(error)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        bands = self._bands(parameters, context)
        if layer is not None and bands:
            count = layer.bandCount()
            wrong = [band for band in bands if not 1 <= band <= count]
            if wrong:
                return False, self.tr(f"Band(s) {wrong} do not exist: the input has bands 1 to {count}. "
                                      "Choose band numbers in that range.")
        return True, ""

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
        result = self._run_job(lambda: SegmentationConfig(**self._engine_arguments(parameters, context)), feedback)
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

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """In QGIS: the label layer gets its paletted style, an HTML report goes to the results viewer."""
        if self._outputs:
            from .results import present_results

            present_results(context, self._outputs[self.OUTPUT], self._outputs[self.STATS], self.icon(),
                            self._outputs[self.TREES], self._outputs[self.CROWNS])
        return {}

    def _engine_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """Translate Processing parameters into SegmentationConfig fields."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("The input orthophoto could not be opened as a raster layer."))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(self.tr(
                f"The input layer '{layer.name()}' is served by the '{layer.providerType()}' provider; Segment "
                "Trees reads files through GDAL. Save it as a GeoTIFF first (Raster > Conversion > Translate)."))
        heights = self.parameterAsRasterLayer(parameters, self.CANOPY_HEIGHT, context)
        return {
            "input_path": layer.source(),
            "canopy_height_path": heights.source() if heights is not None else None,
            "output_path": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            "extent": self._extent(parameters, context, layer),
            **self._settings_arguments(parameters, context),
            **self._tree_arguments(parameters, context),
            "token": self._token,
            "stats_path": self.parameterAsFileOutput(parameters, self.STATS, context) or None,
            "polygons_path": self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context) or None,
            "cluster_model": self.parameterAsFile(parameters, self.CLUSTER_MODEL, context) or None,
            "cluster_model_output": self.parameterAsFileOutput(parameters, self.CLUSTER_MODEL_OUTPUT, context) or None,
            "trees_path": self.parameterAsOutputLayer(parameters, self.TREES, context) or None,
            "crowns_path": self.parameterAsOutputLayer(parameters, self.CROWNS, context) or None,
        }

    def _settings_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The SegmentationConfig fields that are settings, not paths or the extent."""
        weights = self.parameterAsFile(parameters, self.WEIGHTS, context)
        name = MODELS[self.parameterAsEnum(parameters, self.MODEL, context)].name
        return {
            **self._device_arguments(parameters, context),
            "model": weights or str(treeseg_settings.weights_in_folder(name) or name),
            "stride": STRIDES[self.parameterAsEnum(parameters, self.STRIDE, context)],
            "k": self.parameterAsInt(parameters, self.K, context),
            "k_min": self.parameterAsInt(parameters, self.K_MIN, context),
            "k_max": self.parameterAsInt(parameters, self.K_MAX, context),
            "elbow_threshold": self.parameterAsDouble(parameters, self.ELBOW_THRESHOLD, context),
            "seed": self.parameterAsInt(parameters, self.SEED, context),
            "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context),
            "overlap": self.parameterAsInt(parameters, self.OVERLAP, context),
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            "max_samples": self.parameterAsInt(parameters, self.MAX_SAMPLES, context),
        }

    def _tree_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The SegmentationConfig fields that decide which clusters are trees and shape the crowns."""
        return {
            "nir_band": self.parameterAsInt(parameters, self.NIR_BAND, context) or None,
            "min_tree_height": self.parameterAsDouble(parameters, self.MIN_TREE_HEIGHT, context),
            "min_crown_area": self.parameterAsDouble(parameters, self.MIN_CROWN_AREA, context),
            "tree_clusters": parse_tree_clusters(self.parameterAsString(parameters, self.TREE_CLUSTERS, context)),
        }

