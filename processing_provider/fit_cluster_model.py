"""Fit Cluster Model: one cluster model (.tscm) from several orthophotos, for Segment Trees to apply to each.

It takes Segment Trees' model, stride, K and tiling settings (the same declarations in parameters.py), so the two
algorithms cannot drift apart, and runs the engine's "fit" job in the worker process.
"""

from __future__ import annotations

from typing import Any

from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsProcessingOutputNumber

from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.segmentation import SegmentationConfig, validate_settings
from ..treeseg_plugin.i18n import translatable
from ..treeseg_plugin.version import help_url
from . import parameters as spec
from .segment_trees import cluster_settings
from .web_input import LayerInputs
from .worker_algorithm import WorkerAlgorithm

FIT_CLUSTER_MODEL_PARAMETERS = (
    spec.ORTHOPHOTOS, spec.WORKING_RESOLUTION,
    spec.bands("Three band numbers in red, green, blue order, e.g. 3,2,1, or one band (repeated to RGB). Empty: the "
               "first three bands, or the single band of a one-band raster.", one_raster=False),
    spec.WEB_EXTENT, *spec.CLUSTER_SETTINGS, spec.CLUSTER_MODEL_FILE)
"""Fit Cluster Model's parameters in dialog order (declared in parameters.py)."""

HELP = translatable("<p>Fits one cluster model on patch features sampled across several orthophotos and saves it as "
                    "a .tscm file. Segment Trees then applies it to each raster (its <i>Cluster model (apply)</i> "
                    "input, in the Toolbox, in batch or in a model), so every output has the same clusters, label "
                    "numbers and colours.</p><p>The rasters must have the same bands and band types. The maximum "
                    "k-means samples are split across the rasters in proportion to their valid patches; 16-bit and "
                    "float bands are stretched between the 2nd and 98th percentiles of all rasters together. K is "
                    "chosen as in Segment Trees (the elbow of the WCSS curve, logged per K). See "
                    "docs/cluster-model.md.</p>")


class FitClusterModelAlgorithm(WorkerAlgorithm):
    """treeseg:fitclustermodel: one k-means model on features of several rasters, saved as .tscm."""

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
        return help_url("fit-once-apply-everywhere")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self._add_parameters(FIT_CLUSTER_MODEL_PARAMETERS)
        self.addOutput(QgsProcessingOutputNumber(self.CHOSEN_K, self.tr("Chosen number of clusters")))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            validate_settings(SegmentationConfig(input_path="", output_path="",
                                                 **cluster_settings(self, parameters, context)))
        except (EngineError, ValueError) as error:
            return False, str(error)
        return True, ""

    def _input_paths(self, parameters: dict[str, Any], context: QgsProcessingContext, inputs: LayerInputs,
                     resolution: float) -> list[str]:
        """The rasters' paths: files as they are, other layers fetched over EXTENT by ``inputs``."""
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException(self.tr("No input rasters given. Choose one or more orthophotos."))
        return [self._input_source(inputs, layer, parameters, context,
                                   (resolution, spec.WORKING_RESOLUTION.name))[0] for layer in layers]

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..treeseg_plugin.engine.jobs.fit import ClusterFitConfig

        def config(inputs: LayerInputs) -> ClusterFitConfig:
            settings = cluster_settings(self, parameters, context)
            return ClusterFitConfig(self._input_paths(parameters, context, inputs, settings["working_resolution"]),
                                    self.parameterAsFileOutput(parameters, self.OUTPUT, context), token=self._token,
                                    **settings)

        with LayerInputs(feedback) as inputs:
            result = self._run_job(lambda: config(inputs), feedback)
        return {self.OUTPUT: result.output_path, self.CHOSEN_K: result.chosen_k}
