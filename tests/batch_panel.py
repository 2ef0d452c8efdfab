"""QGIS's Batch dialog across versions: ``BatchPanel.parametersForRow`` takes a context from QGIS 3.28 on."""

from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple


def row_parameters(panel: Any, row: int) -> Tuple[Dict[str, Any], bool]:
    """The parameters of batch table row ``row`` and whether they are valid (warning on invalid ones)."""
    if "context" in inspect.signature(panel.parametersForRow).parameters:
        return panel.parametersForRow(row, panel.processing_context, warnOnInvalid=True)
    return panel.parametersForRow(row, warnOnInvalid=True)
