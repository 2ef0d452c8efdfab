"""Canopy Height: Processing parameters in, the engine's CHMv2 run in the worker process, the height raster
back (styled in QGIS with its .qml)."""

from __future__ import annotations

import traceback
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..treeseg_plugin import settings as treeseg_settings
from ..treeseg_plugin.dinov3.chmv2.config import DECODER_FILENAME, HF_REPO_ID, TRAINING_GSD_M
from ..treeseg_plugin.engine.canopy_height import MAX_RESOLUTION_M, CanopyHeightConfig, validate_canopy_config
from ..treeseg_plugin.engine.config import DEVICES, PRECISIONS
from ..treeseg_plugin.engine.errors import EngineError
from .dependencies import missing_dependencies

ENGINE_DEFAULTS = CanopyHeightConfig(input_path="", output_path="")
HELP_URL = "https://github.com/treeseg/treeseg#canopy-height"
SHORT_HELP = f"""<p>Canopy height in metres from an RGB orthophoto with Meta's CHMv2 (a DPT head on the DINOv3
ViT-L/16 SAT-493M backbone, Brandt et al. 2026), written as a Float32 GeoTIFF on the input's grid (NoData
where the input is invalid), styled with a height colour ramp.</p>
<p><b>Resolution</b>: CHMv2 was trained at {TRAINING_GSD_M:g} m per pixel. The input is resampled to the
resolution given (default {TRAINING_GSD_M:g} m; 0 runs the model on the input's own pixels), and the heights
are resampled back onto the input's grid; the log says what was done.</p>
<p><b>Weights</b> (gated): empty <i>Weights file</i> uses Meta's decoder
<tt>{DECODER_FILENAME}</tt> from the weights folder (with the SAT-493M backbone), else the Hugging Face model
<tt>{HF_REPO_ID}</tt> from the weights folder or the cache (downloaded when allowed). A <i>Weights file</i> is
Meta's decoder .pth (then the backbone comes from <i>Backbone weights</i> or the weights folder) or a Hugging Face
model.safetensors with its config.json.</p>"""

Integer = QgsProcessingParameterNumber.Type.Integer
Double = QgsProcessingParameterNumber.Type.Double
Advanced = QgsProcessingParameterDefinition.Flag.FlagAdvanced


