"""A segmentation run's statistics as a typed object (:class:`SegmentationStatistics`), filled once by the run
(engine/runs/summary.py) and read by the stats file's writer (engine/runs/report.py); its JSON form (the stats
file's JSON and the result's ``stats``, in the file's key order) comes from one place, its ``to_json``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..raster.palette import Legend
from ..raster.pixels import Stretch
from ..trees.evidence import ClusterEvidence
from ..trees.rule import TreeDecision
from .skeleton import milliseconds


def _finite(value: Optional[float]) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class ChoiceOfK:
    """How K was chosen ("automatic", "fixed" or "model"), within which range, and the WCSS sweep by K."""

    chosen_k: int
    k_mode: str
    k_min: int
    k_max: int
    elbow_threshold: float
    wcss: Mapping[int, float]
    wcss_drop_percent: Mapping[int, float]  # the drop from K to K+1; -inf or NaN where WCSS rose

    def finite_drop(self, k: int) -> Optional[float]:
        """The drop from ``k`` to ``k + 1`` in percent; None where there is no finite drop."""
        return _finite(self.wcss_drop_percent.get(k))


@dataclass(frozen=True)
class ClusterCounts:
    """Pixels per label (index 0: NoData) and their areas: planar map units per pixel, ellipsoidal hectares per
    label (None where unknown), and the note that says how areas were measured."""

    pixels: Tuple[int, ...]
    map_units_per_pixel: float
    hectares: Optional[Tuple[float, ...]]
    area_note: str

    @property
    def valid(self) -> int:
        """Pixels with a cluster label."""
        return sum(self.pixels[1:])

    def percent(self, label: int) -> float:
        """Share of the valid pixels with ``label``, in percent (0 when no pixel is valid)."""
        return 100.0 * self.pixels[label] / self.valid if self.valid else 0.0

    def area(self, label: int) -> Dict[str, Optional[float]]:
        """The area of ``label``: ``{"map_units": ..., "hectares": ...}``."""
        return {"map_units": float(self.pixels[label] * self.map_units_per_pixel),
                "hectares": None if self.hectares is None else float(self.hectares[label])}


@dataclass(frozen=True)
class InputStatistics:
    """The input read: its path, the bands used as RGB, the working window, its CRS and each band's stretch."""

    path: str
    bands: Tuple[int, ...]
    window: Tuple[int, int, int, int]  # x0, y0, width, height
    crs: Optional[str]
    stretch: Mapping[int, Stretch]

    def to_json(self) -> Dict[str, Any]:
        x0, y0, width, height = self.window
        return {"path": self.path, "bands": list(self.bands),
                "window": {"x0": x0, "y0": y0, "width": width, "height": height}, "crs": self.crs,
                "stretch": {str(b): {"low": s.low, "high": s.high} for b, s in self.stretch.items()}}


@dataclass(frozen=True)
class ModelStatistics:
    """The backbone: the model setting, its architecture and the weights it loaded."""

    source: str
    variant: str
    embed_dim: int
    weights_path: Optional[str]
    weights_format: str
    weights_sha256: Optional[str]
    tensors_loaded: int
    tensors_total: int


@dataclass(frozen=True)
class Encoding:
    """How the tiles were encoded: device, precision, stride, tiling and batch size; at a working resolution
    (metres, 0: the raster's own pixels), the (width, height) of the grid encoded."""

    device: str
    precision: str
    stride: int
    tile_size: int
    overlap: int
    batch_size: int
    working_resolution: float = 0.0
    encoded_size: Tuple[int, int] = (0, 0)

    def working_json(self) -> Dict[str, Any]:
        """The stats file's working-resolution keys: none at the raster's own pixels (files as before)."""
        if not self.working_resolution:
            return {}
        return {"working_resolution_m": self.working_resolution,
                "encoded_pixels": {"width": self.encoded_size[0], "height": self.encoded_size[1]}}


@dataclass(frozen=True)
class TileCounts:
    """The tile plan: tiles (and those skipped for having no valid pixel), tile size and patch grid."""

    total: int
    skipped: int
    tile_width: int
    tile_height: int
    grid_cols: int
    grid_rows: int


@dataclass(frozen=True)
class Sampling:
    """The patches the fit saw: valid ones, those sampled, the seed and the sample's cap."""

    valid: int
    sampled: int
    seed: int
    max_samples: int


