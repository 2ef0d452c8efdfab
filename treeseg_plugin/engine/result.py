"""What a segmentation run produced (:class:`SegmentationResult`), and the JSON form of a run's result for
the worker pipe (:func:`result_to_json`, :func:`result_from_json`, also used by Fit Cluster Model's result).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

_INT_KEYED = ("wcss", "wcss_drop", "cluster_pixels", "cluster_area")  # dicts keyed by cluster number or K


def result_to_json(result: Any, int_keyed: Sequence[str]) -> Dict[str, Any]:
    """``result`` (a dataclass with a ``wcss_drop``) as a strict-JSON dict: the dicts named ``int_keyed``
    keyed by strings (JSON object keys are strings), a -inf WCSS drop (an increase) as None."""
    data = dataclasses.asdict(result)
    for name in int_keyed:
        data[name] = {str(key): value for key, value in data[name].items()}
    data["wcss_drop"] = {k: (None if v == float("-inf") else v) for k, v in data["wcss_drop"].items()}
    return data


def result_from_json(data: Dict[str, Any], int_keyed: Sequence[str]) -> Dict[str, Any]:
    """The fields of :func:`result_to_json`'s ``data`` with their numbers restored."""
    data = dict(data)
    for name in int_keyed:
        data[name] = {int(key): value for key, value in data[name].items()}
    data["wcss_drop"] = {k: (float("-inf") if v is None else v) for k, v in data["wcss_drop"].items()}
    return data


@dataclass
class SegmentationResult:
    """What a run produced (paths are the final destinations)."""

    output_path: str
    chosen_k: int
    wcss: Dict[int, float]
    wcss_drop: Dict[int, float]
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

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict (:func:`result_to_json`)."""
        return result_to_json(self, _INT_KEYED)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> SegmentationResult:
        return cls(**result_from_json(data, _INT_KEYED))
