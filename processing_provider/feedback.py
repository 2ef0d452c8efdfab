"""Bridges the engine's progress reports to a QgsProcessingFeedback."""

from __future__ import annotations

from qgis.core import QgsProcessingFeedback


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
