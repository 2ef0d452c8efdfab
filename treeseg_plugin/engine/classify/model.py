"""The classifier: what a fit produced, enough to classify any raster like the one it was fitted on.

A :class:`Classifier` holds the linear scores (engine/classify/linear.py), the class names and colours, the
identity of the backbone that made the features, the input's bands and stretch and the encoding, as a cluster
model does (engine/cluster/model.py: the same checks refuse one from another backbone, stride or band count before
any encoding, and warn about another precision or tiling). engine/classify/classifier_file.py stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, Optional, Tuple

from ..cluster.model import BackboneIdentity, Encoding, InputBands
from ..raster.palette import Legend, cluster_hex
from .linear import Linear

CLASSES = "classes"
SIMILARITY = "similarity"


@dataclass(frozen=True)
class Classifier:
    """A fitted classifier; class ``i + 1`` is ``linear.weights[i]`` and is drawn ``legend.colors[i]``."""

    mode: str  # CLASSES, or SIMILARITY (one class: its cosine similarity)
    linear: Linear
    legend: Legend  # names[0] is "NoData"
    backbone: BackboneIdentity
    input: InputBands
    encoding: Optional[Encoding]
    regularisation: float
    examples: Dict[str, int]  # examples per class name
    accuracy: Optional[float]  # the cross-validated overall accuracy, when it was estimated
    treeseg_version: str
    sha256: Optional[str] = None  # the file's checksum, when read from a file

    what: ClassVar[str] = "classifier"

    @property
    def names(self) -> Tuple[str, ...]:
        """The class names, class 1 first."""
        return self.legend.names[1:]


def class_legend(names: Tuple[str, ...], tree_classes: Tuple[str, ...] = ()) -> Legend:
    """The colours and names of classes ``names`` (1..n): the cluster palette, tree classes in its greens."""
    trees = {i for i, name in enumerate(names, start=1) if name in tree_classes} if tree_classes else None
    return Legend(tuple(cluster_hex(i, trees) for i in range(1, len(names) + 1)), ("NoData", *names))
