"""The working resolution in the algorithm dialog (issue 25, item 4): under the input, its unit beside the number,
and the input layer's own pixel size in ground metres beside that, updated when another layer is chosen. When the
input is a layer that is not a file (a web layer) and no extent is set, the extent becomes the map canvas's.

WORKING_RESOLUTION and Canopy Height's RESOLUTION name this wrapper in their metadata (``widget_wrapper``, a class
path Processing imports only when it builds a dialog). Only the algorithm dialog gets it: in the Batch dialog and
the Model Designer, :meth:`ResolutionWidgetWrapper.__new__` returns QGIS's own number widget for the parameter.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsAbstractProcessingParameterWidgetWrapper, QgsDoubleSpinBox, QgsGui, QgsProcessingGui
from qgis.PyQt.QtWidgets import QHBoxLayout, QLabel, QWidget

from ..treeseg_plugin.i18n import format_number, tr
from .web_input import canvas_extent, is_file_layer, native_ground_size

STANDARD_DIALOGS = ("AlgorithmDialog",)  # Processing's own dialog classes (processing/gui/wrappers.py: dialogTypes)


def layer_note(layer: Optional[QgsRasterLayer]) -> str:
    """What the dialog says beside the resolution about ``layer``'s own pixel size."""
    if layer is None:
        return ""
    size = native_ground_size(layer)
    if size is None:
        if is_file_layer(layer):
            return tr("input: pixel size in metres unknown (no CRS)")
        return tr("input: a web layer, no pixel size of its own (give one)")
    side = math.sqrt(size[0] * size[1])
    return tr("input: {size} m per pixel").format(size=format_number(side, ".3g"))


class ResolutionWidgetWrapper(QgsAbstractProcessingParameterWidgetWrapper):
    """A number box with its unit ("m per pixel") and the input's own pixel size."""

    def __new__(cls, parameter: Any, dialog: Any, row: int = 0, col: int = 0, **kwargs: Any) -> Any:
        kind = type(dialog).__name__
        if kind in STANDARD_DIALOGS:
            return super().__new__(cls)
        registry = QgsGui.processingGuiRegistry()
        if kind == "ModelerParametersDialog":
            return registry.createModelerParameterWidget(dialog.model, dialog.childId, parameter, dialog.context)
        wrapper = registry.createParameterWidgetWrapper(parameter, QgsProcessingGui.WidgetType.Batch)
        wrapper.setDialog(dialog)
        return wrapper

    def __init__(self, parameter: Any, dialog: Any, row: int = 0, col: int = 0, **kwargs: Any) -> None:
        super().__init__(parameter, QgsProcessingGui.WidgetType.Standard)
        self.setDialog(dialog)
        self._box: Optional[QgsDoubleSpinBox] = None
        self._note: Optional[QLabel] = None
        self._extent: Optional[QgsAbstractProcessingParameterWidgetWrapper] = None
        self._context = QgsProcessingContext()  # holds a layer loaded from a path while the dialog shows it
        self._context.setProject(QgsProject.instance())

    def createWidget(self) -> QWidget:
        parameter = self.parameterDefinition()
        widget = QWidget()
        layout = QHBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        self._box = QgsDoubleSpinBox(widget)
        self._box.setDecimals(4)
        self._box.setRange(parameter.minimum(), min(parameter.maximum(), 1e6))
        self._box.setSingleStep(0.01)
        self._box.setClearValue(parameter.defaultValue() or 0.0)
        self._box.setToolTip(parameter.toolTip())
        self._box.valueChanged.connect(lambda _value: self.widgetValueHasChanged.emit(self))
        self._note = QLabel(widget)
        self._note.setObjectName("layerPixelSize")
        layout.addWidget(self._box, 1)
        layout.addWidget(QLabel(tr("m per pixel"), widget))
        layout.addWidget(self._note, 1)
        return widget

    def setWidgetValue(self, value: Any, context: QgsProcessingContext) -> None:
        if self._box is not None:
            self._box.setValue(float(value) if value not in (None, "") else self._box.clearValue())

    def widgetValue(self) -> Any:
        return self._box.value() if self._box is not None else None

    def postInitialize(self, wrappers: List[QgsAbstractProcessingParameterWidgetWrapper]) -> None:
        """Follow INPUT (and know EXTENT, for a web layer's default)."""
        super().postInitialize(wrappers)
        by_name = {wrapper.parameterDefinition().name(): wrapper for wrapper in wrappers}
        self._extent = by_name.get("EXTENT")
        source = by_name.get("INPUT")
        if source is not None:
            source.widgetValueHasChanged.connect(self._input_changed)
            self._input_changed(source)

    def _input_changed(self, source: QgsAbstractProcessingParameterWidgetWrapper) -> None:
        layer = self._raster_layer(source.parameterValue())
        if self._note is not None:
            self._note.setText(layer_note(layer))
        if layer is None or is_file_layer(layer) or self._extent is None or self._extent.parameterValue():
            return
        canvas = canvas_extent()
        if canvas is not None and not canvas.isEmpty():
            text = (f"{canvas.xMinimum()!r},{canvas.xMaximum()!r},{canvas.yMinimum()!r},{canvas.yMaximum()!r} "
                    f"[{canvas.crs().authid()}]")
            self._extent.setParameterValue(text, self._context)

    def _raster_layer(self, value: Any) -> Optional[QgsRasterLayer]:
        """The raster layer a map-layer widget's value names (a layer, a layer id, a path), or None."""
        if isinstance(value, QgsRasterLayer):
            return value
        if not isinstance(value, str) or not value:
            return None
        layer = QgsProcessingUtils.mapLayerFromString(value, self._context)
        return layer if isinstance(layer, QgsRasterLayer) else None
