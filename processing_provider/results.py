"""After a run in QGIS: the label layer and the tree canopy mask loaded with their paletted styles, the crowns
as green outlines, the HTML report in the results viewer.

Called from Segment Trees' ``postProcessAlgorithm`` (main thread). Headless runs (qgis_process, scripts
without a QGIS window) load no layers and have no results viewer, so nothing happens there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar, List, Optional

from qgis.core import (
    QgsFillSymbol,
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsSingleSymbolRenderer,
)
from qgis.PyQt.QtGui import QIcon

REPORT_SUFFIXES = (".html", ".htm")


class LabelLayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies the run's ``.qml`` (paletted renderer, "Cluster N" class names) to the loaded label layer.

    Processing does not own post-processors, so the latest run's are kept alive in ``instances``.
    """

    instances: ClassVar[List[QgsProcessingLayerPostProcessorInterface]] = []

    def __init__(self, style_path: str):
        super().__init__()
        self.style_path = style_path

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        message, ok = layer.loadNamedStyle(self.style_path)
        if not ok:
            feedback.pushWarning(f"Could not apply the style {self.style_path}: {message}")
            return
        layer.triggerRepaint()
        layer.emitStyleChanged()


class CrownLayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Draws the crowns as dark-green outlines with no fill, so the orthophoto shows through."""

    OUTLINE = "#1b7837"

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": self.OUTLINE,
                                             "outline_width": "0.4"})
        layer.setRenderer(QgsSingleSymbolRenderer(symbol))
        layer.triggerRepaint()
        layer.emitStyleChanged()


def present_results(context: QgsProcessingContext, output_path: str, stats_path: Optional[str], icon: QIcon,
                    trees_path: Optional[str] = None, crowns_path: Optional[str] = None) -> None:
    """Style the label layer, the tree canopy mask and the crowns if Processing loads them, and list an HTML
    report in the results viewer."""
    styled: List[QgsProcessingLayerPostProcessorInterface] = []
    for path in filter(None, (output_path, trees_path)):
        style = str(Path(path).with_suffix(".qml"))
        if context.willLoadLayerOnCompletion(path) and Path(style).is_file():
            styled.append(LabelLayerStyler(style))
            context.layerToLoadOnCompletionDetails(path).setPostProcessor(styled[-1])
    if crowns_path and context.willLoadLayerOnCompletion(crowns_path):
        styled.append(CrownLayerStyler())
        context.layerToLoadOnCompletionDetails(crowns_path).setPostProcessor(styled[-1])
    LabelLayerStyler.instances = styled
    if stats_path and stats_path.lower().endswith(REPORT_SUFFIXES) and _has_main_window():
        from processing.core.ProcessingResults import resultsList

        resultsList.addResult(icon=icon, name="Segment Trees report", timestamp=time.localtime(), result=stats_path)


def _has_main_window() -> bool:
    from qgis.utils import iface

    return iface is not None