@dataclass(frozen=True)
class ClusterModelFiles:
    """The cluster model applied (absolute path, its checksum) and the one saved; None where not."""

    applied: Optional[str]
    saved: Optional[str]
    applied_sha256: Optional[str]


@dataclass(frozen=True)
class Timings:
    """Wall and process CPU seconds by stage group, and of the whole run ("total")."""

    wall: Mapping[str, float]
    cpu: Mapping[str, float]


@dataclass(frozen=True)
class Versions:
    """The versions that made the run."""

    treeseg: str
    torch: str
    numpy: str
    gdal: str
    python: str


@dataclass(frozen=True)
class TreeStatistics:
    """The tree rule's inputs and decision per cluster, and the counts of the tree outputs written (None: not
    asked for)."""

    min_tree_height_m: float
    nir_band: Optional[int]
    canopy_height: Optional[str]
    clusters: Tuple[ClusterEvidence, ...]
    decisions: Tuple[TreeDecision, ...]
    canopy_pixels: Optional[int] = None
    crowns: Optional[int] = None

    @property
    def tree_labels(self) -> Tuple[int, ...]:
        return tuple(d.label for d in self.decisions if d.is_tree)

    def cluster_json(self) -> Dict[str, Dict[str, Any]]:
        """Each cluster's evidence and decision, keyed by label."""
        return {str(c.label): {**c.to_json(), "is_tree": d.is_tree, "basis": d.basis, "reason": d.reason}
                for c, d in zip(self.clusters, self.decisions)}

    def to_json(self) -> Dict[str, Any]:
        data = {"tree_labels": list(self.tree_labels), "min_tree_height_m": self.min_tree_height_m,
                "nir_band": self.nir_band, "canopy_height": self.canopy_height, "clusters": self.cluster_json()}
        for name in ("canopy_pixels", "crowns"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data


@dataclass(frozen=True)
class SegmentationStatistics:
    """Everything the stats file says about a segmentation run."""

    k: ChoiceOfK
    counts: ClusterCounts
    input: InputStatistics
    output: str
    model: ModelStatistics
    encoding: Encoding
    tiles: TileCounts
    sampling: Sampling
    cluster_model: ClusterModelFiles
    timings: Timings
    versions: Versions
    trees: TreeStatistics
    legend: Legend  # as the label raster has it

    @property
    def labels(self) -> Sequence[int]:
        """The cluster labels, 1..K."""
        return range(1, self.k.chosen_k + 1)

    def to_json(self) -> Dict[str, Any]:
        """The stats file's JSON, keys in the file's order."""
        k, counts, encoding = self.k, self.counts, self.encoding
        return {
            "chosen_k": k.chosen_k, "k_mode": k.k_mode, "k_min": k.k_min, "k_max": k.k_max,
            "elbow_threshold": k.elbow_threshold, "wcss": {str(key): v for key, v in k.wcss.items()},
            "wcss_drop_percent": {str(key): k.finite_drop(key) for key in k.wcss_drop_percent},
            "cluster_pixels": {str(label): counts.pixels[label] for label in self.labels},
            "cluster_percent": {str(label): counts.percent(label) for label in self.labels},
            "cluster_area": {str(label): counts.area(label) for label in self.labels},
            "area_note": counts.area_note, "valid_pixels": counts.valid, "nodata_pixels": counts.pixels[0],
            "input": self.input.to_json(), "output": self.output, "model": asdict(self.model),
            "device": encoding.device, "precision": encoding.precision, "stride": encoding.stride,
            "tile_size": encoding.tile_size, "overlap": encoding.overlap, "batch_size": encoding.batch_size,
            **encoding.working_json(), "tiles": asdict(self.tiles),
            "patches": {"valid": self.sampling.valid, "sampled": self.sampling.sampled},
            "seed": self.sampling.seed, "max_samples": self.sampling.max_samples,
            "cluster_model": asdict(self.cluster_model),
            "timings_s": milliseconds(self.timings.wall), "cpu_s": milliseconds(self.timings.cpu),
            "versions": asdict(self.versions), "trees": self.trees.to_json(),
            "legend": {"colors": list(self.legend.colors), "names": list(self.legend.names)},
        }
