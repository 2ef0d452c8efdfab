"""Every parameter of Segment Trees, Fit Cluster Model, Canopy Height and Classify from Examples, declared once as
data: its name, how its definition is built, its help and whether it is advanced. Each algorithm lists the ones it
takes, in dialog order (``*_PARAMETERS`` in its module); a parameter two algorithms share is one object here, so they
cannot drift apart.

Names, types, defaults, flags, order and help are what saved graphical models and scripts rely on: keep them.
Labels and help are English here and translated when a definition is built (the algorithm's ``tr``);
scripts/translations.py extracts them from these declarations (its DATA_ARGUMENTS name the positions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..treeseg_plugin import settings as treeseg_settings
from ..treeseg_plugin.dinov3.chmv2.config import DECODER_FILENAME, HF_REPO_ID, TRAINING_GSD_M
from ..treeseg_plugin.dinov3.variants import VARIANTS
from ..treeseg_plugin.engine.jobs.canopy_height import MAX_RESOLUTION_M, CanopyHeightConfig
from ..treeseg_plugin.engine.jobs.classify import CLASSIFIER_EXTENSION, DEFAULT_REGULARISATION
from ..treeseg_plugin.engine.jobs.segmentation import DEVICES, MAX_CLUSTERS, PRECISIONS, STRIDES, SegmentationConfig
from ..treeseg_plugin.i18n import translatable

Translate = Callable[[str], str]
Build = Callable[[str, Translate], QgsProcessingParameterDefinition]
"""(name, the algorithm's tr) -> a new definition, without help or the advanced flag."""

MODELS = list(VARIANTS.values())  # enum order: ViT-S/16 (LVD-1689M) first, the default
SEGMENTATION_DEFAULTS = SegmentationConfig(input_path="", output_path="")
CANOPY_DEFAULTS = CanopyHeightConfig(input_path="", output_path="")
CLUSTER_MODEL_FILTER = "TreeSeg cluster model (*.tscm)"
DINOV3_WEIGHTS_FILTER = "DINOv3 weights (*.pth *.safetensors)"
BANDS_HELP = translatable(" Headless (qgis_process) and in text inputs: BANDS=3,2,1, or the parameter repeated: "
                          "BANDS=3 BANDS=2 BANDS=1.")
Integer = QgsProcessingParameterNumber.Type.Integer
Double = QgsProcessingParameterNumber.Type.Double
Advanced = QgsProcessingParameterDefinition.Flag.FlagAdvanced
HELP_VALUES = {"decoder": DECODER_FILENAME, "repo": HF_REPO_ID, "gsd": f"{TRAINING_GSD_M:g}",
               "classifier_extension": CLASSIFIER_EXTENSION}
"""The names a help text may hold as {placeholders}: filled after translation, so the translation keeps them."""


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter as data; :meth:`definition` builds a fresh QgsProcessingParameterDefinition of it."""

    name: str
    build: Build
    help: str
    advanced: bool = False
    help_more: str = ""  # a second translated sentence (the BANDS syntax shared by every algorithm)

    def definition(self, tr: Translate) -> QgsProcessingParameterDefinition:
        """The definition, its label and help translated by ``tr``."""
        parameter = self.build(self.name, tr)
        parts = (tr(text).format_map(HELP_VALUES) for text in (self.help, self.help_more) if text)
        parameter.setHelp("".join(parts))
        if self.advanced:
            parameter.setFlags(parameter.flags() | Advanced)
        return parameter

    def with_help(self, help_text: str) -> ParameterSpec:
        """The same definition with another algorithm's help."""
        return replace(self, help=help_text)


def number(label: str, kind: QgsProcessingParameterNumber.Type, default: float, **limits: Any) -> Build:
    """A number parameter; ``limits``: minValue, maxValue."""
    return lambda name, tr: QgsProcessingParameterNumber(name, tr(label), kind, default, **limits)


def resolution_widget(build: Build) -> Build:
    """``build`` with the dialog's resolution widget (its unit and the input's own pixel size beside it;
    resolution_widget.py), named by class path: Processing imports it only when it builds a dialog."""
    def built(name: str, tr: Translate) -> QgsProcessingParameterDefinition:
        parameter = build(name, tr)
        parameter.setMetadata({"widget_wrapper": {"class": f"{__package__}.resolution_widget.ResolutionWidgetWrapper"}})
        return parameter
    return built


def _spec(name: str, build: Build, help_text: str, advanced: bool = False, help_more: str = "") -> ParameterSpec:
    """Shorthand of ParameterSpec, so the declarations below read as a table."""
    return ParameterSpec(name, build, help_text, advanced, help_more)


def orthophoto(help_text: str) -> ParameterSpec:
    """INPUT: one raster layer."""
    return _spec("INPUT", lambda name, tr: QgsProcessingParameterRasterLayer(name, tr("Orthophoto")), help_text)


def bands(help_text: str, one_raster: bool = True) -> ParameterSpec:
    """BANDS (red, green, blue): QGIS's band picker on the bands of INPUT when it is one raster, text such as
    3,2,1 when INPUT is several; WorkerAlgorithm._bands reads both."""
    def build(name: str, tr: Translate) -> QgsProcessingParameterDefinition:
        label = tr("Bands (red, green, blue)")
        return (QgsProcessingParameterBand(name, label, None, "INPUT", optional=True, allowMultiple=True)
                if one_raster else QgsProcessingParameterString(name, label, optional=True))
    return _spec("BANDS", build, help_text, help_more=BANDS_HELP)


def _settings_enum(label: str, options: tuple[str, ...], setting: str) -> Build:
    """An enum whose default is the option chosen in TreeSeg's Settings (read when the algorithm is built)."""
    return lambda name, tr: QgsProcessingParameterEnum(
        name, tr(label), list(options), defaultValue=options.index(getattr(treeseg_settings.load_settings(), setting)))


def _destination(kind: type, label: str, *arguments: Any) -> Build:
    """An optional output, not created unless asked for."""
    return lambda name, tr: kind(name, tr(label), *arguments, optional=True, createByDefault=False)


EXTENT = _spec("EXTENT", lambda name, tr: QgsProcessingParameterExtent(name, tr("Extent"), optional=True),
               "Process only this part of the orthophoto, snapped outwards to the input's pixel grid. A layer that "
               "is not a file (XYZ, WMS, WMTS, WCS...) is fetched over this extent at the working resolution; empty: "
               "the map canvas extent in the desktop (docs/web-layers.md).")
WEB_EXTENT = EXTENT.with_help("Only for inputs that are not files (XYZ, WMS, WMTS, WCS...): they are fetched over "
                              "this extent at the working resolution (empty: the map canvas extent in the desktop); "
                              "files are read whole (docs/web-layers.md).")
DEVICE = _spec("DEVICE", _settings_enum("Device", DEVICES, "device"), "auto: CUDA, then Apple MPS, then CPU.")
PRECISION = _spec("PRECISION", _settings_enum("Precision", PRECISIONS, "precision"),
                  "auto: bf16 on CUDA GPUs from Ampere on (fp16 on older ones) and on CPUs with native bf16 (AMX or "
                  "AVX512-BF16), else fp32. fp16 needs CUDA.")
ALLOW_DOWNLOAD = _spec("ALLOW_DOWNLOAD", lambda name, tr: QgsProcessingParameterBoolean(
    name, tr("Allow downloading weights"), defaultValue=treeseg_settings.allow_download_default()),
    "Download the chosen model from Hugging Face when it is not in the local cache (needs a token with access to "
    "the gated repository: the authentication configuration chosen in TreeSeg's Settings, or HF_TOKEN).",
    advanced=True)

# The DINOv3 features and their clustering: Segment Trees and Fit Cluster Model.
MODEL = _spec("MODEL", lambda name, tr: QgsProcessingParameterEnum(
    name, tr("DINOv3 model"), [variant.display_name for variant in MODELS], defaultValue=0),
    "Released DINOv3 backbone, found in the Hugging Face cache (or downloaded when allowed). Ignored when a weights "
    "file is given.")
WEIGHTS = _spec("WEIGHTS", lambda name, tr: QgsProcessingParameterFile(
    name, tr("Weights file"), fileFilter=DINOV3_WEIGHTS_FILTER, optional=True),
    "A local DINOv3 checkpoint: Meta .pth or Hugging Face .safetensors. When given, it decides the model.")
STRIDE = _spec("STRIDE", lambda name, tr: QgsProcessingParameterEnum(
    name, tr("Patch stride (px)"), [str(stride) for stride in STRIDES], defaultValue=0),
    "16: one feature per 16x16 patch. 8 or 4: overlapping patches, denser features, 4x or 16x the encoding cost.")
K = _spec("K", number("Number of clusters (0 = automatic)", Integer, SEGMENTATION_DEFAULTS.k, minValue=0,
                      maxValue=MAX_CLUSTERS),
          "0 picks K at the elbow of the WCSS curve between the minimum and maximum K.")
K_MIN = _spec("K_MIN", number("Minimum K", Integer, SEGMENTATION_DEFAULTS.k_min, minValue=2, maxValue=MAX_CLUSTERS),
              "Smallest K tried by the automatic choice.")
K_MAX = _spec("K_MAX", number("Maximum K", Integer, SEGMENTATION_DEFAULTS.k_max, minValue=2, maxValue=MAX_CLUSTERS),
              "Largest K tried by the automatic choice.")
ELBOW_THRESHOLD = _spec("ELBOW_THRESHOLD", number("Elbow threshold (%)", Double, SEGMENTATION_DEFAULTS.elbow_threshold,
                                                  minValue=0.01, maxValue=100.0),
                        "The chosen K is the smallest K whose step to K+1 lowers WCSS by less than this percentage.")
SEED = _spec("SEED", number("Random seed", Integer, SEGMENTATION_DEFAULTS.seed, minValue=0),
             "Seeds the fit sample and k-means: the same input, weights and seed give the same output.")
TILE_SIZE = _spec("TILE_SIZE", number("Tile size (px)", Integer, SEGMENTATION_DEFAULTS.tile_size, minValue=32,
                                      maxValue=4096),
                  "Side of the square tiles fed to the model; a multiple of 16.", advanced=True)
OVERLAP = _spec("OVERLAP", number("Tile overlap (px)", Integer, SEGMENTATION_DEFAULTS.overlap, minValue=0,
                                  maxValue=2048),
                "Margin shared by neighbouring tiles and discarded, so there are no seams; a multiple of 16 and less "
                "than half the tile size.", advanced=True)
BATCH_SIZE = _spec("BATCH_SIZE", number("Batch size", Integer, SEGMENTATION_DEFAULTS.batch_size, minValue=1,
                                        maxValue=256),
                   "Tiles per forward pass; halved automatically when the GPU runs out of memory.", advanced=True)
MAX_SAMPLES = _spec("MAX_SAMPLES", number("Maximum k-means samples", Integer, SEGMENTATION_DEFAULTS.max_samples,
                                          minValue=100),
                    "At most this many valid patch features, sampled over the whole raster, fit k-means.",
                    advanced=True)
WORKING_RESOLUTION = _spec(
    "WORKING_RESOLUTION", resolution_widget(number("Working resolution (m per pixel, 0 = input's)", Double,
                                                   SEGMENTATION_DEFAULTS.working_resolution, minValue=0.0,
                                                   optional=True)),
    "Encode, cluster and find trees at this ground resolution (ground metres also in a geographic CRS); the outputs "
    "stay on the input's grid. A 16 px patch covers 16 x this: see docs/resolution.md for drone imagery. 0 or empty: "
    "the input's own pixels (optional, so models saved before it existed still run).")
CLUSTER_SETTINGS = (MODEL, WEIGHTS, DEVICE, PRECISION, STRIDE, K, K_MIN, K_MAX, ELBOW_THRESHOLD,
                    SEED, TILE_SIZE, OVERLAP, BATCH_SIZE, MAX_SAMPLES, ALLOW_DOWNLOAD)
"""The settings of the features and their clustering, in dialog order (Segment Trees adds its own among them);
WORKING_RESOLUTION comes under the input, before them."""
ENCODING_SETTINGS = tuple(spec for spec in CLUSTER_SETTINGS
                          if spec not in (K, K_MIN, K_MAX, ELBOW_THRESHOLD, SEED, MAX_SAMPLES))
"""The settings of the features alone (Classify from Examples: no k-means), in the same order."""

# Fit Cluster Model only.
ORTHOPHOTOS = _spec("INPUT", lambda name, tr: QgsProcessingParameterMultipleLayers(
    name, tr("Orthophotos"), QgsProcessing.SourceType.TypeRaster), "The rasters to fit on (any GDAL rasters with the "
    "same bands, or QGIS raster layers such as XYZ or WMS, fetched over the extent at the working resolution).")
CLUSTER_MODEL_FILE = _spec("OUTPUT", lambda name, tr: QgsProcessingParameterFileDestination(
    name, tr("Cluster model"), CLUSTER_MODEL_FILTER),
    "The .tscm file to apply with Segment Trees' Cluster model input.")

# Segment Trees only: the model file to apply, the evidence for trees, the outputs.
CLUSTER_MODEL = _spec("CLUSTER_MODEL", lambda name, tr: QgsProcessingParameterFile(
    name, tr("Cluster model (apply)"), fileFilter=CLUSTER_MODEL_FILTER, optional=True),
    "A .tscm file from Fit Cluster Model or a Segment Trees run: label with its clusters, band stretch and colours "
    "(no fit; the K settings are not used), so every raster shares labels. It must come from the same weights, "
    "patch stride and bands.")
NIR_BAND = _spec("NIR_BAND", lambda name, tr: QgsProcessingParameterBand(
    name, tr("Near-infrared band"), None, "INPUT", optional=True),
    "For RGBN imagery (e.g. band 4): clusters are then trees by their NDVI (at least 0.4) unless canopy heights are "
    "given.", advanced=True)
CANOPY_HEIGHT = _spec("CANOPY_HEIGHT", lambda name, tr: QgsProcessingParameterRasterLayer(
    name, tr("Canopy height raster (m)"), optional=True),
    "A canopy height model in metres (any CRS and resolution; resampled to the orthophoto's grid, its NoData "
    "honoured): clusters are trees by their median height, and crowns are split at treetops.")
MIN_TREE_HEIGHT = _spec("MIN_TREE_HEIGHT", number("Minimum tree height (m)", Double,
                                                  SEGMENTATION_DEFAULTS.min_tree_height, minValue=0.01),
                        "With canopy heights: a cluster whose median height reaches this is trees.", advanced=True)
TREE_CLUSTERS = _spec("TREE_CLUSTERS", lambda name, tr: QgsProcessingParameterString(
    name, tr("Tree clusters (override)"), optional=True),
    "Cluster numbers that are trees, separated by commas (e.g. 2,5): they replace the rule. Empty: the rule decides "
    "(heights, else NDVI, else excess green and VARI).", advanced=True)
MIN_CROWN_AREA = _spec("MIN_CROWN_AREA", number("Minimum crown area (m²)", Double, SEGMENTATION_DEFAULTS.min_crown_area,
                                                minValue=0.0),
                       "Crowns smaller than this are left out of the crown polygons.", advanced=True)
LABELS = _spec("OUTPUT", lambda name, tr: QgsProcessingParameterRasterDestination(name, tr("Tree segmentation labels")),
               "Byte GeoTIFF on the input's grid: labels 1..K (1 = most fit-sample patches), 0 = NoData; with a colour "
               "table and a .qml style beside it.")
STATS = _spec("STATS", _destination(QgsProcessingParameterFileDestination, "Statistics report",
                                    "JSON (*.json);;CSV (*.csv);;HTML (*.html)"),
              "WCSS per K, chosen K, cluster pixels and areas, model, weights and timings.")
OUTPUT_POLYGONS = _spec("OUTPUT_POLYGONS", _destination(QgsProcessingParameterVectorDestination, "Cluster polygons",
                                                        QgsProcessing.SourceType.TypeVectorPolygon),
                        "One polygon per connected region of a cluster, with fields cluster and area.")
CLUSTER_MODEL_OUTPUT = _spec("CLUSTER_MODEL_OUTPUT", _destination(QgsProcessingParameterFileDestination,
                                                                  "Cluster model (save)", CLUSTER_MODEL_FILTER),
                             "Save the clusters this run fits (.tscm), to apply them to other rasters with the Cluster "
                             "model input.")
TREES = _spec("TREES", _destination(QgsProcessingParameterRasterDestination, "Tree canopy mask"),
              "Byte GeoTIFF on the labels' grid: 1 = tree canopy (the tree clusters), 0 = not trees, 255 = NoData; "
              "with a .qml style.")
CROWNS = _spec("CROWNS", _destination(QgsProcessingParameterVectorDestination, "Tree crowns",
                                      QgsProcessing.SourceType.TypeVectorPolygon),
               "One polygon per tree crown (watershed from the treetops of the canopy height, or of the distance to "
               "the canopy edge), with crown_id, area_m2, height_max, height_mean and cluster.")

# Canopy Height only: CHMv2's files, its resolution and tiling (in model pixels), the height raster.
CHM_WEIGHTS = _spec("WEIGHTS", lambda name, tr: QgsProcessingParameterFile(
    name, tr("Weights file"), fileFilter="CHMv2 weights (*.pth *.safetensors)", optional=True),
    "Meta's decoder ({decoder}) or a Hugging Face CHMv2 model.safetensors. Empty: the weights folder, then {repo}.")
BACKBONE = _spec("BACKBONE", lambda name, tr: QgsProcessingParameterFile(
    name, tr("Backbone weights (with Meta's decoder)"), fileFilter=DINOV3_WEIGHTS_FILTER, optional=True),
    "The DINOv3 ViT-L/16 SAT-493M backbone for Meta's decoder. Empty: the weights folder, then the Hugging Face "
    "cache.")
RESOLUTION = _spec("RESOLUTION", resolution_widget(number("Model resolution (m per pixel, 0 = input's)", Double,
                                                          CANOPY_DEFAULTS.resolution, minValue=0.0,
                                                          maxValue=MAX_RESOLUTION_M)),
                   "The input is resampled to this resolution for the model (CHMv2 was trained at {gsd} "
                   "m) and the heights back onto the input's grid. 0: no resampling.")
CHM_PRECISION = PRECISION.with_help("auto: bf16 on CUDA GPUs from Ampere on (fp16 on older ones) and on CPUs with "
                                    "native bf16, else fp32. fp16 needs CUDA.")
CHM_TILE_SIZE = _spec("TILE_SIZE", number("Tile size (model px)", Integer, CANOPY_DEFAULTS.tile_size, minValue=32,
                                          maxValue=4096),
                      "Side of the tiles fed to the model, in model pixels; a multiple of 16.", advanced=True)
CHM_OVERLAP = _spec("OVERLAP", number("Tile overlap (model px)", Integer, CANOPY_DEFAULTS.overlap, minValue=0,
                                      maxValue=2048),
                    "Neighbouring tiles overlap by this much and are cross-faded there, so there are no seams.",
                    advanced=True)
CHM_BATCH_SIZE = _spec("BATCH_SIZE", number("Batch size", Integer, CANOPY_DEFAULTS.batch_size, minValue=1,
                                            maxValue=256), "Tiles per forward pass.", advanced=True)
CHM_ALLOW_DOWNLOAD = ALLOW_DOWNLOAD.with_help("Download {repo} from Hugging Face when it is not cached (gated: "
                                              "needs a token with access).")
HEIGHTS = _spec("OUTPUT", lambda name, tr: QgsProcessingParameterRasterDestination(name, tr("Canopy height")),
                "Float32 GeoTIFF of heights in metres on the input's grid, NoData -9999; with a .qml style.")

# Classify from Examples: the examples and their class field, or a classifier to apply; its outputs.
CLASSIFIER_FILTER = f"TreeSeg classifier (*{CLASSIFIER_EXTENSION})"
EXAMPLES = _spec("EXAMPLES", lambda name, tr: QgsProcessingParameterFeatureSource(
    name, tr("Examples (polygons or points)"),
    [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint], optional=True),
    "Features drawn over the orthophoto, each naming its class in the class field: any layer (a scratch layer "
    "too), in any CRS. Polygons: every patch under them; points: the patch under each. Empty when a classifier is "
    "applied.")
CLASS_FIELD = _spec("CLASS_FIELD", lambda name, tr: QgsProcessingParameterField(
    name, tr("Class field"), parentLayerParameterName="EXAMPLES", type=QgsProcessingParameterField.DataType.Any,
    optional=True),
    "The text or integer field of the examples that names each feature's class (every feature needs a value).")
TREE_CLASSES = _spec("TREE_CLASSES", lambda name, tr: QgsProcessingParameterString(
    name, tr("Tree classes"), optional=True),
    "Class names that are trees, separated by commas (e.g. conifer,broadleaf): the tree mask and crowns are made "
    "of them.")
CLASSIFIER = _spec("CLASSIFIER", lambda name, tr: QgsProcessingParameterFile(
    name, tr("Classifier (apply)"), fileFilter=CLASSIFIER_FILTER, optional=True),
    "A {classifier_extension} file saved by an earlier run: classify with it instead of fitting (no examples). It "
    "must come from the same weights, patch stride and bands.")
CROSS_VALIDATION = _spec("CROSS_VALIDATION", lambda name, tr: QgsProcessingParameterBoolean(
    name, tr("Cross-validate by example"), defaultValue=True),
    "Estimate the accuracy by leaving out whole example features (never single pixels, whose neighbours would "
    "inflate it): needs at least two features per class.")
REGULARISATION = _spec("REGULARISATION", number("Regularisation (L2)", Double, DEFAULT_REGULARISATION,
                                                minValue=1e-9, maxValue=1e6),
                       "The L2 penalty on the classifier's weights; larger gives smoother, less confident classes.",
                       advanced=True)
CLASSES = _spec("OUTPUT", lambda name, tr: QgsProcessingParameterRasterDestination(name, tr("Classes")),
                "Byte GeoTIFF on the input's grid: class numbers 1..N in the order of the report, 0 = NoData, with "
                "the class names in a colour table and a .qml style. With one class: the similarity to the "
                "examples, 0-100.")
CONFIDENCE = _spec("CONFIDENCE", _destination(QgsProcessingParameterRasterDestination, "Confidence"),
                   "Byte GeoTIFF on the input's grid: the winning class's probability in percent (0-100).")
CLASS_POLYGONS = _spec("POLYGONS", _destination(QgsProcessingParameterVectorDestination, "Class polygons",
                                                QgsProcessing.SourceType.TypeVectorPolygon),
                       "One polygon per connected region of a class, with fields class_id, class (its name) and area.")
CLASS_TREES = TREES.with_help("Byte GeoTIFF on the classes' grid: 1 = tree canopy (the tree classes), 0 = not "
                              "trees, 255 = NoData; with a .qml style.")
CLASS_CROWNS = CROWNS.with_help("One polygon per tree crown in the tree classes (watershed from the treetops of the "
                                "distance to the canopy edge), with crown_id and area_m2.")
CLASS_STATISTICS = _spec("STATISTICS", _destination(QgsProcessingParameterFileDestination, "Statistics report",
                                                    "JSON (*.json);;CSV (*.csv);;HTML (*.html)"),
                         "The examples per class, the cross-validated accuracy, per-class precision, recall and F1, "
                         "the confusion matrix, class areas, model and timings.")
CLASSIFIER_OUTPUT = _spec("CLASSIFIER_OUTPUT", _destination(QgsProcessingParameterFileDestination,
                                                            "Classifier (save)", CLASSIFIER_FILTER),
                          "Save the fitted classifier ({classifier_extension}), to apply it to other rasters with "
                          "the Classifier input or the batch command.")
