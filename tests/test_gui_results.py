"""After a run in QGIS: styled layers named after the input in one group per run, HTML report in the results
viewer, K and areas logged, the run's summary on the message bar."""

from __future__ import annotations

import pytest
from batch_panel import dispose, row_parameters
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from qgis.core import Qgis, QgsLayerTreeGroup, QgsPalettedRasterRenderer, QgsProcessingFeedback, QgsProject


def segment_trees():
    """A fresh Segment Trees instance, outside the Processing registry (test_plugin.py expects it empty)."""
    from treeseg.processing_provider.segment_trees import SegmentTreesAlgorithm

    return SegmentTreesAlgorithm().create()


@pytest.fixture()
def run_in_qgis(qgis_processing, processing_iface, tmp_path):
    """Runs Segment Trees the way the algorithm dialog does: outputs loaded into the project on completion."""
    import processing

    weights = write_meta_pth(tmp_path / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    raster = make_raster(tmp_path / "OSBS_029.tif", 96, 96)

    def run(**parameters):
        feedback = QgsProcessingFeedback()
        results = processing.runAndLoadResults(segment_trees(), {
            "INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16, "K_MAX": 4,
            "OUTPUT": str(tmp_path / "labels.tif"), **parameters}, feedback=feedback)
        return results, feedback

    yield run
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()


def test_label_layer_is_added_with_the_paletted_style_and_category_names(run_in_qgis):
    results, feedback = run_in_qgis()
    layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == results["OUTPUT"]]
    assert len(layers) == 1
    renderer = layers[0].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    classes = renderer.classes()
    assert [entry.value for entry in classes] == list(range(1, results["CHOSEN_K"] + 1))
    names = [f"Cluster {k}" for k in range(1, results["CHOSEN_K"] + 1)]
    assert [entry.label.split(":")[0] for entry in classes] == names
    assert all(entry.label.endswith((": trees", ": not trees")) for entry in classes)

    log = feedback.textLog()
    assert f"Chosen K = {results['CHOSEN_K']}" in log
    for k in range(1, results["CHOSEN_K"] + 1):
        assert f"Cluster {k}:" in log and "map units²" in log


def test_html_report_goes_to_the_processing_results_viewer(run_in_qgis, tmp_path):
    from processing.core.ProcessingResults import resultsList

    before = len(resultsList.getResults())
    results, _ = run_in_qgis(STATS=str(tmp_path / "report.html"))
    added = resultsList.getResults()[before:]
    assert [(result.name, result.filename) for result in added] == [("Segment Trees report", results["STATS"])]

    run_in_qgis(STATS=str(tmp_path / "stats.json"))  # other formats are not HTML pages
    assert len(resultsList.getResults()) == before + 1


def test_tree_mask_and_crowns_are_loaded_and_the_mask_styled(run_in_qgis, tmp_path):
    results, _ = run_in_qgis(TREES=str(tmp_path / "trees.tif"), CROWNS=str(tmp_path / "crowns.gpkg"))
    by_source = {layer.source().split("|")[0]: layer for layer in QgsProject.instance().mapLayers().values()}
    mask = by_source[results["TREES"]]
    assert isinstance(mask.renderer(), QgsPalettedRasterRenderer)
    assert [entry.label for entry in mask.renderer().classes()] == ["not trees", "tree canopy"]
    assert mask.renderer().opacity() == 0.5  # the orthophoto shows through
    crowns = by_source[results["CROWNS"]]
    assert crowns.isValid() and crowns.featureCount() > 0
    fill = crowns.renderer().symbol().symbolLayer(0)
    assert fill.color().alpha() == 0 and fill.strokeColor().name() == "#1b7837"


