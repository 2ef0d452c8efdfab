"""Canopy Height: Processing parameters in, the engine's CHMv2 run in the worker process, the height raster
back (styled in QGIS with its .qml)."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

from ..treeseg_plugin import settings as treeseg_settings
from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.canopy_height import CanopyHeightConfig, validate_canopy_config
from ..treeseg_plugin.i18n import translatable
from ..treeseg_plugin.version import help_url
from . import parameters as spec
from .web_input import LayerInputs
from .worker_algorithm import WorkerAlgorithm

SHORT_HELP = translatable("""<p>Canopy height in metres from an RGB orthophoto with Meta's CHMv2 (a DPT head on the
DINOv3 ViT-L/16 SAT-493M backbone, Brandt et al. 2026), written as a Float32 GeoTIFF on the input's grid (NoData
where the input is invalid), styled with a height colour ramp.</p>
<p><b>Resolution</b>: CHMv2 was trained at {gsd} m per pixel. The input is resampled to the
resolution given (default {gsd} m; 0 runs the model on the input's own pixels), and the heights
are resampled back onto the input's grid; the log says what was done.</p>
<p><b>Weights</b> (gated): empty <i>Weights file</i> uses Meta's decoder
<tt>{decoder}</tt> from the weights folder (with the SAT-493M backbone), else the Hugging Face model
<tt>{repo}</tt> from the weights folder or the cache (downloaded when allowed). A <i>Weights file</i> is
Meta's decoder .pth (then the backbone comes from <i>Backbone weights</i> or the weights folder) or a Hugging Face
model.safetensors with its config.json.</p>""")
CANOPY_HEIGHT_PARAMETERS = (
    spec.orthophoto("The RGB orthophoto: any GDAL raster, or any QGIS raster layer (XYZ, WMS, WMTS, WCS...: fetched "
                    "over the extent at the model resolution)."),
    spec.RESOLUTION, spec.bands("Three bands in red, green, blue order. Empty: the first three bands."),
    spec.EXTENT, spec.CHM_WEIGHTS, spec.BACKBONE, spec.DEVICE, spec.CHM_PRECISION, spec.CHM_TILE_SIZE,
    spec.CHM_OVERLAP, spec.CHM_BATCH_SIZE, spec.CHM_ALLOW_DOWNLOAD, spec.HEIGHTS)
"""Canopy Height's parameters in dialog order (declared in parameters.py)."""


class CanopyHeightAlgorithm(WorkerAlgorithm):
    """treeseg:canopyheight: CHMv2 heights in metres on the input's grid."""

    WEIGHTS = "WEIGHTS"
    BACKBONE = "BACKBONE"
    RESOLUTION = "RESOLUTION"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT = "OUTPUT"

    _output: str | None = None
    _input_path = ""

    def name(self) -> str:
        return "canopyheight"

    def displayName(self) -> str:
        return self.tr("Canopy Height")

    def tags(self) -> list[str]:
        return self.tr("canopy,height,chm,chmv2,trees,forest,dinov3,dpt,depth").split(",")

    def shortHelpString(self) -> str:
        return self.tr(SHORT_HELP).format_map(spec.HELP_VALUES)

    def helpUrl(self) -> str:
        return help_url("canopy-height")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self._add_parameters(CANOPY_HEIGHT_PARAMETERS)

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:  # the engine's own rules, in its words (the paths are checked when the run starts)
            config = CanopyHeightConfig(input_path="in.tif", output_path="out.tif",
                                        **self._settings_arguments(parameters, context))
            validate_canopy_config(config)
        except EngineError as error:
            return False, str(error)
        return True, ""

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        with LayerInputs(feedback) as inputs:
            result = self._run_job(lambda: self._config(parameters, context, inputs), feedback)
        self._output = result.output_path
        return {self.OUTPUT: result.output_path}

    def _config(self, parameters: dict[str, Any], context: QgsProcessingContext,
                inputs: LayerInputs) -> CanopyHeightConfig:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("The input orthophoto could not be opened as a raster layer."))
        settings = self._settings_arguments(parameters, context)
        self._input_path, extent = self._input_source(inputs, layer, parameters, context,
                                                      (settings["resolution"], self.RESOLUTION))
        return CanopyHeightConfig(input_path=self._input_path,
                                  output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
                                  extent=extent, token=self._token, **settings)

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """In QGIS: the height layer named after the input, with its colour-ramp style."""
        if self._output:
            from .results import ResultLayer, present_results, qml_style

            present_results(context, self._input_path, (ResultLayer(self._output, self.tr("canopy height"),
                                                                    qml_style),),
                            grouped=False)
        return {}

    def _settings_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The CanopyHeightConfig fields that are settings: model files, resolution, device, tiling."""
        weights, backbone = treeseg_settings.canopy_height_sources(
            self.parameterAsFile(parameters, self.WEIGHTS, context),
            self.parameterAsFile(parameters, self.BACKBONE, context))
        return {
            **self._device_arguments(parameters, context),
            "model": weights,
            "backbone": backbone,
            "resolution": self.parameterAsDouble(parameters, self.RESOLUTION, context),
            "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context),
            "overlap": self.parameterAsInt(parameters, self.OVERLAP, context),
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
        }
