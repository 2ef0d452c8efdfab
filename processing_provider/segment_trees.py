"""Segment Trees: Processing parameters in, engine call, declared outputs back."""

from __future__ import annotations

import traceback
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..treeseg_plugin import settings as treeseg_settings
from ..treeseg_plugin.dinov3.variants import VARIANTS
from ..treeseg_plugin.engine.config import (
    DEVICES,
    MAX_CLUSTERS,
    PRECISIONS,
    STRIDES,
    SegmentationConfig,
    validate_cluster_model_paths,
    validate_settings,
)
from ..treeseg_plugin.engine.errors import EngineError
from .dependencies import missing_dependencies
from .help_text import SHORT_HELP

MODELS = list(VARIANTS.values())  # enum order: ViT-S/16 (LVD-1689M) first, the default
ENGINE_DEFAULTS = SegmentationConfig(input_path="", output_path="")
HELP_URL = "https://github.com/treeseg/treeseg#segment-trees"
CLUSTER_MODEL_FILTER = "TreeSeg cluster model (*.tscm)"

Integer = QgsProcessingParameterNumber.Type.Integer
Double = QgsProcessingParameterNumber.Type.Double
Advanced = QgsProcessingParameterDefinition.Flag.FlagAdvanced


class SegmentTreesAlgorithm(QgsProcessingAlgorithm):
    """treeseg:segmenttrees: DINOv3 patch features, k-means with elbow K, styled label raster."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    EXTENT = "EXTENT"
    MODEL = "MODEL"
    WEIGHTS = "WEIGHTS"
    DEVICE = "DEVICE"
    PRECISION = "PRECISION"
    STRIDE = "STRIDE"
    K = "K"
    K_MIN = "K_MIN"
    K_MAX = "K_MAX"
    ELBOW_THRESHOLD = "ELBOW_THRESHOLD"
    SEED = "SEED"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    MAX_SAMPLES = "MAX_SAMPLES"
    ALLOW_DOWNLOAD = "ALLOW_DOWNLOAD"
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

    _token: str | None = None  # read in prepareAlgorithm (main thread), only when downloads are allowed
    _outputs: dict[str, Any] | None = None

    def name(self) -> str:
        return "segmenttrees"

    def displayName(self) -> str:
        return self.tr("Segment Trees")

    def group(self) -> str:
        return self.tr("Segmentation")

    def groupId(self) -> str:
        return "segmentation"

    def tags(self) -> list[str]:
        return self.tr("trees,forest,canopy,dinov3,k-means,clustering,unsupervised,orthophoto").split(",")

    def shortHelpString(self) -> str:
        return self.tr(SHORT_HELP)

    def helpUrl(self) -> str:
        return HELP_URL

    def createInstance(self) -> SegmentTreesAlgorithm:
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SegmentTreesAlgorithm", text)

    def canExecute(self) -> tuple[bool, str]:
        problem = missing_dependencies()
        return (not problem, problem)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        defaults = treeseg_settings.load_settings()
        engine = ENGINE_DEFAULTS
        self._add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Orthophoto")),
                  "The orthophoto to segment (any GDAL raster: GeoTIFF, VRT, JPEG2000...).")
        self._add(QgsProcessingParameterBand(self.BANDS, self.tr("Bands (red, green, blue)"), None, self.INPUT,
                                             optional=True, allowMultiple=True),
                  "Three bands in red, green, blue order. Empty: the first three bands, or the single band "
                  "repeated for a one-band raster.")
        self._add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent"), optional=True),
                  "Process only this part of the orthophoto, snapped outwards to the input's pixel grid.")
        self._add(QgsProcessingParameterEnum(self.MODEL, self.tr("DINOv3 model"),
                                             [variant.display_name for variant in MODELS], defaultValue=0),
                  "Released DINOv3 backbone, found in the Hugging Face cache (or downloaded when allowed). "
                  "Ignored when a weights file is given.")
        self._add(QgsProcessingParameterFile(self.WEIGHTS, self.tr("Weights file"),
                                             fileFilter="DINOv3 weights (*.pth *.safetensors)", optional=True),
                  "A local DINOv3 checkpoint: Meta .pth or Hugging Face .safetensors. When given, it decides "
                  "the model.")
        self._add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), list(DEVICES),
                                             defaultValue=DEVICES.index(defaults.device)),
                  "auto: CUDA, then Apple MPS, then CPU.")
        self._add(QgsProcessingParameterEnum(self.PRECISION, self.tr("Precision"), list(PRECISIONS),
                                             defaultValue=PRECISIONS.index(defaults.precision)),
                  "auto: bf16 on CUDA and on CPUs with native bf16 (AMX or AVX512-BF16), else fp32. "
                  "fp16 needs CUDA.")
        self._add(QgsProcessingParameterEnum(self.STRIDE, self.tr("Patch stride (px)"),
                                             [str(stride) for stride in STRIDES], defaultValue=0),
                  "16: one feature per 16x16 patch. 8 or 4: overlapping patches, denser features, "
                  "4x or 16x the encoding cost.")
        self._add(QgsProcessingParameterNumber(self.K, self.tr("Number of clusters (0 = automatic)"), Integer,
                                               engine.k, minValue=0, maxValue=MAX_CLUSTERS),
                  "0 picks K at the elbow of the WCSS curve between the minimum and maximum K.")
        self._add(QgsProcessingParameterNumber(self.K_MIN, self.tr("Minimum K"), Integer, engine.k_min,
                                               minValue=2, maxValue=MAX_CLUSTERS),
                  "Smallest K tried by the automatic choice.")
        self._add(QgsProcessingParameterNumber(self.K_MAX, self.tr("Maximum K"), Integer, engine.k_max,
                                               minValue=2, maxValue=MAX_CLUSTERS),
                  "Largest K tried by the automatic choice.")
        self._add(QgsProcessingParameterNumber(self.ELBOW_THRESHOLD, self.tr("Elbow threshold (%)"), Double,
                                               engine.elbow_threshold, minValue=0.01, maxValue=100.0),
                  "The chosen K is the smallest K whose step to K+1 lowers WCSS by less than this percentage.")
        self._add(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), Integer, engine.seed,
                                               minValue=0),
                  "Seeds the fit sample and k-means: the same input, weights and seed give the same output.")
        self._add(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (px)"), Integer,
                                               engine.tile_size, minValue=32, maxValue=4096),
                  "Side of the square tiles fed to the model; a multiple of 16.", advanced=True)
        self._add(QgsProcessingParameterNumber(self.OVERLAP, self.tr("Tile overlap (px)"), Integer,
                                               engine.overlap, minValue=0, maxValue=2048),
                  "Margin shared by neighbouring tiles and discarded, so there are no seams; a multiple of 16 "
                  "and less than half the tile size.", advanced=True)
        self._add(QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"), Integer,
                                               engine.batch_size, minValue=1, maxValue=256),
                  "Tiles per forward pass; halved automatically when the GPU runs out of memory.",
                  advanced=True)
        self._add(QgsProcessingParameterNumber(self.MAX_SAMPLES, self.tr("Maximum k-means samples"), Integer,
                                               engine.max_samples, minValue=100),
                  "At most this many valid patch features, sampled over the whole raster, fit k-means.",
                  advanced=True)
        self._add(QgsProcessingParameterBoolean(self.ALLOW_DOWNLOAD, self.tr("Allow downloading weights"),
                                                defaultValue=treeseg_settings.allow_download_default()),
                  "Download the chosen model from Hugging Face when it is not in the local cache (needs a "
                  "token with access to the gated repository: the authentication configuration chosen in "
                  "TreeSeg's Settings, or HF_TOKEN).", advanced=True)
        self._add(QgsProcessingParameterFile(self.CLUSTER_MODEL, self.tr("Cluster model (apply)"),
                                             fileFilter=CLUSTER_MODEL_FILTER, optional=True),
                  "A .tscm file from Fit Cluster Model or a Segment Trees run: label with its clusters, band "
                  "stretch and colours (no fit; the K settings are not used), so every raster shares labels. "
                  "It must come from the same weights, patch stride and bands.")

        self._add_tree_parameters()
        self._add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Tree segmentation labels")),
                  "Byte GeoTIFF on the input's grid: labels 1..K (1 = most fit-sample patches), 0 = NoData; with a "
                  "colour table and a .qml style beside it.")
        self._add(QgsProcessingParameterFileDestination(
            self.STATS, self.tr("Statistics report"), "JSON (*.json);;CSV (*.csv);;HTML (*.html)",
            optional=True, createByDefault=False),
            "WCSS per K, chosen K, cluster pixels and areas, model, weights and timings.")
        self._add(QgsProcessingParameterVectorDestination(
            self.OUTPUT_POLYGONS, self.tr("Cluster polygons"), QgsProcessing.SourceType.TypeVectorPolygon,
            optional=True, createByDefault=False),
            "One polygon per connected region of a cluster, with fields cluster and area.")
        self._add(QgsProcessingParameterFileDestination(
            self.CLUSTER_MODEL_OUTPUT, self.tr("Cluster model (save)"), CLUSTER_MODEL_FILTER, optional=True,
            createByDefault=False),
            "Save the clusters this run fits (.tscm), to apply them to other rasters with the Cluster model input.")
        self._add(QgsProcessingParameterRasterDestination(self.TREES, self.tr("Tree canopy mask"), optional=True,
                                                          createByDefault=False),
                  "Byte GeoTIFF on the labels' grid: 1 = tree canopy (the tree clusters), 0 = not trees, "
                  "255 = NoData; with a .qml style.")
        self._add(QgsProcessingParameterVectorDestination(
            self.CROWNS, self.tr("Tree crowns"), QgsProcessing.SourceType.TypeVectorPolygon, optional=True,
            createByDefault=False),
            "One polygon per tree crown (watershed from the treetops of the canopy height, or of the distance to "
            "the canopy edge), with crown_id, area_m2, height_max, height_mean and cluster.")
        self.addOutput(QgsProcessingOutputNumber(self.CHOSEN_K, self.tr("Chosen number of clusters")))

    def _add_tree_parameters(self) -> None:
        """The evidence that decides which clusters are trees, and the user's override."""
        self._add(QgsProcessingParameterBand(self.NIR_BAND, self.tr("Near-infrared band"), None, self.INPUT,
                                             optional=True),
                  "For RGBN imagery (e.g. band 4): clusters are then trees by their NDVI (at least 0.4) unless "
                  "canopy heights are given.", advanced=True)
        self._add(QgsProcessingParameterRasterLayer(self.CANOPY_HEIGHT, self.tr("Canopy height raster (m)"),
                                                    optional=True),
                  "A canopy height model in metres (any CRS and resolution; resampled to the orthophoto's grid, "
                  "its NoData honoured): clusters are trees by their median height, and crowns are split at "
                  "treetops.")
        self._add(QgsProcessingParameterNumber(self.MIN_TREE_HEIGHT, self.tr("Minimum tree height (m)"), Double,
                                               ENGINE_DEFAULTS.min_tree_height, minValue=0.01),
                  "With canopy heights: a cluster whose median height reaches this is trees.", advanced=True)
        self._add(QgsProcessingParameterString(self.TREE_CLUSTERS, self.tr("Tree clusters (override)"),
                                               optional=True),
                  "Cluster numbers that are trees, separated by commas (e.g. 2,5): they replace the rule. "
                  "Empty: the rule decides (heights, else NDVI, else excess green and VARI).", advanced=True)
        self._add(QgsProcessingParameterNumber(self.MIN_CROWN_AREA, self.tr("Minimum crown area (m²)"), Double,
                                               ENGINE_DEFAULTS.min_crown_area, minValue=0.0),
                  "Crowns smaller than this are left out of the crown polygons.", advanced=True)

    def _add(self, parameter: QgsProcessingParameterDefinition, help_text: str, advanced: bool = False) -> None:
        parameter.setHelp(self.tr(help_text))
        if advanced:
            parameter.setFlags(parameter.flags() | Advanced)
        self.addParameter(parameter)

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
        bands = self.parameterAsInts(parameters, self.BANDS, context)
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
        if not isinstance(value, str) or not value or missing_dependencies() or \
                self.parameterAsRasterLayer(parameters, self.INPUT, context) is not None:
            return ""
        from ..treeseg_plugin.engine.raster_io import input_problem

        return input_problem(value)

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

        config = SegmentationConfig(**self._engine_arguments(parameters, context))
        try:
            result = run_job(config, FeedbackProgress(feedback))
        except EngineError as error:  # Canceled and WorkerDied included: their messages say what happened
            raise QgsProcessingException(str(error)) from None
        except WorkerBugError as error:  # a bug: one clear line here, the traceback in the TreeSeg message log
            raise QgsProcessingException(unexpected_error(error.type_name, str(error), error.traceback_text)) \
                from None
        except Exception as error:
            raise QgsProcessingException(unexpected_error(type(error).__name__, str(error),
                                                          traceback.format_exc())) from None
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
        extent = None
        if parameters.get(self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        heights = self.parameterAsRasterLayer(parameters, self.CANOPY_HEIGHT, context)
        return {
            "input_path": layer.source(),
            "canopy_height_path": heights.source() if heights is not None else None,
            "output_path": self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            "extent": extent,
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
            "bands": self.parameterAsInts(parameters, self.BANDS, context) or None,
            "model": weights or str(treeseg_settings.weights_in_folder(name) or name),
            "device": DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            "precision": PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
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
            "allow_download": self.parameterAsBool(parameters, self.ALLOW_DOWNLOAD, context),
        }

    def _tree_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The SegmentationConfig fields that decide which clusters are trees and shape the crowns."""
        return {
            "nir_band": self.parameterAsInt(parameters, self.NIR_BAND, context) or None,
            "min_tree_height": self.parameterAsDouble(parameters, self.MIN_TREE_HEIGHT, context),
            "min_crown_area": self.parameterAsDouble(parameters, self.MIN_CROWN_AREA, context),
            "tree_clusters": parse_tree_clusters(self.parameterAsString(parameters, self.TREE_CLUSTERS, context)),
        }


def parse_tree_clusters(text: str) -> list[int] | None:
    """TREE_CLUSTERS ("2, 5") as label numbers; None when empty. Raises EngineError naming the fix."""
    parts = [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]
    if not parts:
        return None
    if not all(part.isdigit() for part in parts):
        raise EngineError(f"Tree clusters '{text}': give cluster numbers separated by commas, e.g. 2,5.")
    return sorted({int(part) for part in parts})
