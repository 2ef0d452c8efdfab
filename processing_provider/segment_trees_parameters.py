"""Segment Trees' parameters: their names, definitions, defaults and help, grouped by concern in dialog order.

Fit Cluster Model clones some of them (processing_provider/fit_cluster_model.py), so both algorithms share
one definition of each.
"""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..treeseg_plugin.dinov3.variants import VARIANTS
from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.segmentation import MAX_CLUSTERS, STRIDES, SegmentationConfig
from .worker_algorithm import WorkerAlgorithm

MODELS = list(VARIANTS.values())  # enum order: ViT-S/16 (LVD-1689M) first, the default
ENGINE_DEFAULTS = SegmentationConfig(input_path="", output_path="")
CLUSTER_MODEL_FILTER = "TreeSeg cluster model (*.tscm)"

Integer = QgsProcessingParameterNumber.Type.Integer
Double = QgsProcessingParameterNumber.Type.Double


class SegmentTreesParameters(WorkerAlgorithm):
    """The parameters and the output of treeseg:segmenttrees (the algorithm itself: segment_trees.py)."""

    MODEL = "MODEL"
    WEIGHTS = "WEIGHTS"
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

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SegmentTreesAlgorithm", text)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self._add_input_parameters()
        self._add_model_parameters()
        self._add_k_parameters()
        self._add_tiling_parameters()
        self._add_source_parameters()
        self._add_tree_parameters()
        self._add_output_parameters()

    def _add_input_parameters(self) -> None:
        """The orthophoto, its bands and the part of it to process."""
        self._add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Orthophoto")),
                  "The orthophoto to segment (any GDAL raster: GeoTIFF, VRT, JPEG2000...).")
        self._add_bands_and_extent("Three bands in red, green, blue order. Empty: the first three bands, or the "
                                   "single band repeated for a one-band raster.")

    def _add_model_parameters(self) -> None:
        """The backbone and where and how it runs."""
        self._add(QgsProcessingParameterEnum(self.MODEL, self.tr("DINOv3 model"),
                                             [variant.display_name for variant in MODELS], defaultValue=0),
                  "Released DINOv3 backbone, found in the Hugging Face cache (or downloaded when allowed). "
                  "Ignored when a weights file is given.")
        self._add(QgsProcessingParameterFile(self.WEIGHTS, self.tr("Weights file"),
                                             fileFilter="DINOv3 weights (*.pth *.safetensors)", optional=True),
                  "A local DINOv3 checkpoint: Meta .pth or Hugging Face .safetensors. When given, it decides "
                  "the model.")
        self._add_device_parameters("auto: bf16 on CUDA GPUs from Ampere on (fp16 on older ones) and on CPUs "
                                    "with native bf16 (AMX or AVX512-BF16), else fp32. fp16 needs CUDA.")
        self._add(QgsProcessingParameterEnum(self.STRIDE, self.tr("Patch stride (px)"),
                                             [str(stride) for stride in STRIDES], defaultValue=0),
                  "16: one feature per 16x16 patch. 8 or 4: overlapping patches, denser features, "
                  "4x or 16x the encoding cost.")

    def _add_k_parameters(self) -> None:
        """The number of clusters, or the range and elbow threshold of its automatic choice, and the seed."""
        self._add(QgsProcessingParameterNumber(self.K, self.tr("Number of clusters (0 = automatic)"), Integer,
                                               ENGINE_DEFAULTS.k, minValue=0, maxValue=MAX_CLUSTERS),
                  "0 picks K at the elbow of the WCSS curve between the minimum and maximum K.")
        self._add(QgsProcessingParameterNumber(self.K_MIN, self.tr("Minimum K"), Integer, ENGINE_DEFAULTS.k_min,
                                               minValue=2, maxValue=MAX_CLUSTERS),
                  "Smallest K tried by the automatic choice.")
        self._add(QgsProcessingParameterNumber(self.K_MAX, self.tr("Maximum K"), Integer, ENGINE_DEFAULTS.k_max,
                                               minValue=2, maxValue=MAX_CLUSTERS),
                  "Largest K tried by the automatic choice.")
        self._add(QgsProcessingParameterNumber(self.ELBOW_THRESHOLD, self.tr("Elbow threshold (%)"), Double,
                                               ENGINE_DEFAULTS.elbow_threshold, minValue=0.01, maxValue=100.0),
                  "The chosen K is the smallest K whose step to K+1 lowers WCSS by less than this percentage.")
        self._add(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"), Integer, ENGINE_DEFAULTS.seed,
                                               minValue=0),
                  "Seeds the fit sample and k-means: the same input, weights and seed give the same output.")

    def _add_tiling_parameters(self) -> None:
        """How the raster is cut into tiles for the model and how many patches fit k-means."""
        self._add(QgsProcessingParameterNumber(self.TILE_SIZE, self.tr("Tile size (px)"), Integer,
                                               ENGINE_DEFAULTS.tile_size, minValue=32, maxValue=4096),
                  "Side of the square tiles fed to the model; a multiple of 16.", advanced=True)
        self._add(QgsProcessingParameterNumber(self.OVERLAP, self.tr("Tile overlap (px)"), Integer,
                                               ENGINE_DEFAULTS.overlap, minValue=0, maxValue=2048),
                  "Margin shared by neighbouring tiles and discarded, so there are no seams; a multiple of 16 "
                  "and less than half the tile size.", advanced=True)
        self._add(QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"), Integer,
                                               ENGINE_DEFAULTS.batch_size, minValue=1, maxValue=256),
                  "Tiles per forward pass; halved automatically when the GPU runs out of memory.",
                  advanced=True)
        self._add(QgsProcessingParameterNumber(self.MAX_SAMPLES, self.tr("Maximum k-means samples"), Integer,
                                               ENGINE_DEFAULTS.max_samples, minValue=100),
                  "At most this many valid patch features, sampled over the whole raster, fit k-means.",
                  advanced=True)

    def _add_source_parameters(self) -> None:
        """What the run may take from elsewhere: weights from Hugging Face, clusters from a .tscm file."""
        self._add_allow_download("Download the chosen model from Hugging Face when it is not in the local cache "
                                 "(needs a token with access to the gated repository: the authentication "
                                 "configuration chosen in TreeSeg's Settings, or HF_TOKEN).")
        self._add(QgsProcessingParameterFile(self.CLUSTER_MODEL, self.tr("Cluster model (apply)"),
                                             fileFilter=CLUSTER_MODEL_FILTER, optional=True),
                  "A .tscm file from Fit Cluster Model or a Segment Trees run: label with its clusters, band "
                  "stretch and colours (no fit; the K settings are not used), so every raster shares labels. "
                  "It must come from the same weights, patch stride and bands.")

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

    def _add_output_parameters(self) -> None:
        """The label raster and the optional outputs, then the chosen K."""
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


def parse_tree_clusters(text: str) -> list[int] | None:
    """TREE_CLUSTERS ("2, 5") as label numbers; None when empty. Raises EngineError naming the fix."""
    parts = [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]
    if not parts:
        return None
    if not all(part.isdigit() for part in parts):
        raise EngineError(f"Tree clusters '{text}': give cluster numbers separated by commas, e.g. 2,5.")
    return sorted({int(part) for part in parts})
