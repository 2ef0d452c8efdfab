"""Where one run's result layers go in the project's layer tree: a group named after the input, the layers in
a fixed order inside it (vectors above rasters).

QGIS 3.22's Processing adds each result layer on its own (at the top of the tree, or in the "results group" of
Processing's settings) and then calls its post-processor; the post-processor moves it into the run's group here.
Newer QGIS adds it at the layer tree's insertion point, which may lie inside an earlier run's group: the new group
then goes beside that group, never inside it.
"""

from __future__ import annotations

from typing import Dict, Optional

from qgis.core import QgsLayerTreeGroup, QgsLayerTreeLayer, QgsLayerTreeNode, QgsMapLayer, QgsProject
from qgis.PyQt import sip

RUN_GROUP = "treeseg/run-group"  # custom property of the groups made here


class RunGroup:
    """The layer group of one run, made where its first layer was added; each layer placed by its rank
    (0 = top)."""

    def __init__(self, name: str):
        self.name = name
        self._group: Optional[QgsLayerTreeGroup] = None
        self._ranks: Dict[str, int] = {}

    def place(self, layer: QgsMapLayer, rank: int, project: QgsProject) -> Optional[QgsLayerTreeLayer]:
        """Move ``layer`` into the group, above every layer of a higher rank; its node there, None when it is
        not in the layer tree."""
        node = project.layerTreeRoot().findLayer(layer.id())
        if node is None:
            return None
        parent = node.parent()
        if self._group is None or sip.isdeleted(self._group):
            anchor, place = node, parent
            while place.customProperty(RUN_GROUP) and place.parent() is not None:  # out of an earlier run's group
                anchor, place = place, place.parent()
            self._group = place.insertGroup(_index_in(place, anchor), self.name)
            self._group.setCustomProperty(RUN_GROUP, True)
        self._ranks[layer.id()] = rank
        others = [child.layerId() for child in self._group.children()
                  if isinstance(child, QgsLayerTreeLayer) and child.layerId() != layer.id()]
        above = sum(1 for other in others if self._ranks.get(other, rank + 1) < rank)
        moved = node.clone()
        self._group.insertChildNode(above, moved)
        parent.removeChildNode(node)
        return moved


def _index_in(parent: QgsLayerTreeGroup, node: QgsLayerTreeNode) -> int:
    """The position of ``node`` among ``parent``'s children."""
    address = sip.unwrapinstance(node)
    for index, child in enumerate(parent.children()):
        if sip.unwrapinstance(child) == address:
            return index
    return 0
