"""An engine Progress that records what the engine reports, for tests."""

from __future__ import annotations

from typing import Callable, Dict, List

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
