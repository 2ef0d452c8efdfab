"""Plugin object: registers the Processing provider and, with a GUI, the TreeSeg menu and the dependency check."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QApplication, QPushButton

from ..processing_provider.dependencies import problem_list
from ..processing_provider.provider import TreeSegProvider
from . import dependency_folder, installer
from . import settings as treeseg_settings
from .i18n import install_translator, tr, uninstall_translators
from .worker import kept as kept_worker


def menu() -> str:
    """The Raster menu's TreeSeg submenu, in the user's language."""
    return tr("&Tree Segmentation")


ICON_PATH = str(Path(__file__).resolve().parent.parent / "icon.svg")


class TreeSegPlugin:
    """Holds the provider and the GUI actions; safe to construct with ``iface=None``.

    Construction only puts the dependency installer's private folder on ``sys.path`` (no GUI, no pip), so
    ``qgis_process`` also finds the packages installed there, and installs the translation of QGIS's locale.
    """

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: Optional[TreeSegProvider] = None
        self.actions: List[QAction] = []
        self.dependency_message = None  # the QgsMessageBarItem offering "Install…"
        self.weights_dialog = None
        self.installer_dialog = None
        self.diagnostics_dialog = None
        self.getting_started_dialog = None
        dependency_folder.add_to_sys_path(self.dependencies_folder())
        install_translator()  # before the provider's labels are made: qgis_process builds the plugin this way too

    @staticmethod
    def dependencies_folder() -> Path:
        return dependency_folder.deps_folder(treeseg_settings.dependencies_base())

    def initProcessing(self) -> None:
        """Register the provider (called alone by qgis_process, and by initGui)."""
        if self.provider is None:
            self.provider = TreeSegProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Register the provider, add the menu entries and toolbar icon, and check the dependencies; on the
        plugin's first start in this profile, show Getting Started (non-modal)."""
        self.initProcessing()
        segment = self.add_action(tr("Segment Trees…"), "treeseg_segment_trees", self.open_segment_trees,
                                  tr("Segment trees in an orthophoto with DINOv3 features and k-means"),
                                  QIcon(ICON_PATH))
        self.iface.addRasterToolBarIcon(segment)
        self.add_action(tr("Weights…"), "treeseg_weights", self.open_weights_manager,
                        tr("DINOv3 weights: status, download, verify, add a file"))
        self.add_action(tr("Settings…"), "treeseg_settings", self.open_settings,
                        tr("Weights folder, Hugging Face token, downloads, default device and precision"))
        self.add_action(tr("Diagnostics…"), "treeseg_diagnostics", self.open_diagnostics,
                        tr("Versions, GPU, CPU, libraries and folders, to copy into a bug report"))
        self.add_action(tr("Getting Started…"), "treeseg_getting_started", self.open_getting_started,
                        tr("What a run needs (Python packages, weights, device), and how to get it"))
        self.check_dependencies()
        if treeseg_settings.first_start():
            self.open_getting_started()

    def add_action(self, text: str, name: str, slot: Callable[[], None], tip: str,
                   icon: Optional[QIcon] = None) -> QAction:
        action = QAction(icon or QIcon(), text, self.iface.mainWindow())
        action.setObjectName(name)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.iface.addPluginToRasterMenu(menu(), action)
        self.actions.append(action)
        return action

    def unload(self) -> None:
        """Remove menu entries, toolbar icons, the message and the provider; end the kept worker; remove the
        translation."""
        for action in self.actions:
            self.iface.removePluginRasterMenu(menu(), action)
            self.iface.removeRasterToolBarIcon(action)
            action.deleteLater()
        self.actions.clear()
        if self.dependency_message is not None:
            with contextlib.suppress(RuntimeError):  # the user may have closed it: Qt deleted it then
                self.iface.messageBar().popWidget(self.dependency_message)
            self.dependency_message = None
        for dialog in (self.weights_dialog, self.installer_dialog, self.diagnostics_dialog,
                       self.getting_started_dialog):
            if dialog is not None:
                dialog.close()
        self.weights_dialog = self.installer_dialog = self.diagnostics_dialog = self.getting_started_dialog = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        kept_worker.release()  # its memory (the loaded model) back to the system
        uninstall_translators()

    def check_dependencies(self) -> None:
        """When a required package is missing or too old, offer "Install…" in the message bar."""
        problems = installer.find_problems()
        if not problems:
            return
        from qgis.gui import QgsMessageBarItem

        button = QPushButton(tr("Install…"), self.iface.mainWindow())  # a parent owns it; the item reparents it
        button.clicked.connect(lambda: self.open_installer())
        self.dependency_message = QgsMessageBarItem(
            "TreeSeg", tr("Python packages needed: {problems}.").format(problems=problem_list(problems)),
            button, Qgis.MessageLevel.Warning, 0)
        self.iface.messageBar().pushItem(self.dependency_message)

    def open_segment_trees(self) -> None:
        """Open the Segment Trees algorithm dialog."""
        from processing import execAlgorithmDialog

        execAlgorithmDialog(f"{TreeSegProvider.ID}:segmenttrees", {})

    def open_settings(self) -> None:
        from .gui.settings_dialog import SettingsDialog

        SettingsDialog(self.iface.mainWindow()).exec()

    def open_weights_manager(self):
        """Show the weights manager (one window; its downloads go on when it is closed) and return it."""
        if self.weights_dialog is None:
            from .gui.weights_dialog import WeightsDialog

            self.weights_dialog = WeightsDialog(self.iface.mainWindow(), open_settings=self.open_settings)
        else:
            self.weights_dialog.refresh()
        self.weights_dialog.show()
        self.weights_dialog.raise_()
        return self.weights_dialog

    def open_getting_started(self) -> None:
        """Show Getting Started (one window, checked again each time it is opened); it never blocks QGIS."""
        if self.getting_started_dialog is None:
            from .gui.getting_started_dialog import GettingStartedDialog

            self.getting_started_dialog = GettingStartedDialog(
                self.iface.mainWindow(), self.open_installer, self.open_weights_manager, self.open_diagnostics)
        else:
            self.getting_started_dialog.refresh()
        self.getting_started_dialog.show()
        self.getting_started_dialog.raise_()

    def open_diagnostics(self) -> None:
        """Show a fresh Diagnostics report (building it imports torch: a wait cursor meanwhile)."""
        from .gui.diagnostics_dialog import DiagnosticsDialog

        if self.diagnostics_dialog is not None:
            self.diagnostics_dialog.close()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.diagnostics_dialog = DiagnosticsDialog(self.iface.mainWindow())
        finally:
            QApplication.restoreOverrideCursor()
        self.diagnostics_dialog.show()

    def open_installer(self, packages: Sequence[str] = ()) -> None:
        """Show the dependency installer for what is missing now, plus ``packages`` (PyTorch's CUDA build where
        the installed torch cannot use the GPU); what the private folder holds is installed again, since the new
        folder replaces it."""
        from .gui.installer_dialog import InstallerDialog

        folder = self.dependencies_folder()
        wanted = tuple(dict.fromkeys([*packages, *installer.packages_to_install(folder)]))
        self.installer_dialog = InstallerDialog(folder, installer.find_problems(), wanted,
                                                parent=self.iface.mainWindow())
        self.installer_dialog.show()
