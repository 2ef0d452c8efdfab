"""The run's settings (:class:`SegmentationConfig`) and their up-front validation.

Validation runs before the model is loaded or the destination is touched, so a bad setting costs
nothing. Decisions:

* ``k_max`` is at most :data:`MAX_CLUSTERS` (64): the palette is colour-blind friendly for the first
  clusters and a 64-entry legend is already more than anyone can read.
* ``overlap`` must be at least 16 when ``stride`` < 16: with no overlap, patches straddling two tiles
  would be computed by neither.
* ``working_resolution`` (ground metres per pixel, 0 = the raster's own) is where features, k-means and the
  tree rule work; the outputs are on the input's grid whatever it is (engine/raster/working_grid.py).
* The output is always a GeoTIFF, so ``output_path`` must end in ``.tif``/``.tiff``.
* With a fixed ``k``, ``k_min``/``k_max`` are not used, so their order is not checked (their ranges are):
  Processing's own check does the same, and a model that only sets K must not fail on them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import EngineError

MAX_CLUSTERS = 64
STRIDES = (16, 8, 4)
PATCH = 16
"""Pixels per DINOv3 patch: tile sizes and overlaps are multiples of it."""
DEVICES = ("auto", "cuda", "mps", "cpu")
"""The device choices offered in QGIS (the engine also takes "cuda:N", see runtime.resolve_device)."""
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RASTER_EXTENSIONS = (".tif", ".tiff")
STATS_EXTENSIONS = (".json", ".csv", ".html", ".htm")
CLUSTER_MODEL_EXTENSION = ".tscm"
"""A cluster model file (engine/cluster/model_file.py, docs/cluster-model.md)."""
POLYGON_DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON"}
DEFAULT_MAX_SAMPLES = 20_000
"""Patch features sampled over the raster to fit k-means: enough for K <= 10 (docs/benchmarks-clustering.md)."""
DEFAULT_MIN_TREE_HEIGHT = 2.0
"""Metres: a cluster whose median canopy height reaches this is trees (lidR's lmf() uses hmin = 2 m too)."""
DEFAULT_MIN_CROWN_AREA = 1.0
"""m² (map units² without a CRS): smaller crowns are left out of CROWNS (a 1.1 m wide crown is 1 m²)."""


@dataclass(kw_only=True)
class FitSettings:
    """How rasters are read, encoded and clustered: the settings Segment Trees and Fit Cluster Model share
    (keyword-only, so each job's own fields keep their positions)."""

    bands: Optional[Sequence[int]] = None
    model: str = "vits16"
    device: str = "auto"
    precision: str = "auto"
    stride: int = 16
    k: int = 0
    k_min: int = 2
    k_max: int = 10
    elbow_threshold: float = 5.0
    seed: int = 0
    tile_size: int = 384
    overlap: int = 32
    batch_size: int = 4
    max_samples: int = DEFAULT_MAX_SAMPLES
    working_resolution: float = 0.0  # ground metres per pixel the raster is encoded at; 0: its own pixels
    allow_download: bool = False
    token: Optional[str] = field(default=None, repr=False)


@dataclass(frozen=True)
class TreeSettings:
    """The tree rule's and the crowns' settings: the section of a :class:`SegmentationConfig` the tree steps
    take (engine/runs/tree_steps.py)."""

    nir_band: Optional[int]
    canopy_height_path: Optional[str]
    min_tree_height: float
    tree_clusters: Optional[Sequence[int]]
    min_crown_area: float


@dataclass
class SegmentationConfig(FitSettings):
    """Everything one segmentation run needs; see the module docstring for the rules."""

    input_path: str
    output_path: str
    extent: Optional[Tuple[float, float, float, float]] = None
    stats_path: Optional[str] = None
    polygons_path: Optional[str] = None
    cluster_model: Optional[str] = None  # apply this model: no fit, its centroids, stretch and colours
    cluster_model_output: Optional[str] = None  # save the model this run fits
    nir_band: Optional[int] = None
    canopy_height_path: Optional[str] = None
    min_tree_height: float = DEFAULT_MIN_TREE_HEIGHT
    tree_clusters: Optional[Sequence[int]] = None
    trees_path: Optional[str] = None
    crowns_path: Optional[str] = None
    min_crown_area: float = DEFAULT_MIN_CROWN_AREA

    @property
    def tree_settings(self) -> TreeSettings:
        """The tree section of these settings (the fit section: this config as its :class:`FitSettings`)."""
        return TreeSettings(self.nir_band, self.canopy_height_path, self.min_tree_height, self.tree_clusters,
                            self.min_crown_area)

    def output_paths(self) -> List[str]:
        """The files this run writes (those asked for), the label raster first."""
        return [p for p in (self.output_path, self.stats_path, self.polygons_path, self.trees_path,
                            self.crowns_path, self.cluster_model_output) if p]


def fit_settings(config: FitSettings) -> Dict[str, Any]:
    """``config``'s :class:`FitSettings` fields by name, to build another job with the same settings."""
    return {f.name: getattr(config, f.name) for f in fields(FitSettings)}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise EngineError(message)


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def validate_config(config: SegmentationConfig) -> None:
    """Raise :class:`EngineError` naming the first invalid setting or path and how to fix it."""
    check_raster_paths(config.input_path, config.output_path, "label raster")
    validate_settings(config)
    check_extensions((
        (config.stats_path, STATS_EXTENSIONS, "Statistics file '{}' must end in .json, .csv or .html."),
        (config.polygons_path, POLYGON_DRIVERS, "Polygon file '{}' must end in .gpkg, .shp or .geojson."),
        (config.trees_path, RASTER_EXTENSIONS, "The tree canopy mask '{}' must be a GeoTIFF ending in .tif or .tiff."),
        (config.crowns_path, POLYGON_DRIVERS, "Crown file '{}' must end in .gpkg, .shp or .geojson.")))
    validate_cluster_model_paths(config.cluster_model, config.cluster_model_output)
    outputs = config.output_paths()
    _require(len({os.path.abspath(p) for p in outputs}) == len(outputs),
             "The output raster, statistics, polygon, tree mask, crown and cluster model files must be different "
             "files.")
    if config.canopy_height_path:
        _require(os.path.abspath(config.canopy_height_path) not in {os.path.abspath(p) for p in outputs},
                 "The canopy height raster is one of the outputs. Choose another output file name.")


def check_raster_paths(input_path: str, output_path: str, output_named: str) -> None:
    """An input raster and an output GeoTIFF (called ``output_named`` in messages) are given, and differ."""
    _require(bool(input_path), "No input raster given. Choose an input raster layer or file.")
    _require(bool(output_path), f"No output path given. Choose where to save the {output_named}.")
    _require(_extension(output_path) in RASTER_EXTENSIONS,
             f"The output must be a GeoTIFF; '{output_path}' does not end in .tif or .tiff. Change the output file "
             "name.")
    check_output_path(output_path, ".tif", [input_path], "the input raster")


def check_extensions(checks: Sequence[Tuple[Optional[str], Any, str]]) -> None:
    """Each ``(path, extensions, message)``: a path given ends in one of ``extensions``, else ``message`` (its
    ``{}`` the path)."""
    for path, extensions, message in checks:
        _require(not path or _extension(path) in extensions, message.format(path))


def check_output_path(path: str, extension: str, inputs: Sequence[str], inputs_named: str) -> None:
    """The output ``path`` is no folder (a file name ending in ``extension`` is asked for) and none of
    ``inputs`` (called ``inputs_named`` in the message)."""
    _require(not os.path.isdir(path), f"The output path '{path}' is a folder. Give a file name ending in {extension}.")
    _require(os.path.abspath(path) not in {os.path.abspath(p) for p in inputs},
             f"The output path is {inputs_named}. Choose another output file name.")


def validate_cluster_model_paths(model: Optional[str], output: Optional[str]) -> None:
    """A cluster model to apply and one to save: ``.tscm`` files, not both (applying fits nothing)."""
    for path, what in ((model, "Cluster model"), (output, "Cluster model output")):
        _require(not path or _extension(path) == CLUSTER_MODEL_EXTENSION,
                 f"{what} '{path}' must end in {CLUSTER_MODEL_EXTENSION}. Change the file name.")
    _require(not (model and output),
             "A cluster model is applied and a cluster model output asked for, but applying a model fits nothing "
             "to save. Leave the cluster model output empty (the applied model is already saved).")


def validate_settings(config: SegmentationConfig) -> None:
    """The checks that need no file: model, K, tiling, sampling, precision, bands and extent.

    Segment Trees' parameter check runs these too, so the dialog and the engine say the same."""
    for name in ("stride", "k", "k_min", "k_max", "seed", "tile_size", "overlap", "batch_size", "max_samples"):
        _require(_is_int(getattr(config, name)), f"Setting '{name}' must be a whole number.")
    _require(config.stride in STRIDES, f"Stride {config.stride} is not supported. Use 16, 8 or 4 pixels.")
    _require(config.k_min >= 2, f"Minimum K is {config.k_min}; it must be at least 2.")
    _require(config.k != 0 or config.k_min <= config.k_max,
             f"Minimum K ({config.k_min}) is larger than maximum K ({config.k_max}): swap them.")
    _require(config.k_max <= MAX_CLUSTERS,
             f"Maximum K is {config.k_max}; at most {MAX_CLUSTERS} clusters are supported. Lower it.")
    _require(config.k == 0 or 2 <= config.k <= MAX_CLUSTERS,
             f"K is {config.k}; use 0 for automatic or a number from 2 to {MAX_CLUSTERS}.")
    _require(isinstance(config.elbow_threshold, (int, float)) and 0 < config.elbow_threshold < 100,
             f"Elbow threshold is {config.elbow_threshold}; it must be a percentage between 0 and 100.")
    _require(config.tile_size >= PATCH and config.tile_size % PATCH == 0,
             f"Tile size {config.tile_size} is not a multiple of {PATCH}: use "
             f"{max(PATCH, config.tile_size // PATCH * PATCH)}.")
    _require(config.overlap >= 0 and config.overlap % PATCH == 0,
             f"Tile overlap {config.overlap} is not a multiple of {PATCH}: use "
             f"{max(0, config.overlap // PATCH * PATCH)}.")
    _require(config.overlap * 2 < config.tile_size,
             f"Tile overlap {config.overlap} must be less than half the tile size ({config.tile_size}): lower "
             "the overlap or raise the tile size.")
    _require(config.stride == PATCH or config.overlap >= PATCH,
             f"With stride {config.stride}, tile overlap must be at least {PATCH} pixels (it is "
             f"{config.overlap}). Raise the overlap to {PATCH} or more, or use stride {PATCH}.")
    _require(config.batch_size >= 1, f"Batch size is {config.batch_size}; it must be at least 1.")
    _require(config.max_samples >= 100, f"Maximum samples is {config.max_samples}; use at least 100.")
    _require(config.precision in PRECISIONS,
             f"Precision '{config.precision}' is unknown. Use one of: {', '.join(PRECISIONS)}.")
    resolution = config.working_resolution
    is_number = not isinstance(resolution, bool) and isinstance(resolution, (int, float))
    _require(is_number and math.isfinite(resolution) and resolution >= 0,
             f"Working resolution is {config.working_resolution!r}; it must be 0 (the raster's own pixels) or a "
             "positive number of metres per pixel, e.g. 0.1.")
    _require(bool(config.model), "No model given. Give a variant name (e.g. vits16) or a weights file.")
    if config.bands is not None:
        bands = list(config.bands)
        _require(len(bands) in (1, 3) and all(_is_int(b) for b in bands),
                 f"Bands {bands}: choose 3 bands (red, green, blue) or 1 band (repeated to RGB), "
                 f"not {len(bands)}.")
        _require(all(b >= 1 for b in bands), f"Bands {bands}: band numbers start at 1.")
    if config.extent is not None:
        ext = list(config.extent)
        _require(len(ext) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in ext),
                 "The extent must be four numbers: xmin, ymin, xmax, ymax.")
        _require(ext[0] < ext[2] and ext[1] < ext[3],
                 f"The extent {tuple(ext)} is empty: xmin must be < xmax and ymin < ymax.")
    validate_tree_settings(config)


