"""TreeSeg > Diagnostics: the Diagnostics report, read-only, with a button that copies it for a bug report."""

from __future__ import annotations

from typing import Optional

from qgis.PyQt.QtGui import QFontDatabase, QGuiApplication
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from ..diagnostics import report_text
from ..i18n import tr, translatable

INTRO = translatable("Paste this report into your bug report (it holds no token or password). "
                     "Headless: <tt>qgis_process run treeseg:diagnostics</tt>.")


class DiagnosticsDialog(QDialog):
    """Shows ``text`` (by default a fresh :func:`report_text`); *Copy to clipboard* and *Close*."""

    def __init__(self, parent: Optional[QWidget] = None, text: Optional[str] = None):
        super().__init__(parent)
        self.setWindowTitle(tr("TreeSeg – Diagnostics"))
        self.setObjectName("treeseg_diagnostics_dialog")
        intro = QLabel(tr(INTRO))
        intro.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.report.setPlainText(report_text() if text is None else text)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton(tr("Copy to clipboard"), QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.report)
        layout.addWidget(buttons)
        self.resize(760, 560)

    def copy_to_clipboard(self) -> None:
        """Put the whole report on the clipboard."""
        QGuiApplication.clipboard().setText(self.report.toPlainText())
