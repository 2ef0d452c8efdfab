"""The plugin inside QGIS: the TreeSeg menu, the dialogs it opens, the dependency check at initGui."""

from __future__ import annotations

import importlib
import sys

import pytest
from qgis.core import Qgis, QgsSettings
from qt_events import wait_until
from treeseg.treeseg_plugin import dependency_folder, installer
from treeseg.treeseg_plugin import settings as treeseg_settings
from treeseg.treeseg_plugin.gui.diagnostics_dialog import DiagnosticsDialog
from treeseg.treeseg_plugin.gui.getting_started_dialog import GettingStartedDialog
from treeseg.treeseg_plugin.gui.installer_dialog import InstallerDialog
from treeseg.treeseg_plugin.gui.settings_dialog import SettingsDialog
from treeseg.treeseg_plugin.gui.weights_dialog import WeightsDialog


@pytest.fixture()
def message_bar(raster_menu_iface, monkeypatch):
    """Records what the plugin pushes to and pops from QGIS's message bar (pytest-qgis's mock has neither)."""
    bar = raster_menu_iface.messageBar()
    pushed = []
    monkeypatch.setattr(bar, "pushItem", pushed.append, raising=False)
    monkeypatch.setattr(bar, "popWidget", pushed.remove, raising=False)
    return pushed


@pytest.fixture()
def plugin(qgis_processing, raster_menu_iface, message_bar):
    instance = importlib.import_module("treeseg").classFactory(raster_menu_iface)
    yield instance
    instance.unload()


def menu_actions(iface) -> dict:
    submenu = iface.raster_menu.actions()[0].menu()
    return {action.text(): action for action in submenu.actions()}


def test_menu_has_segment_trees_weights_settings_and_diagnostics(plugin, raster_menu_iface, message_bar):
    plugin.initGui()
    actions = menu_actions(raster_menu_iface)
    assert list(actions) == ["Segment Trees…", "Weights…", "Settings…", "Diagnostics…", "Getting Started…"]
    assert [action.text() for action in raster_menu_iface.raster_toolbar.actions()] == ["Segment Trees…"]
    assert message_bar == []  # every dependency is installed here
    plugin.unload()
    assert raster_menu_iface.raster_menu.actions() == []


def test_settings_entry_opens_the_settings_dialog(plugin, raster_menu_iface, monkeypatch):
    opened = []
    monkeypatch.setattr(SettingsDialog, "exec", lambda dialog: opened.append(dialog) or 0)
    plugin.initGui()
    menu_actions(raster_menu_iface)["Settings…"].trigger()
    assert len(opened) == 1 and opened[0].windowTitle() == "TreeSeg – Settings"


def test_diagnostics_entry_shows_the_report(plugin, raster_menu_iface):
    plugin.initGui()
    menu_actions(raster_menu_iface)["Diagnostics…"].trigger()
    dialog = plugin.diagnostics_dialog
    assert isinstance(dialog, DiagnosticsDialog) and dialog.isVisible()
    assert f"QGIS: {Qgis.version()}" in dialog.report.toPlainText()
    plugin.unload()
    assert not dialog.isVisible() and plugin.diagnostics_dialog is None
    assert raster_menu_iface.raster_menu.actions() == []


def test_weights_entry_shows_one_weights_manager(plugin, raster_menu_iface):
    plugin.initGui()
    menu_actions(raster_menu_iface)["Weights…"].trigger()
    dialog = plugin.weights_dialog
    assert isinstance(dialog, WeightsDialog) and dialog.isVisible()
    menu_actions(raster_menu_iface)["Weights…"].trigger()
    assert plugin.weights_dialog is dialog
    plugin.unload()
    assert not dialog.isVisible()