def validate_tree_settings(config: SegmentationConfig) -> None:
    """The tree settings: NIR band, minimum tree height, the clusters named as trees, minimum crown area."""
    _require(config.nir_band is None or (_is_int(config.nir_band) and config.nir_band >= 1),
             f"NIR band {config.nir_band}: give the band number (from 1) of the near-infrared band, or none.")
    height = config.min_tree_height
    _require(isinstance(height, (int, float)) and math.isfinite(height) and height > 0,
             f"Minimum tree height is {config.min_tree_height}; it must be a positive number of metres.")
    area = config.min_crown_area
    _require(isinstance(area, (int, float)) and math.isfinite(area) and area >= 0,
             f"Minimum crown area is {config.min_crown_area}; it must be 0 or more square metres.")
    if config.tree_clusters is not None:
        labels = list(config.tree_clusters)
        _require(all(_is_int(label) and 1 <= label <= MAX_CLUSTERS for label in labels),
                 f"Tree clusters {labels}: give cluster numbers from 1 to {MAX_CLUSTERS} (as in the labels).")
        _require(not config.k or all(label <= config.k for label in labels),
                 f"Tree clusters {labels} name a cluster above K = {config.k}: use numbers from 1 to {config.k}.")


def polygon_driver(path: str) -> str:
    """The OGR driver name for a polygon output path."""
    return POLYGON_DRIVERS[_extension(path)]
