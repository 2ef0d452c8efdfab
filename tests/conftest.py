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
from typing import Any, List

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


def _outliving_qgis() -> List[Any]:
    """What Python still holds that would otherwise be destroyed after exitQgis(): Python-owned QObjects without a
    parent (PyQt deletes them at interpreter exit, even those whose references QGIS leaked), other Python-owned QGIS
    objects, and open GDAL/OGR datasets (freed with module globals or ``sys.last_traceback``)."""
    from osgeo import gdal, ogr
    from qgis.PyQt import sip
    from qgis.PyQt.QtCore import QCoreApplication, QObject

    app = QCoreApplication.instance()
    found = []
    for obj in gc.get_objects():
        kind = type(obj)  # not isinstance(): that reads obj.__class__, which some objects (torch's) hook
        if issubclass(kind, (gdal.Dataset, ogr.DataSource)):
            if obj.thisown:  # an open dataset whose wrapper closes it when freed
                found.append(obj)
        elif issubclass(kind, sip.simplewrapper) and obj is not app and not sip.isdeleted(obj) and sip.ispyowned(obj):
            if issubclass(kind, QObject):
                if obj.parent() is None:
                    found.append(obj)
            elif any(cls.__module__.startswith("qgis.") for cls in kind.__mro__):
                found.append(obj)
    return found


def _release_before_qgis_exits() -> None:
    """Destroy what :func:`_outliving_qgis` finds while GDAL and QGIS's providers still exist (QObjects only in
    the thread they live in)."""
    from osgeo import gdal, ogr
    from qgis.core import QgsProject
    from qgis.PyQt import sip
    from qgis.PyQt.QtCore import QObject, QThread

    for name in ("last_type", "last_value", "last_traceback", "last_exc"):  # pytest keeps a failed test's frames
        if hasattr(sys, name):
            delattr(sys, name)
    QgsProject.instance().removeAllMapLayers()
    gc.collect()  # cycles first: their objects go in their own order
    for obj in _outliving_qgis():
        if isinstance(obj, (gdal.Dataset, ogr.DataSource)):
            type(obj).__swig_destroy__(obj)  # the binding's own close; the wrapper no longer owns the dataset
        elif sip.isdeleted(obj) or (isinstance(obj, QObject) and obj.thread() is not QThread.currentThread()):
            continue
        else:
            sip.delete(obj)


@pytest.fixture(autouse=True, scope="session")
def _release_qgis_objects_before_qgis_exits(qgis_app):
    """Release, while QGIS still runs, every QGIS or GDAL object that Python would otherwise destroy after
    pytest-qgis's exitQgis() (which destroys GDAL's driver manager): a raster layer freed then writes into freed
    memory (valgrind: GDALMajorObject::~GDALMajorObject; gdb: GDALClose under QgsRasterPipe::~QgsRasterPipe from
    PyQt's exit clean-up) and the session ends in a segmentation fault or a glibc abort after every test passed.
    Set up right after ``qgis_app``, so torn down after every other session fixture and just before it."""
    yield
    _release_before_qgis_exits()
    left = _outliving_qgis()
    assert not left, f"Python still holds these when QGIS exits (they would be destroyed after it): {left}"


@pytest.fixture(scope="session")
def scratch_dir() -> Path:
    """A session-wide scratch folder that is removed at exit."""
    return _SCRATCH


@pytest.fixture(scope="session")
def plugins_dir() -> Path:
    """A QGIS plugin folder holding the repository as ``treeseg``."""
    return PLUGINS_DIR


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """A tiny random-weight DINOv3 checkpoint (D=64, 2 blocks) in Meta's .pth layout, one per test module."""
    from checkpoint_factory import make_state_dict, write_meta_pth

    return str(write_meta_pth(tmp_path_factory.mktemp("weights") / "tiny.pth", make_state_dict("tiny", seed=0)))


@pytest.fixture()
def weights_folder(qgis_app, tmp_path) -> Path:
    """TreeSeg's weights folder setting pointed at ``tmp_path/weights`` (not created); settings reset after."""
    from qgis.core import QgsSettings
    from treeseg.treeseg_plugin import settings as treeseg_settings

    QgsSettings().remove(treeseg_settings.GROUP)
    folder = tmp_path / "weights"
    treeseg_settings.save_settings(treeseg_settings.TreeSegSettings(str(folder)))
    yield folder
    QgsSettings().remove(treeseg_settings.GROUP)


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
    """pytest-qgis's iface with what Processing's dialogs call and it lacks: the browser model (file widgets),
    the layer tree view (QGIS >= 3.34 adds result layers through it) and QGIS's own message bar in the main
    window (pytest-qgis's records only pushMessage)."""
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsBrowserGuiModel, QgsLayerTreeView, QgsMessageBar
    from qgis.PyQt import sip

    browser = QgsBrowserGuiModel()
    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    bar = QgsMessageBar(qgis_iface.mainWindow())
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    monkeypatch.setattr(qgis_iface, "layerTreeView", lambda: view, raising=False)
    monkeypatch.setattr(qgis_iface, "messageBar", lambda: bar, raising=False)
    yield qgis_iface
    sip.delete(bar)


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
