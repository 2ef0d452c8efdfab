"""A Segment Trees run in one line on QGIS's message bar: K, the tree share and area, the crowns, the device and
the time, with a button that opens the report. Only in the QGIS window (qgis_process has no message bar)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from qgis.core import Qgis
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QPushButton

from ..treeseg_plugin.i18n import tr


def summary_text(stats: Dict[str, Any], seconds: float) -> str:
    """"K = 4; trees 38.2 % (0.41 ha); 57 crowns; cpu; 12 s" from a run's statistics and its duration."""
    trees = stats.get("trees", {})
    labels = [str(label) for label in trees.get("tree_labels", [])]
    share = sum(stats["cluster_percent"][label] for label in labels)
    hectares = [stats["cluster_area"][label]["hectares"] for label in labels]
    if None in hectares:
        area = tr("{area} map units²").format(
            area=f"{sum(stats['cluster_area'][label]['map_units'] for label in labels):.6g}")
    else:
        area = f"{sum(hectares):.2f} ha"
    parts = [f"K = {stats['chosen_k']}", tr("trees {share} % ({area})").format(share=f"{share:.1f}", area=area)]
    if "crowns" in trees:
        parts.append(tr("{count} crowns").format(count=trees["crowns"]))
    parts += [str(stats["device"]), f"{seconds:.0f} s"]
    return "; ".join(parts)


def show_summary(stats: Dict[str, Any], seconds: float, report_path: Optional[str]) -> None:
    """Push the summary onto the QGIS window's message bar (it stays until closed); nothing without a window."""
    from qgis.utils import iface

    if iface is None:
        return
    bar = iface.messageBar()
    item = bar.createMessage(tr("Segment Trees"), summary_text(stats, seconds))
    if report_path:
        button = QPushButton(tr("Open report"), item)
        button.setToolTip(report_path)
        button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(report_path)))
        item.layout().addWidget(button)
    bar.pushWidget(item, Qgis.MessageLevel.Success, 0)