class CanopyHeightAlgorithm(QgsProcessingAlgorithm):
    """treeseg:canopyheight: CHMv2 heights in metres on the input's grid."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    EXTENT = "EXTENT"
    WEIGHTS = "WEIGHTS"
    BACKBONE = "BACKBONE"
    RESOLUTION = "RESOLUTION"
    DEVICE = "DEVICE"
    PRECISION = "PRECISION"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    ALLOW_DOWNLOAD = "ALLOW_DOWNLOAD"
    OUTPUT = "OUTPUT"

    _token: str | None = None
    _output: str | None = None

    def name(self) -> str:
        return "canopyheight"

    def displayName(self) -> str:
        return self.tr("Canopy Height")

    def group(self) -> str:
        return self.tr("Segmentation")

    def groupId(self) -> str:
        return "segmentation"

    def tags(self) -> list[str]:
        return self.tr("canopy,height,chm,chmv2,trees,forest,dinov3,dpt,depth").split(",")

    def shortHelpString(self) -> str:
        return self.tr(SHORT_HELP)

    def helpUrl(self) -> str:
        return HELP_URL

    def createInstance(self) -> CanopyHeightAlgorithm:
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("CanopyHeightAlgorithm", text)

    def canExecute(self) -> tuple[bool, str]:
        problem = missing_dependencies()
        return (not problem, problem)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        defaults = treeseg_settings.load_settings()
        engine = ENGINE_DEFAULTS
        weights_filter = "CHMv2 weights (*.pth *.safetensors)"
        self._add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Orthophoto")),
                  "The RGB orthophoto (any GDAL raster).")
        self._add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands (red, green, blue)"), None, self.INPUT,
                                             optional=True, allowMultiple=True),
                  "Three bands in red, green, blue order. Empty: the first three bands.")
        self._add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent"), optional=True),
                  "Process only this part of the orthophoto, snapped outwards to the input's pixel grid.")
        self._add(QgsProcessingParameterFile(self.WEIGHTS, self.tr("Weights file"), fileFilter=weights_filter,
                                             optional=True),
                  f"Meta's decoder ({DECODER_FILENAME}) or a Hugging Face CHMv2 model.safetensors. Empty: the "
                  f"weights folder, then {HF_REPO_ID}.")
        self._add(QgsProcessingParameterFile(self.BACKBONE, self.tr("Backbone weights (with Meta's decoder)"),
                                             fileFilter="DINOv3 weights (*.pth *.safetensors)", optional=True),
                  "The DINOv3 ViT-L/16 SAT-493M backbone for Meta's decoder. Empty: the weights folder, then the "
                  "Hugging Face cache.")
        self._add(QgsProcessingParameterNumber(self.RESOLUTION, self.tr("Model resolution (m per pixel, 0 = input's)"),
                                               Double, engine.resolution, minValue=0.0, maxValue=MAX_RESOLUTION_M),
                  f"The input is resampled to this resolution for the model (CHMv2 was trained at "
                  f"{TRAINING_GSD_M:g} m) and the heights back onto the input's grid. 0: no resampling.")
        self._add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), list(DEVICES),
                                             defaultValue=DEVICES.index(defaults.device)),
                  "auto: CUDA, then Apple MPS, then CPU.")
        self._add(QgsProcessingParameterEnum(self.PRECISION, self.tr("Precision"), list(PRECISIONS),
                                             defaultValue=PRECISIONS.index(defaults.precision)),
                  "auto: bf16 on CUDA and on CPUs with native bf16, else fp32. fp16 needs CUDA.")
        self._add(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (model px)"), Integer,
                                               engine.tile_size, minValue=32, maxValue=4096),
                  "Side of the tiles fed to the model, in model pixels; a multiple of 16.", advanced=True)
        self._add(QgsProcessingParameterNumber(self.OVERLAP, self.tr("Tile overlap (model px)"), Integer,
                                               engine.overlap, minValue=0, maxValue=2048),
                  "Neighbouring tiles overlap by this much and are cross-faded there, so there are no seams.",
                  advanced=True)
        self._add(QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"), Integer, engine.batch_size,
                                               minValue=1, maxValue=256), "Tiles per forward pass.", advanced=True)
        self._add(QgsProcessingParameterBoolean(self.ALLOW_DOWNLOAD, self.tr("Allow downloading weights"),
                                                defaultValue=treeseg_settings.allow_download_default()),
                  f"Download {HF_REPO_ID} from Hugging Face when it is not cached (gated: needs a token with "
                  "access).", advanced=True)
        self._add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Canopy height")),
                  "Float32 GeoTIFF of heights in metres on the input's grid, NoData -9999; with a .qml style.")

    def _add(self, parameter: QgsProcessingParameterDefinition, help_text: str, advanced: bool = False) -> None:
        parameter.setHelp(self.tr(help_text))
        if advanced:
            parameter.setFlags(parameter.flags() | Advanced)
        self.addParameter(parameter)

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

    def prepareAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        """Read the Hugging Face token here, in the main thread, where QGIS may ask for its master password."""
        self._token = None
        if self.parameterAsBool(parameters, self.ALLOW_DOWNLOAD, context):
            try:
                self._token = treeseg_settings.hf_token(interactive=treeseg_settings.is_desktop())
            except treeseg_settings.TokenError as error:
                raise QgsProcessingException(str(error)) from None
        return True

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        problem = missing_dependencies()
        if problem:
            raise QgsProcessingException(problem)
        from ..treeseg_plugin.engine.job import WorkerBugError, run_job
        from .feedback import FeedbackProgress, unexpected_error

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None or layer.providerType() != "gdal":
            raise QgsProcessingException(self.tr("The input orthophoto could not be opened as a GDAL raster. Save "
                                                 "it as a GeoTIFF first (Raster > Conversion > Translate)."))
        extent = None
        if parameters.get(self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        config = CanopyHeightConfig(input_path=layer.source(),
                                    output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
                                    extent=extent, token=self._token, **self._settings_arguments(parameters, context))
        try:
            result = run_job(config, FeedbackProgress(feedback))
        except EngineError as error:
            raise QgsProcessingException(str(error)) from None
        except WorkerBugError as error:
            raise QgsProcessingException(unexpected_error(error.type_name, str(error), error.traceback_text)) \
                from None
        except Exception as error:
            raise QgsProcessingException(unexpected_error(type(error).__name__, str(error),
                                                          traceback.format_exc())) from None
        self._output = result.output_path
        return {self.OUTPUT: result.output_path}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """In QGIS: the height layer gets its colour-ramp style."""
        if self._output:
            from .results import present_results

            present_results(context, self._output, None, self.icon())
        return {}

    def _settings_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The CanopyHeightConfig fields that are settings: model files, resolution, device, tiling."""
        weights, backbone = treeseg_settings.canopy_height_sources(
            self.parameterAsFile(parameters, self.WEIGHTS, context),
            self.parameterAsFile(parameters, self.BACKBONE, context))
        return {
            "bands": self.parameterAsInts(parameters, self.BANDS, context) or None,
            "model": weights,
            "backbone": backbone,
            "resolution": self.parameterAsDouble(parameters, self.RESOLUTION, context),
            "device": DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            "precision": PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
            "tile_size": self.parameterAsInt(parameters, self.TILE_SIZE, context),
            "overlap": self.parameterAsInt(parameters, self.OVERLAP, context),
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            "allow_download": self.parameterAsBool(parameters, self.ALLOW_DOWNLOAD, context),
        }
