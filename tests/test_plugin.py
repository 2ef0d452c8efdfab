"""The plugin object as QGIS and qgis_process drive it."""

from __future__ import annotations

import importlib

from qgis.core import QgsApplication

PROVIDER_ID = "treeseg"


def registry():
    return QgsApplication.processingRegistry()


def test_class_factory_with_no_iface_registers_provider_only(qgis_processing):
    plugin = importlib.import_module("treeseg").classFactory(None)
    assert plugin.actions == []
    plugin.initProcessing()
    try:
        assert registry().providerById(PROVIDER_ID) is plugin.provider
        assert registry().algorithmById("treeseg:segmenttrees") is not None
        assert registry().algorithmById("treeseg:diagnostics") is not None
    finally:
        plugin.unload()
    assert registry().providerById(PROVIDER_ID) is None


def test_gui_load_and_unload_twice_leaves_nothing_behind(qgis_processing, raster_menu_iface):
    for _ in range(2):
        plugin = importlib.import_module("treeseg").classFactory(raster_menu_iface)
        plugin.initGui()
        menu_titles = [action.text() for action in raster_menu_iface.raster_menu.actions()]
        assert menu_titles == ["&Tree Segmentation"]
        submenu = raster_menu_iface.raster_menu.actions()[0].menu()
        assert [action.text() for action in submenu.actions()] == ["Segment Trees…", "Weights…", "Settings…",
                                                                   "Diagnostics…", "Getting Started…"]
        assert not submenu.actions()[0].icon().isNull()
        assert len(raster_menu_iface.raster_toolbar.actions()) == 1
        assert registry().providerById(PROVIDER_ID) is plugin.provider

        plugin.unload()
        assert raster_menu_iface.raster_menu.actions() == []
        assert raster_menu_iface.raster_toolbar.actions() == []
        assert registry().providerById(PROVIDER_ID) is None
