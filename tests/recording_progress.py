"""Recorders of what a run reports, for tests: the engine's Progress (:class:`Log`) and QGIS's Processing
feedback (:class:`RecordingFeedback`)."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

from qgis.core import QgsProcessingFeedback
from treeseg.treeseg_plugin.engine import Progress


class Log(Progress):
    """Records log lines, warnings, stages and percentages; ``on_stage`` hooks run when a stage starts."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.warnings: List[str] = []
        self.stages: List[str] = []
        self.percents: List[float] = []
        self.on_stage: Dict[str, Callable[[], object]] = {}

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def stage(self, name: str) -> None:
        self.stages.append(name)
        hook = self.on_stage.get(name)
        if hook is not None:
            hook()

    def progress(self, percent: float) -> None:
        self.percents.append(percent)

    @property
    def text(self) -> str:
        return "\n".join(self.lines + self.warnings)


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every text Processing shows (``texts``; warnings also in ``warnings``, stage names in ``stages``);
    cancels when stage ``cancel_at`` starts, raises from ``setProgress`` at ``fail_at_percent``, and runs the
    ``on_stage`` hooks."""

    def __init__(self, cancel_at: Optional[str] = None, fail_at_percent: Optional[float] = None) -> None:
        super().__init__()
        self.texts: List[str] = []
        self.warnings: List[str] = []
        self.stages: List[str] = []
        self.on_stage: Dict[str, Callable[[], object]] = {}
        self.cancel_at, self.fail_at_percent = cancel_at, fail_at_percent

    def pushInfo(self, info: str) -> None:
        self.texts.append(info)

    def pushWarning(self, warning: str) -> None:
        self.warnings.append(warning)
        self.texts.append(warning)

    def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N803 - Qt's name
        self.texts.append(error)

    def pushCommandInfo(self, info: str) -> None:
        self.texts.append(info)

    def pushDebugInfo(self, info: str) -> None:
        self.texts.append(info)

    def pushConsoleInfo(self, info: str) -> None:
        self.texts.append(info)

    def setProgressText(self, text: str) -> None:
        self.stages.append(text)
        if text == self.cancel_at:
            self.cancel()
        if text in self.on_stage:
            self.on_stage[text]()

    def setProgress(self, percent: float) -> None:
        if self.fail_at_percent is not None and percent >= self.fail_at_percent:
            raise RuntimeError("injected failure in the progress callback")
        super().setProgress(percent)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def lines(self) -> List[str]:
        """Everything shown: the texts and the stage names."""
        return self.texts + self.stages