def test_batch_dialog_offers_the_tree_parameters_and_outputs(treeseg_provider, qgis_iface, tmp_path):
    """The Batch dialog builds a row for every parameter and output, and its row runs."""
    import processing
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("treeseg:segmenttrees")
    dialog = BatchAlgorithmDialog(algorithm)
    panel = dialog.mainWidget()
    for name in ("CANOPY_HEIGHT", "NIR_BAND", "MIN_TREE_HEIGHT", "TREE_CLUSTERS", "MIN_CROWN_AREA", "TREES", "CROWNS"):
        assert name in panel.parameter_to_column, name
    weights = write_meta_pth(tmp_path / "tiny.pth", make_state_dict("tiny", seed=0))
    raster = make_raster(tmp_path / "ortho.tif", 96, 96)
    values = {"INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16, "K": 3,
              "TREE_CLUSTERS": "1", "MIN_CROWN_AREA": 0.5}
    for name, value in values.items():
        panel.wrappers[0][panel.parameter_to_column[name]].setParameterValue(value, panel.processing_context)
    for name in ("OUTPUT", "TREES", "CROWNS"):
        widget = panel.tblParameters.cellWidget(1, panel.parameter_to_column[name])
        widget.setValue(str(tmp_path / f"{name.lower()}{'.gpkg' if name == 'CROWNS' else '.tif'}"))
    parameters, ok = row_parameters(panel, 0)
    assert ok, dialog.messageBar().currentItem().text() if dialog.messageBar().currentItem() else ""
    results = processing.run("treeseg:segmenttrees", parameters)
    assert results["TREES"] == str(tmp_path / "trees.tif") and results["CROWNS"] == str(tmp_path / "crowns.gpkg")
    dispose(dialog)


def test_the_crowns_and_the_mask_look_the_same_when_their_files_are_opened_later(run_in_qgis, tmp_path):
    """Their .qml files beside them are QGIS's default styles: a layer opened from the file alone gets them."""
    from qgis.core import QgsRasterLayer, QgsVectorLayer
    from qgis.PyQt.QtCore import Qt

    results, _ = run_in_qgis(TREES=str(tmp_path / "trees.tif"), CROWNS=str(tmp_path / "crowns.gpkg"))
    assert (tmp_path / "crowns.qml").is_file()
    crowns = QgsVectorLayer(results["CROWNS"], "crowns", "ogr")
    fill = crowns.renderer().symbol().symbolLayer(0)
    assert fill.brushStyle() == Qt.BrushStyle.NoBrush and fill.strokeColor().name() == "#1b7837"
    assert fill.strokeWidth() == 0.4
    mask = QgsRasterLayer(results["TREES"], "trees")
    assert mask.renderer().opacity() == 0.5


def group_layout(root) -> list:
    """The layer tree as (group name, [layer names top to bottom]) for each group at the top level."""
    return [(node.name(), [child.name() for child in node.children()])
            for node in root.children() if isinstance(node, QgsLayerTreeGroup)]


def test_each_run_loads_into_its_own_group_named_after_the_input_vectors_on_top(run_in_qgis, tmp_path):
    root = QgsProject.instance().layerTreeRoot()
    outputs = {"TREES": str(tmp_path / "trees.tif"), "CROWNS": str(tmp_path / "crowns.gpkg"),
               "OUTPUT_POLYGONS": str(tmp_path / "polygons.gpkg")}
    run_in_qgis(**outputs)
    names = ["OSBS_029 crowns", "OSBS_029 cluster polygons", "OSBS_029 trees", "OSBS_029 clusters"]
    assert group_layout(root) == [("OSBS_029", names)]
    assert [node.name() for node in root.children()] == ["OSBS_029"]  # nothing left outside the group

    assert [node.isVisible() for node in root.children()[0].children()] == [True, True, True, False]

    run_in_qgis(OUTPUT=str(tmp_path / "labels2.tif"))  # a second run: a second group, on top
    assert group_layout(root) == [("OSBS_029", ["OSBS_029 clusters"]), ("OSBS_029", names)]
    assert root.children()[0].children()[0].isVisible()  # the clusters alone are drawn


