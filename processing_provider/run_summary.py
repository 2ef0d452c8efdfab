"""A run in one line on QGIS's message bar, with a button that opens the report: Segment Trees' K, tree share and
area, crowns, device and time; Classify from Examples' classes, accuracy and time. Only in the QGIS window
(qgis_process has no message bar)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from qgis.core import Qgis
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QPushButton

from ..treeseg_plugin.i18n import format_number, tr


def summary_text(stats: Dict[str, Any], seconds: float) -> str:
    """"K = 4; trees 38.2 % (0.41 ha); 57 crowns; cpu; 12 s" from a run's statistics and its duration."""
    trees = stats.get("trees", {})
    labels = [str(label) for label in trees.get("tree_labels", [])]
    share = sum(stats["cluster_percent"][label] for label in labels)
    hectares = [stats["cluster_area"][label]["hectares"] for label in labels]
    if None in hectares:
        area = tr("{area} map units²").format(
            area=format_number(sum(stats["cluster_area"][label]["map_units"] for label in labels), ".6g"))
    else:
        area = f"{format_number(sum(hectares), ',.2f')} ha"
    share_text = format_number(share, ".1f")
    parts = [f"K = {stats['chosen_k']}", tr("trees {share} % ({area})").format(share=share_text, area=area)]
    if "crowns" in trees:
        parts.append(tr("{count} crowns").format(count=trees["crowns"]))
    parts += [str(stats["device"]), f"{format_number(seconds)} s"]
    return "; ".join(parts)


def classify_summary_text(result: Any, seconds: float) -> str:
    """"conifer 41.2 %, lawn 58.8 %; accuracy 93.5 % by example; 1 warning; 12 s" from a ClassifyResult (one
    class: "similarity to conifer") and the run's duration."""
    if result.mode == "similarity":
        parts = [tr("similarity to {name}").format(name=result.class_names[0])]
    else:
        total = sum(result.class_pixels.values()) or 1
        parts = [", ".join(f"{name} {format_number(100.0 * result.class_pixels.get(name, 0) / total, '.1f')} %"
                           for name in result.class_names)]
    if result.accuracy:
        parts.append(tr("accuracy {accuracy} % by example").format(
            accuracy=format_number(100.0 * result.accuracy["overall_accuracy"], ".1f")))
    if result.warnings:
        count = len(result.warnings)
        parts.append(tr("{count} warnings").format(count=count) if count > 1 else tr("1 warning"))
    parts.append(f"{format_number(seconds)} s")
    return "; ".join(parts)


def show_summary(title: str, text: str, report_path: Optional[str]) -> None:
    """Push ``text`` onto the QGIS window's message bar (it stays until closed); nothing without a window."""
    from qgis.utils import iface

    if iface is None:
        return
    bar = iface.messageBar()
    item = bar.createMessage(title, text)
    if report_path:
        button = QPushButton(tr("Open report"), item)
        button.setToolTip(report_path)
        button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(report_path)))
        item.layout().addWidget(button)
    bar.pushWidget(item, Qgis.MessageLevel.Success, 0)
