"""Fit Cluster Model: one cluster model (.tscm) from several orthophotos, for Segment Trees to apply to each.

It takes Segment Trees' model, stride, K and tiling settings (the same parameter definitions, cloned), so
the two algorithms cannot drift apart, and runs the engine's "fit" job in the worker process.
"""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
)

from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.segmentation import SegmentationConfig, validate_settings
from .segment_trees import SegmentTreesAlgorithm
from .segment_trees_parameters import CLUSTER_MODEL_FILTER

SHARED = ("MODEL", "WEIGHTS", "DEVICE", "PRECISION", "STRIDE", "K", "K_MIN", "K_MAX", "ELBOW_THRESHOLD", "SEED",
          "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "MAX_SAMPLES", "ALLOW_DOWNLOAD")
"""Segment Trees' parameters that Fit Cluster Model takes as they are."""

HELP = ("<p>Fits one cluster model on patch features sampled across several orthophotos and saves it as a "
        ".tscm file. Segment Trees then applies it to each raster (its <i>Cluster model (apply)</i> input, in "
        "the Toolbox, in batch or in a model), so every output has the same clusters, label numbers and "
        "colours.</p><p>The rasters must have the same bands and band types. The maximum k-means samples are "
        "split across the rasters in proportion to their valid patches; 16-bit and float bands are stretched "
        "between the 2nd and 98th percentiles of all rasters together. K is chosen as in Segment Trees (the "
        "elbow of the WCSS curve, logged per K). See docs/cluster-model.md.</p>")


class FitClusterModelAlgorithm(SegmentTreesAlgorithm):
    """treeseg:fitclustermodel: one k-means model on features of several rasters, saved as .tscm."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    OUTPUT = "OUTPUT"
    CHOSEN_K = "CHOSEN_K"

    def name(self) -> str:
        return "fitclustermodel"

    def displayName(self) -> str:
        return self.tr("Fit Cluster Model")

    def tags(self) -> list[str]:
        return self.tr("trees,forest,dinov3,k-means,clustering,model,batch,mosaic,consistent").split(",")

    def shortHelpString(self) -> str:
        return self.tr(HELP)

    def helpUrl(self) -> str:
        return "https://github.com/treeseg/treeseg#fit-once-apply-everywhere"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        segment = SegmentTreesAlgorithm()
        segment.initAlgorithm()
        self._add(QgsProcessingParameterMultipleLayers(self.INPUT, self.tr("Orthophotos"),
                                                       QgsProcessing.SourceType.TypeRaster),
                  "The rasters to fit on (any GDAL rasters with the same bands).")
        self._add_bands("Three band numbers in red, green, blue order, e.g. 3,2,1, or one band (repeated to RGB). "
                        "Empty: the first three bands, or the single band of a one-band raster.", one_raster=False)
        for name in SHARED:
            self.addParameter(segment.parameterDefinition(name).clone())
        self._add(QgsProcessingParameterFileDestination(self.OUTPUT, self.tr("Cluster model"), CLUSTER_MODEL_FILTER),
                  "The .tscm file to apply with Segment Trees' Cluster model input.")
        self.addOutput(QgsProcessingOutputNumber(self.CHOSEN_K, self.tr("Chosen number of clusters")))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        ok, message = QgsProcessingAlgorithm.checkParameterValues(self, parameters, context)
        if not ok:
            return ok, message
        try:
            validate_settings(SegmentationConfig(input_path="", output_path="",
                                                 **self._settings_arguments(parameters, context)))
        except (EngineError, ValueError) as error:
            return False, str(error)
        return True, ""

    def _input_paths(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[str]:
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException(self.tr("No input rasters given. Choose one or more orthophotos."))
        for layer in layers:
            if layer.providerType() != "gdal":
                raise QgsProcessingException(self.tr(
                    f"The input layer '{layer.name()}' is served by the '{layer.providerType()}' provider; Fit "
                    "Cluster Model reads files through GDAL. Save it as a GeoTIFF first."))
        return [layer.source() for layer in layers]

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..treeseg_plugin.engine.jobs.fit import ClusterFitConfig

        result = self._run_job(lambda: ClusterFitConfig(
            self._input_paths(parameters, context), self.parameterAsFileOutput(parameters, self.OUTPUT, context),
            token=self._token, **self._settings_arguments(parameters, context)), feedback)
        return {self.OUTPUT: result.output_path, self.CHOSEN_K: result.chosen_k}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        return {}
