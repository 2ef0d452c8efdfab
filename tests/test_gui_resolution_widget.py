"""The working resolution in the dialogs (issue 25, item 4): under the input with its unit and the input layer's own
pixel size in ground metres beside it; for a web layer the extent becomes the map canvas's; the Batch dialog and the
Model Designer keep QGIS's own number widget."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_panel import dispose
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProcessingContext,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
)
from qgis.PyQt.QtWidgets import QLabel

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"  # 0.1 m pixels, UTM 17N
XYZ = "type=xyz&url=http://127.0.0.1:9/{z}/{x}/{y}.png&zmin=0&zmax=19"  # nothing is fetched: no server needed


@pytest.fixture()
def dialogs(treeseg_provider, processing_iface):
    opened = []

    def open_dialog(kind, algorithm_id: str = "treeseg:segmenttrees"):
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        dialog = kind(algorithm, parent=processing_iface.mainWindow())
        opened.append(dialog)
        return dialog

    yield open_dialog
    for dialog in opened:
        dispose(dialog)
    QgsProject.instance().removeAllMapLayers()


def _labels(wrapper) -> list:
    return [label.text() for label in wrapper.wrappedWidget().findChildren(QLabel)]


@pytest.mark.parametrize(("algorithm_id", "name"), [("treeseg:segmenttrees", "WORKING_RESOLUTION"),
                                                    ("treeseg:fitclustermodel", "WORKING_RESOLUTION"),
                                                    ("treeseg:canopyheight", "RESOLUTION")])
def test_the_resolution_comes_under_the_input_with_its_unit(dialogs, algorithm_id, name):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from treeseg.processing_provider.resolution_widget import ResolutionWidgetWrapper

    dialog = dialogs(AlgorithmDialog, algorithm_id)
    names = [parameter.name() for parameter in dialog.algorithm().parameterDefinitions()]
    assert names[:2] == ["INPUT", name]
    wrapper = dialog.mainWidget().wrappers[name]
    assert isinstance(wrapper, ResolutionWidgetWrapper)
    assert "m per pixel" in _labels(wrapper)
    dialog.setParameters({name: 0.25})
    assert wrapper.parameterValue() == 0.25


def test_the_input_layers_own_pixel_size_is_shown_beside_it(dialogs):
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    sample = QgsRasterLayer(str(SAMPLE), "sample")
    web = QgsRasterLayer(XYZ, "web", "wms")
    QgsProject.instance().addMapLayers([sample, web])
    dialog = dialogs(AlgorithmDialog)
    wrapper = dialog.mainWidget().wrappers["WORKING_RESOLUTION"]
    dialog.setParameters({"INPUT": sample.id()})
    assert "input: 0.1 m per pixel" in _labels(wrapper)  # 0.1 m in UTM: 0.09996 m on the ground, shown to 3 digits
    dialog.setParameters({"INPUT": web.id()})
    assert "input: a web layer, no pixel size of its own (give one)" in _labels(wrapper)


def test_a_web_layers_extent_defaults_to_the_map_canvas_extent(dialogs, processing_iface):
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    canvas = processing_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    canvas.setExtent(QgsRectangle(-9016000.0, 3464000.0, -9015000.0, 3465000.0))
    shown = canvas.extent()
    web = QgsRasterLayer(XYZ, "web", "wms")
    sample = QgsRasterLayer(str(SAMPLE), "sample")
    QgsProject.instance().addMapLayers([sample, web])
    dialog = dialogs(AlgorithmDialog)
    extent = dialog.mainWidget().wrappers["EXTENT"]
    dialog.setParameters({"INPUT": sample.id()})
    assert not extent.parameterValue()  # a file: the whole raster unless the user draws an extent
    dialog.setParameters({"INPUT": web.id()})
    value = extent.parameterValue()
    found = dialog.algorithm().parameterAsExtent({"EXTENT": value}, "EXTENT", QgsProcessingContext())
    assert dialog.algorithm().parameterAsExtentCrs({"EXTENT": value}, "EXTENT", QgsProcessingContext()).authid() \
        == "EPSG:3857"
    assert (found.xMinimum(), found.yMinimum(), found.xMaximum(), found.yMaximum()) == pytest.approx(
        (shown.xMinimum(), shown.yMinimum(), shown.xMaximum(), shown.yMaximum()))


def test_an_extent_the_user_set_is_kept_when_a_web_layer_is_chosen(dialogs, processing_iface):
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    canvas = processing_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    canvas.setExtent(QgsRectangle(-9016000.0, 3464000.0, -9015000.0, 3465000.0))
    web = QgsRasterLayer(XYZ, "web", "wms")
    sample = QgsRasterLayer(str(SAMPLE), "sample")
    QgsProject.instance().addMapLayers([sample, web])
    dialog = dialogs(AlgorithmDialog)
    dialog.setParameters({"INPUT": sample.id()})
    drawn = "-9015800.0,-9015600.0,3464200.0,3464400.0 [EPSG:3857]"  # inside the canvas, not the canvas
    dialog.setParameters({"EXTENT": drawn})
    dialog.setParameters({"INPUT": web.id()})  # the input changes to a web layer: the drawn extent stays
    value = dialog.mainWidget().wrappers["EXTENT"].parameterValue()
    found = dialog.algorithm().parameterAsExtent({"EXTENT": value}, "EXTENT", QgsProcessingContext())
    assert (found.xMinimum(), found.xMaximum(), found.yMinimum(), found.yMaximum()) == pytest.approx(
        (-9015800.0, -9015600.0, 3464200.0, 3464400.0))


def test_the_batch_dialog_and_the_model_designer_keep_qgis_number_widget(dialogs):
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.modeler.ModelerParametersDialog import ModelerParametersDialog
    from qgis.core import QgsProcessingModelAlgorithm
    from qgis.gui import QgsProcessingModelerParameterWidget
    from treeseg.processing_provider.resolution_widget import ResolutionWidgetWrapper

    panel = dialogs(BatchAlgorithmDialog).mainWidget()
    column = panel.parameter_to_column["WORKING_RESOLUTION"]
    wrapper = panel.wrappers[0][column]
    assert not isinstance(wrapper, ResolutionWidgetWrapper)
    wrapper.setParameterValue(0.2, QgsProcessingContext())
    assert wrapper.parameterValue() == 0.2
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("treeseg:segmenttrees")
    designer = ModelerParametersDialog(algorithm, QgsProcessingModelAlgorithm())
    try:
        found = designer.widget.widget.wrappers["WORKING_RESOLUTION"]
        assert isinstance(found, QgsProcessingModelerParameterWidget)
    finally:
        dispose(designer)
