"""Diagnostics: the TreeSeg Diagnostics report as an output string, in the log and optionally in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
)

from ..treeseg_plugin.i18n import tr, translatable
from ..treeseg_plugin.version import help_url

SHORT_HELP = translatable(
    "<p>Lists what a bug report about TreeSeg needs: the TreeSeg, QGIS, Qt, PyQt, Python, numpy, GDAL and "
    "PyTorch versions, CUDA and MPS, the CPU and its vector extensions, the BLAS and OpenMP libraries loaded "
    "in this process, the dependency and weights folders and the weights found there.</p>"
    "<p>The report is returned as REPORT, written to the log and, when a file is given, saved as text (or "
    "as HTML for a .html file). It holds no secret: the Hugging Face token is never read, only whether one "
    "is configured. Paste it into the bug report.</p>"
)


class DiagnosticsAlgorithm(QgsProcessingAlgorithm):
    """treeseg:diagnostics: the report of :mod:`treeseg_plugin.diagnostics`, headless or in the Toolbox."""

    OUTPUT = "OUTPUT"
    REPORT = "REPORT"

    def name(self) -> str:
        return "diagnostics"

    def displayName(self) -> str:
        return self.tr("Diagnostics")

    def group(self) -> str:
        return self.tr("Troubleshooting")

    def groupId(self) -> str:
        return "troubleshooting"

    def tags(self) -> list[str]:
        return self.tr("diagnostics,bug,report,versions,troubleshooting,cuda,torch").split(",")

    def shortHelpString(self) -> str:
        return self.tr(SHORT_HELP)

    def helpUrl(self) -> str:
        return help_url("troubleshooting")

    def createInstance(self) -> DiagnosticsAlgorithm:
        return type(self)()

    tr = staticmethod(tr)  # the plugin's one translation context (treeseg_plugin/i18n.py)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        output = QgsProcessingParameterFileDestination(
            self.OUTPUT, self.tr("Diagnostics report"), self.tr("Text (*.txt);;HTML (*.html)"), optional=True,
            createByDefault=False)
        output.setHelp(self.tr("Also save the report here: HTML for a .html file, plain text otherwise."))
        self.addParameter(output)
        self.addOutput(QgsProcessingOutputString(self.REPORT, self.tr("Diagnostics report")))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ..treeseg_plugin.diagnostics import as_html, as_text, collect

        entries = collect()
        report = as_text(entries)
        feedback.pushInfo(report)
        results: dict[str, Any] = {self.REPORT: report}
        path = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if path:
            html = Path(path).suffix.lower() in (".html", ".htm")
            Path(path).write_text(as_html(entries) if html else report, encoding="utf-8")
            results[self.OUTPUT] = path
        return results
