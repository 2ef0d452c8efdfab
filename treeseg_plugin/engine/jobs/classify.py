"""Classify from Examples' settings (:class:`ClassifyConfig`) and their up-front check.

The analyst's example polygons (or points) name classes; a linear classifier fitted on the patch features under
them classifies every patch (engine/classify/, engine/runs/classify.py, docs/classify.md). Torch-free: QGIS builds
and checks the job. Decisions:

* Fit (``examples_path`` + ``class_field``) or apply (``classifier``, a ``.tscc`` file), never both: applying
  fits nothing, so there is no classifier to save and no accuracy to estimate.
* The reading, encoding and working-resolution settings are Segment Trees' (:class:`FitSettings`), checked by
  the same rules; K and the elbow are not used.
* ``regularisation`` is the L2 penalty λ on the weights in the mean (class-balanced) cross-entropy
  ``loss + λ/2·‖W‖²``, features L2-normalised: 1e-2 by default, larger is smoother.
* At most :data:`MAX_CLASSES` (255) classes: the class raster is Byte, 0 is NoData.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..errors import EngineError
from .segmentation import (
    DEFAULT_MIN_CROWN_AREA,
    POLYGON_DRIVERS,
    RASTER_EXTENSIONS,
    STATS_EXTENSIONS,
    FitSettings,
    SegmentationConfig,
    check_extensions,
    check_raster_paths,
    fit_settings,
    validate_settings,
)

CLASSIFIER_EXTENSION = ".tscc"
"""A classifier file: the .tscm container (engine/cluster/container.py) of kind "classifier"."""
MAX_CLASSES = 255
DEFAULT_REGULARISATION = 1e-2


@dataclass
class ClassifyConfig(FitSettings):
    """Everything one Classify from Examples run needs; see the module docstring for the rules."""

    input_path: str
    output_path: str  # the class raster (one class: the similarity raster, 0-100)
    extent: Optional[Tuple[float, float, float, float]] = None
    examples_path: Optional[str] = None  # a vector file OGR opens: polygons or points, any CRS
    examples_layer: Optional[str] = None  # its layer (None: the first)
    class_field: Optional[str] = None  # text or integer field naming each example's class
    classifier: Optional[str] = None  # apply this .tscc instead of fitting
    classifier_output: Optional[str] = None  # save the fitted classifier (.tscc)
    confidence_path: Optional[str] = None  # the winning class's probability, 0-100 Byte GeoTIFF
    polygons_path: Optional[str] = None  # class polygons, fields "class" (name) and "class_id"
    stats_path: Optional[str] = None  # .json/.csv/.html: the accuracy report
    tree_classes: Optional[Sequence[str]] = None  # class names that are trees: TREES and CROWNS
    trees_path: Optional[str] = None
    crowns_path: Optional[str] = None
    min_crown_area: float = DEFAULT_MIN_CROWN_AREA
    cross_validation: bool = True  # grouped by example polygon, never by pixel
    regularisation: float = DEFAULT_REGULARISATION  # L2 penalty λ (module docstring)

    def output_paths(self) -> List[str]:
        """The files this run writes (those asked for), the class raster first."""
        return [p for p in (self.output_path, self.confidence_path, self.stats_path, self.polygons_path,
                            self.trees_path, self.crowns_path, self.classifier_output) if p]

    def segmentation_settings(self) -> SegmentationConfig:
        """The Segment Trees settings that read and encode the input as this run does."""
        return SegmentationConfig(self.input_path, self.output_path, extent=self.extent,
                                  min_crown_area=self.min_crown_area, **fit_settings(self))


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise EngineError(message)


def validate_classify_config(config: ClassifyConfig) -> None:
    """Raise :class:`EngineError` naming the first invalid setting or path and how to fix it."""
    check_raster_paths(config.input_path, config.output_path, "class raster")
    validate_settings(config.segmentation_settings())
    _validate_source(config)
    check_extensions((
        (config.confidence_path, RASTER_EXTENSIONS, "The confidence raster '{}' must end in .tif or .tiff."),
        (config.stats_path, STATS_EXTENSIONS, "Statistics file '{}' must end in .json, .csv or .html."),
        (config.polygons_path, POLYGON_DRIVERS, "Polygon file '{}' must end in .gpkg, .shp or .geojson."),
        (config.trees_path, RASTER_EXTENSIONS, "The tree canopy mask '{}' must be a GeoTIFF ending in .tif or .tiff."),
        (config.crowns_path, POLYGON_DRIVERS, "Crown file '{}' must end in .gpkg, .shp or .geojson."),
        (config.classifier_output, (CLASSIFIER_EXTENSION,),
         "Classifier output '{}' must end in " + CLASSIFIER_EXTENSION + ". Change the file name.")))
    _validate_trees(config)
    outputs = config.output_paths()
    _require(len({os.path.abspath(p) for p in outputs}) == len(outputs),
             "The class raster, confidence, statistics, polygon, tree mask, crown and classifier files must be "
             "different files.")
    inputs = {os.path.abspath(p) for p in (config.input_path, config.examples_path, config.classifier) if p}
    _require(not inputs & {os.path.abspath(p) for p in outputs},
             "An output file is one of the inputs (raster, examples or classifier). Choose another output file name.")


def _validate_source(config: ClassifyConfig) -> None:
    """Examples to fit on, or a classifier to apply: one of them, with what each needs."""
    if config.classifier:
        _require(os.path.splitext(config.classifier)[1].lower() == CLASSIFIER_EXTENSION,
                 f"Classifier '{config.classifier}' must end in {CLASSIFIER_EXTENSION}. Choose a classifier file "
                 "saved by Classify from Examples.")
        _require(not config.examples_path,
                 "Both examples and a classifier are given. Give examples to fit a new classifier, or a classifier "
                 "to apply, not both.")
        _require(not config.classifier_output,
                 "A classifier is applied and a classifier output asked for, but applying fits nothing to save. "
                 "Leave the classifier output empty.")
        return
    _require(bool(config.examples_path),
             "No examples given. Choose a polygon or point layer whose features name a class, or a classifier "
             f"({CLASSIFIER_EXTENSION}) to apply.")
    _require(bool(config.class_field),
             "No class field given. Choose the field of the examples that names each feature's class.")
    _require(isinstance(config.cross_validation, bool), "Cross-validation must be true or false.")
    reg = config.regularisation
    _require(not isinstance(reg, bool) and isinstance(reg, (int, float)) and math.isfinite(reg) and reg > 0,
             f"Regularisation is {reg!r}; it must be a positive number (the default is {DEFAULT_REGULARISATION}).")


def _validate_trees(config: ClassifyConfig) -> None:
    """The classes named as trees, and the tree outputs that need them."""
    names = None if config.tree_classes is None else list(config.tree_classes)
    _require(names is None or all(isinstance(n, str) and n.strip() for n in names),
             f"Tree classes {names}: give class names as text (as in the class field), none empty.")
    _require(bool(names) or not (config.trees_path or config.crowns_path),
             "A tree mask or crowns are asked for, but no class is named as trees. Give the tree classes (class "
             "names, comma separated) or leave the tree outputs empty.")
    area = config.min_crown_area
    _require(isinstance(area, (int, float)) and math.isfinite(area) and area >= 0,
             f"Minimum crown area is {config.min_crown_area}; it must be 0 or more square metres.")
