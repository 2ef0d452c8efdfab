"""Bridges the engine's progress reports to a QgsProcessingFeedback, and reports unexpected errors."""

from __future__ import annotations

from qgis.core import Qgis, QgsMessageLog, QgsProcessingFeedback

from ..treeseg_plugin.i18n import tr

LOG_TAG = "TreeSeg"


def unexpected_error(type_name: str, message: str, traceback_text: str, algorithm: str) -> str:
    """The one-line Processing message for an error that is not the user's (a bug).

    The traceback goes to QGIS's message log (tab "TreeSeg" of the Log Messages panel), not into the
    Processing log; the message says where to find it and what to do.
    """
    QgsMessageLog.logMessage(traceback_text, LOG_TAG, Qgis.MessageLevel.Critical)
    detail = message.strip() or tr("no message")
    return tr("{algorithm} stopped on an unexpected error ({type_name}: {detail}). Nothing was written. This is a bug "
              "in TreeSeg, not a problem with your data or settings: please report it, with the details from the "
              "'{tag}' tab of the Log Messages panel (View > Panels > Log Messages).").format(
                  algorithm=algorithm, type_name=type_name, detail=detail, tag=LOG_TAG)


class FeedbackProgress:
    """The engine's Progress interface on top of Processing feedback (log, progress bar, cancel button)."""

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        self.feedback = feedback

    def info(self, message: str) -> None:
        self.feedback.pushInfo(message)

    def warning(self, message: str) -> None:
        self.feedback.pushWarning(message)

    def stage(self, name: str) -> None:
        self.feedback.setProgressText(name)

    def progress(self, percent: float) -> None:
        self.feedback.setProgress(percent)

    def is_canceled(self) -> bool:
        return self.feedback.isCanceled()
