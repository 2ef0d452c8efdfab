"""After a run in QGIS: the result layers named after the input ("OSBS_029 crowns"), in one group per run with
the vectors above the rasters, styled with the ``.qml`` the engine wrote beside them (one source: the same
files look the same when opened later); the HTML report in the results viewer.

Called from the algorithms' ``postProcessAlgorithm`` (main thread), in the algorithm dialog, the Batch dialog
and models run from the desktop alike. Headless runs (qgis_process, scripts without a QGIS window) load no
layers and have no results viewer, so nothing happens there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, List, Optional, Sequence

from qgis.core import (
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
)
from qgis.PyQt.QtGui import QIcon

from ..treeseg_plugin.i18n import tr
from .layer_tree import RunGroup

REPORT_SUFFIXES = (".html", ".htm")

Styler = Callable[[QgsMapLayer, str], str]
"""Styles a layer loaded from a path; returns why it could not ("" when it did)."""


def qml_style(layer: QgsMapLayer, path: str) -> str:
    """The ``.qml`` the engine wrote beside ``path`` (labels: paletted with "Cluster N" names; tree mask; heights;
    crowns: outlines)."""
    style = str(Path(path).with_suffix(".qml"))
    if not Path(style).is_file():
        return ""
    message, ok = layer.loadNamedStyle(style)
    return "" if ok else tr("Could not apply the style {style}: {message}").format(style=style, message=message)


@dataclass(frozen=True)
class ResultLayer:
    """One output a run may load: its path (None when not written), what it shows ("crowns"), its style, whether
    it is drawn (checked in the layer tree) at first."""

    path: Optional[str]
    what: str
    style: Optional[Styler] = None
    visible: bool = True


class ResultLayerPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles one loaded result layer and places it in its run's group.

    Processing does not own post-processors, so the latest ones are kept alive in ``instances`` (a model's
    children load their layers together, when the model ends).
    """

    instances: ClassVar[List[QgsProcessingLayerPostProcessorInterface]] = []
    KEPT = 64

    def __init__(self, result: ResultLayer, rank: int, group: Optional[RunGroup]):
        super().__init__()
        self.result, self.rank, self.group = result, rank, group

    def postProcessLayer(self, layer: QgsMapLayer, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> None:
        if self.result.style is not None:
            problem = self.result.style(layer, self.result.path)
            if problem:
                feedback.pushWarning(problem)
            layer.triggerRepaint()
            layer.emitStyleChanged()
        if self.group is not None:
            node = self.group.place(layer, self.rank, context.project() or QgsProject.instance())
            if node is not None:
                node.setItemVisibilityChecked(self.result.visible)


def present_results(context: QgsProcessingContext, input_path: str, results: Sequence[ResultLayer],
                    grouped: bool = True) -> None:
    """Name, style and (``grouped``) group the ``results`` Processing loads, top to bottom in the given order."""
    stem = Path(input_path).stem
    group = RunGroup(stem) if grouped else None
    processors: List[QgsProcessingLayerPostProcessorInterface] = []
    for rank, result in enumerate(results):
        if not result.path or not context.willLoadLayerOnCompletion(result.path):
            continue
        details = context.layerToLoadOnCompletionDetails(result.path)
        details.name = f"{stem} {result.what}"
        details.forceName = True
        processors.append(ResultLayerPostProcessor(result, rank, group))
        details.setPostProcessor(processors[-1])
    kept = ResultLayerPostProcessor.instances + processors
    ResultLayerPostProcessor.instances = kept[-ResultLayerPostProcessor.KEPT:]


def list_report(stats_path: Optional[str], icon: QIcon, name: str) -> None:
    """An HTML report in Processing's results viewer, listed as ``name`` (in the QGIS window only)."""
    if stats_path and stats_path.lower().endswith(REPORT_SUFFIXES) and _has_main_window():
        from processing.core.ProcessingResults import resultsList

        resultsList.addResult(icon=icon, name=name, timestamp=time.localtime(), result=stats_path)


def _has_main_window() -> bool:
    from qgis.utils import iface

    return iface is not None