def test_first_start_shows_getting_started_once(qgis_processing, raster_menu_iface, message_bar):
    QgsSettings().remove("treeseg/getting_started_shown")  # a profile that never ran TreeSeg
    first = importlib.import_module("treeseg").classFactory(raster_menu_iface)
    first.initGui()
    dialog = first.getting_started_dialog
    assert isinstance(dialog, GettingStartedDialog) and dialog.isVisible() and not dialog.isModal()
    wait_until(lambda: dialog.task is None)
    first.unload()
    assert not dialog.isVisible()
    second = importlib.import_module("treeseg").classFactory(raster_menu_iface)
    second.initGui()
    assert second.getting_started_dialog is None  # the next start (QGIS restarted) shows nothing by itself
    second.unload()


def test_getting_started_entry_opens_it_and_its_buttons_open_the_plugins_dialogs(plugin, raster_menu_iface):
    plugin.initGui()
    if plugin.getting_started_dialog is not None:  # this test ran first in a fresh profile
        wait_until(lambda: plugin.getting_started_dialog.task is None)
        plugin.getting_started_dialog.close()
    menu_actions(raster_menu_iface)["Getting Started…"].trigger()
    dialog = plugin.getting_started_dialog
    assert isinstance(dialog, GettingStartedDialog) and dialog.isVisible()
    wait_until(lambda: dialog.task is None)
    assert dialog.states["packages"] == "ready"  # every dependency is installed here
    dialog.weights_button.click()
    assert isinstance(plugin.weights_dialog, WeightsDialog) and plugin.weights_dialog.isVisible()
    dialog.diagnostics_button.click()
    assert isinstance(plugin.diagnostics_dialog, DiagnosticsDialog) and plugin.diagnostics_dialog.isVisible()
    menu_actions(raster_menu_iface)["Getting Started…"].trigger()
    assert plugin.getting_started_dialog is dialog
    wait_until(lambda: dialog.task is None)
    plugin.unload()
    assert not dialog.isVisible()


def test_the_cuda_build_reinstalls_what_the_private_folder_holds(plugin, raster_menu_iface, monkeypatch, tmp_path):
    """Getting Started's "Install the CUDA build…" asks for torch; the new folder replaces the old one, so the
    packages the old one holds (here safetensors 0.4.0) are installed again with it."""
    monkeypatch.setattr(treeseg_settings, "dependencies_base", lambda: tmp_path)
    folder = dependency_folder.deps_folder(tmp_path)
    dist_info = folder / "safetensors-0.4.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: safetensors\nVersion: 0.4.0\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(folder)])
    plugin.initGui()
    plugin.open_installer(("torch>=2.1",))
    assert plugin.installer_dialog.packages == ("torch>=2.1", "safetensors>=0.4")
    assert plugin.installer_dialog.isVisible()


def test_missing_dependency_offers_the_installer(plugin, raster_menu_iface, message_bar, monkeypatch):
    problem = installer.Problem(installer.REQUIREMENTS[0], None)
    monkeypatch.setattr(installer, "find_problems", lambda *args, **kwargs: [problem])
    plugin.initGui()
    assert len(message_bar) == 1
    item = message_bar[0]
    assert "torch is not installed" in item.text()
    button = item.widget()
    assert button.text() == "Install…"

    button.click()
    dialog = plugin.installer_dialog
    assert isinstance(dialog, InstallerDialog) and dialog.isVisible()
    assert dialog.folder == dependency_folder.deps_folder(treeseg_settings.dependencies_base())
    assert "torch is not installed" in dialog.intro.text()
    plugin.unload()
    assert message_bar == [] and not dialog.isVisible()


def test_plugin_load_puts_a_complete_private_folder_on_sys_path(qgis_processing, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(treeseg_settings, "dependencies_base", lambda: tmp_path)
    folder = dependency_folder.deps_folder(tmp_path)
    importlib.import_module("treeseg").classFactory(None)
    assert str(folder) not in sys.path  # nothing installed yet

    folder.mkdir(parents=True)
    (folder / dependency_folder.COMPLETE_MARKER).write_text("{}")
    plugin = importlib.import_module("treeseg").classFactory(None)
    assert sys.path[-1] == str(folder)  # after QGIS's and other plugins' packages
    assert plugin.actions == [] and plugin.dependency_message is None
