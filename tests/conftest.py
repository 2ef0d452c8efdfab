"""Test set-up: offscreen Qt, a throw-away HOME, the plugin importable as ``treeseg`` like QGIS loads it.

Everything here runs before pytest-qgis starts QgsApplication, so CI needs none of the developer's
shell variables.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "treeseg"

_SCRATCH = Path(tempfile.mkdtemp(prefix="treeseg-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, True)
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["HOME"] = str(_SCRATCH / "home")
os.environ["HF_HOME"] = str(_SCRATCH / "hf-home")  # an empty Hugging Face cache, never the developer's
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("HF_TOKEN", None)
(_SCRATCH / "home").mkdir()

# The plugin folder as QGIS sees it: <plugins>/treeseg -> the repository root.
PLUGINS_DIR = _SCRATCH / "plugins"
PLUGINS_DIR.mkdir()
(PLUGINS_DIR / PLUGIN_NAME).symlink_to(REPO_ROOT, target_is_directory=True)
sys.path.insert(0, str(PLUGINS_DIR))


@pytest.fixture(autouse=True, scope="session")
def _free_qgis_objects_before_qgis_exits(qgis_app):
    """Collect reference cycles while QGIS still runs: a QgsProcessingContext kept alive by a cycle (an
    exception's traceback and the frames it holds) owns its temporary layers, and freeing those after
    pytest-qgis's exitQgis() has destroyed GDAL's driver manager writes into freed memory (valgrind showed
    it; glibc then aborted the session after every test had passed)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def scratch_dir() -> Path:
    """A session-wide scratch folder that is removed at exit."""
    return _SCRATCH


@pytest.fixture(scope="session")
def plugins_dir() -> Path:
    """A QGIS plugin folder holding the repository as ``treeseg``."""
    return PLUGINS_DIR


@pytest.fixture()
def dest(tmp_path) -> Path:
    """A destination folder holding a previous result (labels, style, stats) that a failed run must keep."""
    folder = tmp_path / "dest"
    folder.mkdir()
    (folder / "labels.tif").write_bytes(b"previous labels")
    (folder / "labels.qml").write_bytes(b"previous style")
    (folder / "stats.json").write_bytes(b"{}")
    return folder


@pytest.fixture()
def treeseg_provider(qgis_processing):
    """The TreeSeg provider registered for one test, as the plugin does in initProcessing.

    Per test, so that the plugin tests find an empty registry whatever ran before them.
    """
    from qgis.core import QgsApplication
    from treeseg.processing_provider.provider import TreeSegProvider

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById(TreeSegProvider.ID)
    if provider is None:
        provider = TreeSegProvider()
        assert registry.addProvider(provider)
    yield provider
    if registry.providerById(TreeSegProvider.ID) is provider:
        registry.removeProvider(provider)


@pytest.fixture()
def processing_iface(qgis_iface, monkeypatch):
    """pytest-qgis's iface with what Processing's dialogs call and it lacks: the browser model (file widgets)
    and the layer tree view (QGIS >= 3.34 adds result layers through it)."""
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsBrowserGuiModel, QgsLayerTreeView

    browser = QgsBrowserGuiModel()
    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    monkeypatch.setattr(qgis_iface, "layerTreeView", lambda: view, raising=False)
    return qgis_iface


@pytest.fixture()
def raster_menu_iface(qgis_iface, monkeypatch):
    """pytest-qgis's iface with QGIS's Raster-menu and raster-toolbar calls backed by real Qt widgets."""
    from qgis.PyQt.QtWidgets import QToolBar

    window = qgis_iface.mainWindow()
    raster_menu = window.menuBar().addMenu("&Raster")
    toolbar = QToolBar("Raster", window)
    submenus = {}

    def add_to_menu(name, action):
        if name not in submenus:
            submenus[name] = raster_menu.addMenu(name)
        submenus[name].addAction(action)

    def remove_from_menu(name, action):
        submenu = submenus.get(name)
        if submenu is not None:
            submenu.removeAction(action)
            if submenu.isEmpty():
                raster_menu.removeAction(submenu.menuAction())
                del submenus[name]

    monkeypatch.setattr(qgis_iface, "addPluginToRasterMenu", add_to_menu, raising=False)
    monkeypatch.setattr(qgis_iface, "removePluginRasterMenu", remove_from_menu, raising=False)
    monkeypatch.setattr(qgis_iface, "addRasterToolBarIcon", toolbar.addAction, raising=False)
    monkeypatch.setattr(qgis_iface, "removeRasterToolBarIcon", toolbar.removeAction, raising=False)
    qgis_iface.raster_menu = raster_menu
    qgis_iface.raster_toolbar = toolbar
    yield qgis_iface
    window.menuBar().removeAction(raster_menu.menuAction())
