"""Segment Trees run from QGIS's own algorithm dialog, as an analyst clicks Run and Cancel: the algorithm runs
in a QgsProcessingAlgRunnerTask (a QGIS thread), the engine in the worker process under it; progress, the
log and cancel reach the dialog."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from batch_panel import dispose
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from qgis.core import QgsApplication, QgsProject
from qt_events import wait_until

ALGORITHM = "treeseg:segmenttrees"


@pytest.fixture()
def dialog_run(treeseg_provider, processing_iface):
    """Opens Segment Trees' algorithm dialog with the given parameters and clicks Run; gives the dialog and a
    record of the run: whether it succeeded once it ended, every value the progress bar showed, and the log."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QProgressBar

    dialogs = []

    def run(parameters: dict):
        dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM),
                                 parent=processing_iface.mainWindow())
        dialogs.append(dialog)
        dialog.setParameters(parameters)
        record = {"finished": None, "progress": [], "log": ""}
        dialog.findChild(QProgressBar, "progressBar").valueChanged.connect(record["progress"].append)
        finish = dialog.finish

        def finished(successful, *args, **kwargs):
            finish(successful, *args, **kwargs)  # after a success QGIS closes (and deletes) the dialog
            record["log"] = log_text(dialog)
            record["finished"] = successful

        dialog.finish = finished  # on_complete calls self.finish when the task ends
        dialog.runAlgorithm()
        return dialog, record

    yield run
    for dialog in dialogs:
        if not sip.isdeleted(dialog):
            dispose(dialog)
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()


def worker_processes() -> list[str]:
    """Command lines of this process's children that are TreeSeg workers (Linux /proc)."""
    children = []
    for listing in Path("/proc/self/task").glob("*/children"):
        children += listing.read_text().split()
    commands = []
    for pid in children:
        with contextlib.suppress(OSError):  # ended meanwhile
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return [command for command in commands if "treeseg_plugin.worker.process" in command]


def log_text(dialog) -> str:
    from qgis.PyQt.QtWidgets import QTextEdit

    return dialog.findChild(QTextEdit, "txtLog").toPlainText()


def test_run_shows_progress_stages_and_the_log(dialog_run, tmp_path):
    weights = write_meta_pth(tmp_path / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    raster = make_raster(tmp_path / "ortho.tif", 96, 96)
    output = tmp_path / "labels.tif"
    _, record = dialog_run({"INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16,
                            "K_MAX": 4, "OUTPUT": str(output)})
    wait_until(lambda: record["finished"] is not None)

    log = record["log"]
    assert record["finished"] is True, log
    assert output.is_file()
    for stage in ("Reading input", "Loading model", "Encoding tiles", "Fitting k-means", "Writing labels"):
        assert stage in log, stage
    assert "WCSS" in log and "Chosen K = " in log and "Cluster 1:" in log
    assert record["progress"] and max(record["progress"]) == 100
    shown = [value for value in record["progress"] if value > 0]
    assert shown == sorted(shown)  # the bar only moves forward


def test_trees_and_crowns_load_in_one_group_named_after_the_input_crowns_on_top(dialog_run, processing_iface,
                                                                               tmp_path):
    from qgis.core import QgsLayerTreeGroup, QgsLayerTreeLayer

    weights = write_meta_pth(tmp_path / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    raster = make_raster(tmp_path / "OSBS_029.tif", 96, 96)
    _, record = dialog_run({"INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16,
                            "K_MAX": 4, "TREE_CLUSTERS": "1", "OUTPUT": str(tmp_path / "labels.tif"),
                            "TREES": str(tmp_path / "trees.tif"), "CROWNS": str(tmp_path / "crowns.gpkg")})
    wait_until(lambda: record["finished"] is not None)
    assert record["finished"] is True, record["log"]

    [group] = QgsProject.instance().layerTreeRoot().children()
    assert isinstance(group, QgsLayerTreeGroup) and group.name() == "OSBS_029"
    layers = group.children()
    assert all(isinstance(node, QgsLayerTreeLayer) for node in layers)
    assert [node.name() for node in layers] == ["OSBS_029 crowns", "OSBS_029 trees", "OSBS_029 clusters"]
    assert [node.layer().source().split("|")[0] for node in layers] == [
        str(tmp_path / name) for name in ("crowns.gpkg", "trees.tif", "labels.tif")]
    assert [node.isVisible() for node in layers] == [True, True, False]  # the opaque clusters start hidden
    assert processing_iface.messageBar().currentItem().text().startswith("K = ")


def test_cancel_stops_the_worker_and_the_next_run_works(dialog_run, tmp_path):
    weights = write_meta_pth(tmp_path / "dinov3_vits16_random.pth", make_state_dict("vits16", seed=0))
    raster = make_raster(tmp_path / "ortho.tif", 1024, 1024)
    output = tmp_path / "out" / "labels.tif"  # a folder the run creates
    parameters = {"INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 128, "OVERLAP": 16, "K": 3,
                  "OUTPUT": str(output)}
    dialog, record = dialog_run(parameters)
    wait_until(lambda: any(value > 5 for value in record["progress"]))  # encoding tiles (5-80 %)
    assert len(worker_processes()) == 1
    assert dialog.cancelButton().isEnabled()
    dialog.cancelButton().click()
    wait_until(lambda: record["finished"] is not None, timeout=60)

    log = record["log"]
    assert record["finished"] is False, log
    assert "Canceled by the user; no output was written." in log
    assert "Encoding tiles" in log and "Fitting k-means" not in log  # stopped within the stage it was in
    assert not output.parent.exists()  # nothing written, the folder it made removed
    assert worker_processes() == []

    _, record = dialog_run({**parameters, "TILE_SIZE": 512, "OVERLAP": 32})
    wait_until(lambda: record["finished"] is not None, timeout=300)
    assert record["finished"] is True, record["log"]
    assert output.is_file()
