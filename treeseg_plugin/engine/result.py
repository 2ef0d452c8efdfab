"""What a segmentation run produced (:class:`SegmentationResult`), and its JSON form for the worker pipe."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional

_INT_KEYED = ("wcss", "wcss_drop", "cluster_pixels", "cluster_area")  # dicts keyed by cluster number or K


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

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict (JSON object keys are strings; :meth:`from_json` restores the numbers)."""
        data = dataclasses.asdict(self)
        for name in _INT_KEYED:
            data[name] = {str(key): value for key, value in data[name].items()}
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> SegmentationResult:
        data = dict(data)
        for name in _INT_KEYED:
            data[name] = {int(key): value for key, value in data[name].items()}
        return cls(**data)
