"""The fixed cluster palette and category names shared by the colour table, the .qml and the report.

Colours 1-8 are Okabe & Ito's colour-blind-safe set (black replaced by grey), 9-17 Paul Tol's
"muted" and 18-26 his "light" scheme; beyond 26 clusters golden-angle hues are used (distinct but
not checked for colour blindness). Label 0 (NoData) is transparent. Names are stable:
"NoData", "Cluster 1", "Cluster 2", ...

Once the tree rule has decided (``trees``: the tree labels), tree clusters are drawn in greens and the
others in neutral sand, brown and grey tones, each in label order (beyond the fixed lists, generated tones of
the same families), and named "Cluster 3: trees" / "Cluster 1: not trees".
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Collection, List, Optional, Tuple

RGB = Tuple[int, int, int]

_FIXED = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999",
    "#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
    "#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33", "#AAAA00", "#DDDDDD",
)
NODATA_NAME = "NoData"
_TREE_GREENS = ("#1B7837", "#7FBC41", "#00441B", "#A6DBA0", "#4D9221", "#5AAE61", "#276419", "#B8E186")
_NEUTRALS = ("#D8C8A8", "#8C7B6B", "#BDBDBD", "#A6845A", "#6E6E6E", "#E8E0D0", "#5C4A3A", "#9E9E8E")


def _hex_to_rgb(value: str) -> RGB:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _family_color(rank: int, fixed: Tuple[str, ...], hue: float, saturation: float) -> RGB:
    if rank < len(fixed):
        return _hex_to_rgb(fixed[rank])
    value = 0.35 + 0.5 * ((rank * 0.618033988749895) % 1.0)
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def cluster_color(label: int, trees: Optional[Collection[int]] = None) -> RGB:
    """RGB of cluster ``label`` (1-based); with ``trees``, greens for tree clusters and neutrals for the rest."""
    if trees is not None:
        tree_rank = sum(1 for t in trees if t < label)
        if label in trees:
            return _family_color(tree_rank, _TREE_GREENS, 0.33, 0.7)
        return _family_color(label - 1 - tree_rank, _NEUTRALS, 0.1, 0.2)
    if label <= len(_FIXED):
        return _hex_to_rgb(_FIXED[label - 1])
    hue = ((label - len(_FIXED)) * 0.618033988749895) % 1.0
    value = 0.85 if label % 2 else 0.6
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, value)
    return round(r * 255), round(g * 255), round(b * 255)


def cluster_hex(label: int, trees: Optional[Collection[int]] = None) -> str:
    """``#rrggbb`` of cluster ``label``."""
    return "#{:02x}{:02x}{:02x}".format(*cluster_color(label, trees))


def cluster_name(label: int, trees: Optional[Collection[int]] = None) -> str:
    """Category name of ``label`` (0 is NoData); with ``trees``, it says whether the cluster is trees."""
    if label == 0:
        return NODATA_NAME
    if trees is None:
        return f"Cluster {label}"
    return f"Cluster {label}: {'trees' if label in trees else 'not trees'}"


def category_names(k: int, trees: Optional[Collection[int]] = None) -> List[str]:
    """Names of labels 0..k."""
    return [cluster_name(i, trees) for i in range(k + 1)]


@dataclass(frozen=True)
class Legend:
    """Colours and names of the labels: the fixed palette, or those a cluster model carries."""

    colors: Tuple[str, ...]  # "#rrggbb" of labels 1..k
    names: Tuple[str, ...]  # names of labels 0..k (0 is NoData)

    @property
    def k(self) -> int:
        return len(self.colors)

    def rgb(self, label: int) -> RGB:
        """RGB of ``label`` (1-based)."""
        return _hex_to_rgb(self.colors[label - 1])


def default_legend(k: int, trees: Optional[Collection[int]] = None) -> Legend:
    """The fixed palette and names for labels 0..k; with ``trees``, tree clusters in greens and named so."""
    return Legend(tuple(cluster_hex(i, trees) for i in range(1, k + 1)), tuple(category_names(k, trees)))
