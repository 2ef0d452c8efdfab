"""Progress reporting and cancellation hooks the engine calls (no-op defaults).

The Processing algorithm subclasses :class:`Progress` to forward to ``QgsProcessingFeedback``;
scripts can use it as is or print from it.
"""

from __future__ import annotations

from .errors import Canceled


class Progress:
    """Receives log lines, stage names and percentages; answers whether to stop."""

    def info(self, msg: str) -> None:
        """A log line."""

    def warning(self, msg: str) -> None:
        """A warning the user should see."""

    def stage(self, name: str) -> None:
        """A new stage starts ("Loading model", "Encoding tiles", "Fitting k-means", "Writing labels")."""

    def progress(self, percent: float) -> None:
        """Overall progress, 0..100."""

    def is_canceled(self) -> bool:
        """True when the user asked to stop."""
        return False

    def may_commit(self) -> bool:
        """The last word before the outputs are moved into place: False cancels the run."""
        return not self.is_canceled()


def check_canceled(progress: Progress) -> None:
    """Raise :class:`Canceled` when the user asked to stop."""
    if progress.is_canceled():
        raise Canceled()


class StageProgress:
    """Maps a stage's own 0..1 fraction onto its slice [start, end] of the overall percentage."""

    def __init__(self, progress: Progress, start: float, end: float) -> None:
        self._progress = progress
        self._start = start
        self._end = end

    def __call__(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        self._progress.progress(self._start + (self._end - self._start) * fraction)

    def part(self, index: int, count: int) -> StageProgress:
        """The slice of part ``index`` of ``count`` equal parts of this one (e.g. one input of several)."""
        width = (self._end - self._start) / count
        return StageProgress(self._progress, self._start + width * index, self._start + width * (index + 1))
