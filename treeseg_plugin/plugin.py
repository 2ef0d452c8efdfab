"""Plugin object: registers the Processing provider and, with a GUI, a menu entry that opens Segment Trees."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from qgis.core import QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from ..processing_provider.provider import TreeSegProvider

MENU = "&Tree Segmentation"
ICON_PATH = str(Path(__file__).resolve().parent.parent / "icon.svg")


class TreeSegPlugin:
    """Holds the provider and the GUI actions; safe to construct with ``iface=None``."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: Optional[TreeSegProvider] = None
        self.actions: list[QAction] = []

    def initProcessing(self) -> None:
        """Register the provider (called alone by qgis_process, and by initGui)."""
        if self.provider is None:
            self.provider = TreeSegProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Register the provider and add the menu entry and toolbar icon."""
        self.initProcessing()
        action = QAction(QIcon(ICON_PATH), "Segment Trees…", self.iface.mainWindow())
        action.setObjectName("treeseg_segment_trees")
        action.setToolTip("Segment trees in an orthophoto with DINOv3 features and k-means")
        action.triggered.connect(self.open_segment_trees)
        self.iface.addPluginToRasterMenu(MENU, action)
        self.iface.addRasterToolBarIcon(action)
        self.actions.append(action)

    def unload(self) -> None:
        """Remove menu entries, toolbar icons and the provider."""
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
            self.iface.removeRasterToolBarIcon(action)
            action.deleteLater()
        self.actions.clear()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def open_segment_trees(self) -> None:
        """Open the Segment Trees algorithm dialog."""
        from processing import execAlgorithmDialog

        execAlgorithmDialog(f"{TreeSegProvider.ID}:segmenttrees", {})
