"""After a run in QGIS: styled label layer in the project, HTML report in the results viewer, K and areas logged."""

from __future__ import annotations

import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from qgis.core import QgsPalettedRasterRenderer, QgsProcessingFeedback, QgsProject


def segment_trees():
    """A fresh Segment Trees instance, outside the Processing registry (test_plugin.py expects it empty)."""
    from treeseg.processing_provider.segment_trees import SegmentTreesAlgorithm

    return SegmentTreesAlgorithm().create()


@pytest.fixture()
def run_in_qgis(qgis_processing, qgis_iface, tmp_path, monkeypatch):
    """Runs Segment Trees the way the algorithm dialog does: outputs loaded into the project on completion."""
    import processing
    from qgis.core import QgsLayerTreeModel
    from qgis.gui import QgsLayerTreeView

    # QGIS >= 3.34 adds result layers through the desktop's layer tree view, which pytest-qgis's iface lacks
    view = QgsLayerTreeView()
    view.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view))
    monkeypatch.setattr(qgis_iface, "layerTreeView", lambda: view, raising=False)

    weights = write_meta_pth(tmp_path / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    raster = make_raster(tmp_path / "ortho.tif", 96, 96)

    def run(**parameters):
        feedback = QgsProcessingFeedback()
        results = processing.runAndLoadResults(segment_trees(), {
            "INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16, "K_MAX": 4,
            "OUTPUT": str(tmp_path / "labels.tif"), **parameters}, feedback=feedback)
        return results, feedback

    yield run
    QgsProject.instance().removeAllMapLayers()


def test_label_layer_is_added_with_the_paletted_style_and_category_names(run_in_qgis):
    results, feedback = run_in_qgis()
    layers = [layer for layer in QgsProject.instance().mapLayers().values() if layer.source() == results["OUTPUT"]]
    assert len(layers) == 1
    renderer = layers[0].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    classes = renderer.classes()
    assert [entry.value for entry in classes] == list(range(1, results["CHOSEN_K"] + 1))
    assert [entry.label for entry in classes] == [f"Cluster {k}" for k in range(1, results["CHOSEN_K"] + 1)]

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
