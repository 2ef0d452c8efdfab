"""The run skeleton: what every run does around its own stages, in one place.

A run is a table of stages (:class:`Stage`: the name users see and its share of the progress bar) and its
stage functions, called from a body ``body(config, run)`` that :func:`perform` runs:

* GDAL raises on errors within the run (engine/raster/gdal_mode.py), the caller's mode is kept;
* the settings are checked (``validate``) before anything is opened;
* running out of memory or disk becomes an :class:`EngineError` naming the fix (engine/errors.py);
* :meth:`Run.stage` enters a stage: names it to the progress, moves the bar to the stage's start, checks for
  cancel, hands the stage a report over its share, and times it in wall and process CPU seconds (all
  threads; robust to other load on the machine); :meth:`Run.timings` logs the times and hands them to the run
  for its result (in milliseconds: :func:`milliseconds`);
* the run's exit stack (:attr:`Run.stack`) closes what the stages opened, then the staging
  (engine/raster/staging.py, :attr:`Run.staging`) removes every temporary file, unless
* :meth:`Run.commit`, the commit handshake, had the progress's last word and moved the outputs into place;
  the bar reaches 100 % only then.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Protocol, Sequence, Tuple, TypeVar

from ..errors import Canceled, resource_errors
from ..progress import Progress, StageProgress, check_canceled
from ..raster.gdal_mode import gdal_exceptions
from ..raster.staging import Staging, raster_sidecars


@dataclass(frozen=True)
class Stage:
    """One row of a run's stage table: the name users see, and its share of the progress bar (percent)."""

    name: str
    share: float


def stage_names(table: Sequence[Stage]) -> Tuple[str, ...]:
    """The names of a stage table, in order."""
    return tuple(stage.name for stage in table)


class Run:
    """A run in progress: its stages' progress, cancel checks and times, its exit stack and its staging."""

    def __init__(self, table: Sequence[Stage], progress: Progress) -> None:
        self.progress = progress
        self.stack = contextlib.ExitStack()
        self.staging = Staging()
        self.seconds: Dict[str, float] = {}
        self.cpu_seconds: Dict[str, float] = {}
        self._slices: Dict[str, Tuple[float, float]] = {}
        start = 0.0
        for stage in table:
            self._slices[stage.name] = (start, start + stage.share)
            start += stage.share
        self._started = (time.perf_counter(), time.process_time())

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stack.close()
        finally:
            self.staging.discard()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[StageProgress]:
        """Within: stage ``name`` of the table; yields the report of its share of the progress bar."""
        start, end = self._slices[name]
        self.progress.stage(name)
        self.progress.progress(start)
        check_canceled(self.progress)
        wall, cpu = time.perf_counter(), time.process_time()
        yield StageProgress(self.progress, start, end)
        self.seconds[name] = time.perf_counter() - wall
        self.cpu_seconds[name] = time.process_time() - cpu

    def elapsed(self) -> float:
        """Wall seconds since the run started."""
        return time.perf_counter() - self._started[0]

    def timings(self) -> Tuple[Dict[str, float], Dict[str, float]]:
        """Wall and process CPU seconds of each stage run so far, and of the whole run ("total"), logged in one
        line."""
        wall = {**self.seconds, "total": self.elapsed()}
        cpu = {**self.cpu_seconds, "total": time.process_time() - self._started[1]}
        stages = ", ".join(f"{name} {wall[name]:.2f} / {cpu[name]:.2f}" for name in wall)
        self.progress.info(f"Time per stage (wall / CPU seconds): {stages}.")
        return wall, cpu

    def commit(self, main: str, raster: bool = True) -> None:
        """The commit handshake: the progress's last word (False cancels), then every staged output moved into
        place, ``main`` last (a raster's stale sidecars beside it removed)."""
        if not self.progress.may_commit():
            raise Canceled()
        name = os.path.basename(main)
        self.staging.commit(last=name, stale=raster_sidecars(name) if raster else ())


def milliseconds(seconds: Dict[str, float]) -> Dict[str, float]:
    """Seconds rounded to milliseconds, as the results and the statistics report them."""
    return {name: round(value, 3) for name, value in seconds.items()}


class Job(Protocol):
    """What the skeleton needs of a job's settings: where its main output goes."""

    output_path: str


J = TypeVar("J", bound=Job)
R = TypeVar("R")


def perform(table: Sequence[Stage], validate: Callable[[J], None], config: J, progress: Optional[Progress],
            writes: str, body: Callable[[J, Run], R]) -> R:
    """Run ``body(config, run)`` in the skeleton; ``writes`` names what a full disk stopped writing."""
    progress = progress or Progress()
    with gdal_exceptions():
        validate(config)
        folder = os.path.dirname(os.path.abspath(config.output_path))
        with resource_errors(writes, folder), Run(table, progress) as run:
            result = body(config, run)
    progress.progress(100)
    return result