def test_the_message_bar_sums_the_run_up_with_a_button_to_the_report(run_in_qgis, processing_iface, tmp_path):
    import json

    from qgis.PyQt.QtCore import QObject, QUrl, pyqtSlot
    from qgis.PyQt.QtGui import QDesktopServices
    from qgis.PyQt.QtWidgets import QPushButton

    results, _ = run_in_qgis(TREES=str(tmp_path / "trees.tif"), CROWNS=str(tmp_path / "crowns.gpkg"),
                             TREE_CLUSTERS="1,2", STATS=str(tmp_path / "stats.json"))
    stats = json.loads((tmp_path / "stats.json").read_text())
    item = processing_iface.messageBar().currentItem()
    assert item is not None and item.title() == "Segment Trees"
    text = item.text()
    share = sum(stats["cluster_percent"][k] for k in ("1", "2"))  # the two clusters named trees
    hectares = sum(stats["cluster_area"][k]["hectares"] for k in ("1", "2"))
    assert text.startswith(f"K = {results['CHOSEN_K']}; trees {share:.1f} % ({hectares:.2f} ha); ")
    crowns = [layer for layer in QgsProject.instance().mapLayers().values() if layer.name() == "OSBS_029 crowns"]
    assert f"; {crowns[0].featureCount()} crowns; cpu; " in text and text.endswith(" s")

    class Opened(QObject):
        """QGIS's desktop services hand it the file URLs to open (instead of the system's browser)."""

        def __init__(self):
            super().__init__()
            self.urls = []

        @pyqtSlot(QUrl)
        def open(self, url):
            self.urls.append(url.toLocalFile())

    opened = Opened()
    QDesktopServices.setUrlHandler("file", opened, "open")
    try:
        [button] = [b for b in item.findChildren(QPushButton) if b.text() == "Open report"]
        button.click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert opened.urls == [results["STATS"]]


def test_without_a_stats_file_the_summary_has_no_report_button(run_in_qgis, processing_iface):
    from qgis.PyQt.QtWidgets import QPushButton

    results, _ = run_in_qgis()
    item = processing_iface.messageBar().currentItem()
    assert item.text().startswith(f"K = {results['CHOSEN_K']}; trees ")
    assert "crowns" not in item.text()
    assert [b.text() for b in item.findChildren(QPushButton) if b.text() == "Open report"] == []


@pytest.mark.skipif(Qgis.QGIS_VERSION_INT >= 32800, reason="drives QGIS 3.22's synchronous Batch runner; newer "
                    "QGIS runs the rows in background tasks, and disposing of the dialog then crashed QGIS 3.44")
def test_the_batch_dialog_loads_each_row_into_a_group_named_after_its_input(treeseg_provider, processing_iface,
                                                                           tmp_path):
    """Two rows run by the Batch dialog itself (its Run button's slot): two groups, each named after its input."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    weights = write_meta_pth(tmp_path / "tiny.pth", make_state_dict("tiny", seed=0))
    dialog = BatchAlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("treeseg:segmenttrees"))
    panel = dialog.mainWidget()
    panel.addRow()
    for row, name in enumerate(("north", "south")):
        values = {"INPUT": str(make_raster(tmp_path / f"{name}.tif", 96, 96, seed=row)), "WEIGHTS": str(weights),
                  "TILE_SIZE": 64, "OVERLAP": 16, "K": 3, "TREE_CLUSTERS": "1"}
        for parameter, value in values.items():
            panel.wrappers[row][panel.parameter_to_column[parameter]].setParameterValue(value, panel.processing_context)
        for output, suffix in (("OUTPUT", ".tif"), ("CROWNS", ".gpkg")):
            widget = panel.tblParameters.cellWidget(row + 1, panel.parameter_to_column[output])
            widget.setValue(str(tmp_path / f"{name}-{output.lower()}{suffix}"))
    try:
        panel.checkLoadLayersOnCompletion.setChecked(True)  # "Load layers on completion", off by default
        dialog.runAlgorithm()
        root = QgsProject.instance().layerTreeRoot()
        assert sorted(group_layout(root)) == [("north", ["north crowns", "north clusters"]),
                                              ("south", ["south crowns", "south clusters"])]
    finally:
        dispose(dialog)
        QgsProject.instance().removeAllMapLayers()
        QgsProject.instance().layerTreeRoot().removeAllChildren()
