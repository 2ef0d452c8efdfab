"""Processing dialogs in tests: a Batch row across QGIS versions, and disposing of a dialog before QGIS exits."""

from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple


def row_parameters(panel: Any, row: int) -> Tuple[Dict[str, Any], bool]:
    """The parameters of batch table row ``row`` and whether they are valid (warning on invalid ones);
    ``parametersForRow`` takes a context from QGIS 3.28 on."""
    if "context" in inspect.signature(panel.parametersForRow).parameters:
        return panel.parametersForRow(row, panel.processing_context, warnOnInvalid=True)
    return panel.parametersForRow(row, warnOnInvalid=True)


def dispose(dialog: Any) -> None:
    """Close and delete a Processing dialog now: left to QGIS's exit, its widgets crash the interpreter."""
    from qgis.PyQt.QtCore import QCoreApplication, QEvent

    dialog.close()
    dialog.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
