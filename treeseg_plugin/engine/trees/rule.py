"""Which clusters are trees: one rule over each cluster's evidence (engine/trees/evidence.py).

The first branch that has evidence for a cluster decides it:

1. ``tree_clusters`` given (TREE_CLUSTERS): exactly those labels are trees; the evidence is still logged.
2. Canopy heights given and the cluster has pixels with a height: trees when its **median** height is at
   least ``min_tree_height`` (MIN_TREE_HEIGHT, default 2 m, lidR's default minimum tree height too). The
   median, not the mean: a crown cluster holds its low edges and some gaps, and a few tall pixels (a
   neighbouring crown, a pole) should not make a lawn a tree.
3. A near-infrared band given: trees when the cluster's mean NDVI is at least :data:`NDVI_TREE_MIN`
   (0.4). USGS describe bare rock, sand and soil at about 0.1 or less, sparse vegetation (shrubs,
   grassland) at about 0.2-0.5 and dense forest canopy at about 0.6-0.9; a cluster's mean mixes crown
   centres, edges and shade, so the threshold sits under the dense-canopy range and above soil and most
   sparse vegetation. Camera NIR without radiometric calibration shifts these values: override with
   TREE_CLUSTERS when the log shows otherwise.
4. Otherwise the colour: trees when ExG is at least :data:`EXG_TREE_MIN` (0.05) **and** VARI is at
   least :data:`VARI_TREE_MIN` (0). Grey, black and white have ExG 0, so 0.05 asks for a clear green
   excess; sand, tan soil and dry grass reach ExG about 0.05 but have red above green, so VARI < 0
   rejects them. Colour alone cannot tell trees from green lawns or crops: give heights for that.

A cluster without pixels is not trees. Every decision carries the numbers that made it, for the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from ..errors import EngineError
from .evidence import ClusterEvidence

NDVI_TREE_MIN = 0.4
EXG_TREE_MIN = 0.05
VARI_TREE_MIN = 0.0


@dataclass(frozen=True)
class TreeDecision:
    """Whether cluster ``label`` is trees, by which branch ("user", "height", "ndvi", "colour", "empty") and why."""

    label: int
    is_tree: bool
    basis: str
    reason: str


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _by_evidence(cluster: ClusterEvidence, min_tree_height: float) -> TreeDecision:
    label = cluster.label
    if cluster.pixels == 0:
        return TreeDecision(label, False, "empty", "no pixels")
    if cluster.height_median is not None:
        tree = cluster.height_median >= min_tree_height
        sign = ">=" if tree else "<"
        return TreeDecision(label, tree, "height",
                            f"median height {cluster.height_median:.2f} m {sign} {min_tree_height:g} m "
                            f"(mean {cluster.height_mean:.2f} m, 90th percentile {cluster.height_p90:.2f} m)")
    if cluster.ndvi is not None:
        tree = cluster.ndvi >= NDVI_TREE_MIN
        return TreeDecision(label, tree, "ndvi",
                            f"NDVI {cluster.ndvi:.3f} {'>=' if tree else '<'} {NDVI_TREE_MIN:g}")
    exg_ok = cluster.exg is not None and cluster.exg >= EXG_TREE_MIN
    vari_ok = cluster.vari is not None and cluster.vari >= VARI_TREE_MIN
    reason = (f"ExG {_number(cluster.exg)} {'>=' if exg_ok else '<'} {EXG_TREE_MIN:g} and VARI "
              f"{_number(cluster.vari)} {'>=' if vari_ok else '<'} {VARI_TREE_MIN:g}")
    return TreeDecision(label, exg_ok and vari_ok, "colour", reason)


def decide_trees(clusters: Sequence[ClusterEvidence], min_tree_height: float,
                 tree_clusters: Optional[Sequence[int]] = None) -> List[TreeDecision]:
    """The decision for every cluster (in label order)."""
    if tree_clusters is not None:
        k = len(clusters)
        beyond = sorted(label for label in set(tree_clusters) if label > k)
        if beyond:
            raise EngineError(f"Tree clusters {sorted(set(tree_clusters))} name cluster {beyond[0]}, but the run "
                              f"has {k} clusters. Use numbers from 1 to {k}, or fix K (with the same seed) so "
                              "the labels you chose exist.")
        chosen = set(tree_clusters)
        return [TreeDecision(c.label, c.label in chosen, "user",
                             "named in TREE_CLUSTERS" if c.label in chosen else "not named in TREE_CLUSTERS")
                for c in clusters]
    return [_by_evidence(cluster, min_tree_height) for cluster in clusters]


def evidence_line(cluster: ClusterEvidence) -> str:
    """The cluster's evidence in one log line."""
    parts = [f"R {_number(cluster.mean_r)}, G {_number(cluster.mean_g)}, B {_number(cluster.mean_b)}",
             f"ExG {_number(cluster.exg)}", f"VARI {_number(cluster.vari)}"]
    if cluster.ndvi is not None:
        parts.append(f"NDVI {cluster.ndvi:.3f}")
    if cluster.height_median is not None:
        parts.append(f"height mean {cluster.height_mean:.2f} / median {cluster.height_median:.2f} / "
                     f"p90 {cluster.height_p90:.2f} / max {cluster.height_max:.2f} m "
                     f"({cluster.height_pixels} px with a height)")
    return ", ".join(parts)
