"""What a segmentation run produced (:class:`SegmentationResult`); what it shares with Fit Cluster Model's
result (:class:`SweepResult`), with the JSON form both cross the worker pipe in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, TypeVar

R = TypeVar("R", bound="SweepResult")


@dataclass
class SweepResult:
    """What a run that fits k-means reports first: the file written, the chosen K and the WCSS sweep;
    with its JSON form for the worker pipe."""

    output_path: str
    chosen_k: int
    wcss: Dict[int, float]
    wcss_drop: Dict[int, float]

    int_keyed: ClassVar[Tuple[str, ...]] = ("wcss", "wcss_drop")
    """The fields that are dicts keyed by cluster number or K."""

    def to_json(self) -> Dict[str, Any]:
        """A strict-JSON dict: the :attr:`int_keyed` dicts keyed by strings (JSON object keys are strings),
        a -inf WCSS drop (an increase) as None; :meth:`from_json` restores both."""
        data = dataclasses.asdict(self)
        for name in self.int_keyed:
            data[name] = {str(key): value for key, value in data[name].items()}
        data["wcss_drop"] = {k: (None if v == float("-inf") else v) for k, v in data["wcss_drop"].items()}
        return data

    @classmethod
    def from_json(cls: Type[R], data: Dict[str, Any]) -> R:
        data = dict(data)
        for name in cls.int_keyed:
            data[name] = {int(key): value for key, value in data[name].items()}
        data["wcss_drop"] = {k: (float("-inf") if v is None else v) for k, v in data["wcss_drop"].items()}
        return cls(**data)


@dataclass
class SegmentationResult(SweepResult):
    """What a run produced (paths are the final destinations)."""

    cluster_pixels: Dict[int, int]
    cluster_area: Dict[int, Dict[str, Optional[float]]]
    stats: Dict[str, Any]
    polygons_path: Optional[str] = None
    stats_path: Optional[str] = None
    style_path: Optional[str] = None
    cluster_model_path: Optional[str] = None  # the model this run saved (cluster_model_output)
    tree_clusters: List[int] = dataclasses.field(default_factory=list)
    trees_path: Optional[str] = None
    crowns_path: Optional[str] = None

    int_keyed: ClassVar[Tuple[str, ...]] = ("wcss", "wcss_drop", "cluster_pixels", "cluster_area")


@dataclass
class ClassifyResult:
    """What a Classify from Examples run produced (paths are the final destinations).

    ``accuracy`` (None when applying a classifier, with one class, or without cross-validation): the
    cross-validation grouped by example polygon (engine/classify/validation.py): ``{"scheme", "folds",
    "overall_accuracy", "per_class": [{"class", "precision", "recall", "f1", "polygons", "patches"}],
    "confusion": [[...]]}`` (rows: the examples' class, columns: the predicted class, in ``class_names``'
    order)."""

    output_path: str
    mode: str  # "classes", or "similarity" (one class: cosine similarity to its examples, 0-100)
    class_names: List[str]
    class_colours: List[str]  # "#rrggbb", in class_names' order (class id = index + 1)
    class_pixels: Dict[str, int]  # output pixels per class name
    polygons_per_class: Dict[str, int]  # example polygons (or points) per class name; {} when applying
    accuracy: Optional[Dict[str, Any]]
    warnings: List[str]
    timings_s: Dict[str, float]  # wall seconds per stage (engine/runs/classify.py: STAGES) and "total"
    cpu_s: Dict[str, float]  # process CPU seconds, likewise
    confidence_path: Optional[str] = None
    polygons_path: Optional[str] = None
    stats_path: Optional[str] = None
    style_path: Optional[str] = None
    classifier_path: Optional[str] = None  # the classifier this run saved (classifier_output)
    trees_path: Optional[str] = None
    crowns_path: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> ClassifyResult:
        return cls(**data)
