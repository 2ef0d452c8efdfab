"""Run a segmentation job in a worker process: the job interface that QGIS (and batch runs) use.

Why a worker: inside QGIS and ``qgis_process``, the executable's own libraries put the system
OpenBLAS into the global symbol scope before torch is imported, so torch's ``sgemm_`` calls bind to it
and run about 3x slower, with OpenBLAS threads fighting torch's OpenMP threads (docs/benchmarks.md,
"Speed inside QGIS"). A fresh Python interpreter loads no QGIS library, so torch keeps its own BLAS, on
any QGIS whatever BLAS it loads, with no environment variable to set. A worker also keeps QGIS alive
when the run dies (out of memory, a crash in a native library, a CUDA fault).

The job: a validated config of one of the :data:`JOB_KINDS` (:class:`SegmentationConfig`, run by
``run_segmentation``; :class:`ClusterFitConfig`, run by ``run_fit_cluster_model``). The result: what the
kind's engine function returns (a :class:`SegmentationResult` or :class:`ClusterFitResult`), or the
engine's error re-raised here (:class:`Canceled`, :class:`EngineError`, :class:`WorkerBugError` for an
unexpected exception, :class:`WorkerDiedError` when the process ends without an answer).
:func:`run_job` is the whole interface::

    result = run_job(SegmentationConfig("ortho.tif", "labels.tif"), progress)

A new kind of job is one :class:`JobKind` row: its config dataclass (with ``output_paths()``), its check,
the engine function the worker imports, and its result class (with ``to_json``/``from_json``).

The pipe (one JSON object per line, ``PROTOCOL`` version 2):

* to the worker's stdin: a job, ``{"protocol": 2, "kind": "segment", "config": {...}, "sys_path": [...]}``
  (the parent's, with TreeSeg's private dependency folder first: the worker runs only TreeSeg), then
  ``cancel``, or ``commit`` to answer the worker's ``commit?``. After the job's result or error, the next
  job, or the end of input: the worker exits (the end of input during a job also cancels it: the parent
  is gone).
* from the worker's stdout, for each job: ``{"event": "started", "pid", "python", "jobs_before"}`` (the
  jobs this process ran before), ``{"event": "info"|"warning", "message"}``, ``{"event": "stage",
  "name"}``, ``{"event": "progress", "percent"}``, ``{"event": "commit?"}`` (the worker waits for
  ``commit`` or ``cancel`` before it moves the outputs into place), and last either ``{"event":
  "result", "result": {...}}`` or ``{"event": "error", "kind": "canceled"|"engine"|"bug", "type",
  "message", "traceback"}``. Anything else the worker prints goes to its stderr, which is kept in a
  temporary file and quoted when the worker dies.

A worker runs one job, or (``run_job(..., keep_for_s=...)``, QGIS desktop and ``processing.run``) stays
up for the next runs with its last model loaded: :mod:`.kept`. A canceled run's worker is always ended.

Features and outputs stay on disk in the run's temporary folders, as in-process: all-or-nothing
outputs hold. When the worker dies, :func:`run_job` removes the temporary folders that carry its
process id (:func:`staging.remove_leftovers`) and the destination folders the run created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess  # nosec B404
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..engine.errors import Canceled, EngineError
from ..engine.jobs.canopy_height import CanopyHeightConfig, CanopyHeightResult, validate_canopy_config
from ..engine.jobs.classify import ClassifyConfig, validate_classify_config
from ..engine.jobs.fit import ClusterFitConfig, ClusterFitResult, validate_fit_config
from ..engine.jobs.results import ClassifyResult, SegmentationResult
from ..engine.jobs.segmentation import SegmentationConfig, validate_config
from ..engine.progress import Progress
from ..engine.raster.staging import remove_leftovers
from . import kept
from .channel import WorkerChannel

PROTOCOL = 2
PLUGIN_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the treeseg_plugin package
CANCEL_GRACE_S = 30.0  # after a cancel, the worker gets this long to stop at its next check before it is killed
EXIT_WAIT_S = 30.0  # after its job ended, the worker gets this long to exit (teardown) before it is killed
POLL_S = 0.1
NOT_STARTED = object()  # what _converse returns when the worker ended before it started the job

_OUT_OF_MEMORY_FIX = ("On Linux this is usually the out-of-memory killer: the system ran out of memory. Lower the "
                      "batch size or the tile size, use a smaller model or a larger patch stride, or close other "
                      "programs, then run again.")
_NATIVE_CRASH_FIX = ("This is a crash in a native library (PyTorch, GDAL or a GPU driver). Run again; if it "
                     "happens again, try device 'cpu' and report it with TreeSeg's Diagnostics.")
_SIGNALS = {
    getattr(signal, "SIGKILL", 9): ("was killed (SIGKILL)", _OUT_OF_MEMORY_FIX),
    signal.SIGSEGV: ("crashed (segmentation fault)", _NATIVE_CRASH_FIX),
    signal.SIGABRT: ("aborted (SIGABRT)",
                     "A native library stopped the process (often a CUDA or driver fault, or memory "
                     "exhausted). Try device 'cpu', a smaller batch size, and report it if it persists."),
    getattr(signal, "SIGBUS", 7): ("crashed (bus error)",
                                   "Usually a temporary file became unreadable: the disk is full or was "
                                   "disconnected. Free disk space and run again."),
}
_WINDOWS_CODES = {
    0xC0000005: ("crashed (access violation)", _NATIVE_CRASH_FIX),
    0xC0000017: ("ran out of memory", _OUT_OF_MEMORY_FIX),
    0xC00000FD: ("crashed (stack overflow)", _NATIVE_CRASH_FIX),
}


@dataclass(frozen=True)
class JobKind:
    """One kind of job the worker runs: config type, its check, result type (its engine function:
    :func:`.process.engine_functions`)."""

    name: str
    config_type: type
    validate: Callable[[Any], None]
    result_type: type


JOB_KINDS = (
    JobKind("segment", SegmentationConfig, validate_config, SegmentationResult),
    JobKind("fit", ClusterFitConfig, validate_fit_config, ClusterFitResult),
    JobKind("canopy-height", CanopyHeightConfig, validate_canopy_config, CanopyHeightResult),
    JobKind("classify", ClassifyConfig, validate_classify_config, ClassifyResult),
)


def job_kind(config: Any) -> JobKind:
    """The kind whose config type ``config`` is."""
    for kind in JOB_KINDS:
        if isinstance(config, kind.config_type):
            return kind
    raise TypeError(f"No job kind runs a {type(config).__name__}.")


def kind_named(name: str) -> JobKind:
    """The kind called ``name`` (the worker's side of the pipe)."""
    for kind in JOB_KINDS:
        if kind.name == name:
            return kind
    raise KeyError(f"Unknown job kind {name!r}.")


class WorkerBugError(Exception):
    """An unexpected exception inside the worker (a bug): its type, message and traceback text."""

    def __init__(self, type_name: str, message: str, traceback_text: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.traceback_text = traceback_text


class WorkerDiedError(EngineError):
    """The worker process ended without an answer (killed, crashed, out of memory)."""


def worker_python() -> str:
    """QGIS's Python interpreter (``sys.executable`` is often the QGIS program itself)."""
    from ..interpreter import python_interpreter

    try:
        return python_interpreter()
    except RuntimeError as exc:
        raise EngineError(f"Cannot start TreeSeg's worker process: {exc}") from exc


def worker_environment() -> Dict[str, str]:
    """The environment for the worker: this one, with only the plugin on PYTHONPATH (``sys.path`` comes
    through the pipe) and nothing that would run code at start-up."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONINSPECT")}
    env["PYTHONPATH"] = PLUGIN_ROOT
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _job_line(config: Any) -> str:
    from ..dependency_folder import worker_sys_path

    return json.dumps({"protocol": PROTOCOL, "kind": job_kind(config).name, "config": dataclasses.asdict(config),
                       "sys_path": worker_sys_path([entry for entry in sys.path if entry])})


def _destination_folders(config: Any) -> List[str]:
    return [os.path.dirname(os.path.abspath(path)) for path in config.output_paths()]


def _missing_folders(folders: List[str]) -> List[str]:
    """The folders (and their missing parents) that do not exist yet, deepest first."""
    missing = []
    for folder in folders:
        probe = folder
        while probe and not os.path.exists(probe) and probe not in missing:
            missing.append(probe)
            probe = os.path.dirname(probe)
    return sorted(missing, key=len, reverse=True)


def death_message(returncode: int, stderr_tail: str) -> str:
    """What to tell the user when the worker ended with ``returncode`` and no answer."""
    code = returncode & 0xFFFFFFFF if sys.platform == "win32" else returncode
    if returncode < 0 and -returncode in _SIGNALS:
        what, fix = _SIGNALS[-returncode]
    elif code in _WINDOWS_CODES:
        what, fix = _WINDOWS_CODES[code]
    elif returncode < 0:
        what, fix = (f"was stopped by signal {-returncode}",
                     "Something outside TreeSeg ended the process. Run again.")
    else:
        what, fix = (f"exited with code {returncode} before finishing",
                     "Check the worker's last output below; if it names a missing or broken package, "
                     "reinstall TreeSeg's dependencies (see the README, 'Installing the dependencies').")
    last = f" Its last output: {stderr_tail.splitlines()[-1][:500]}" if stderr_tail else ""
    return (f"TreeSeg's worker process {what}; the run stopped and nothing was written. {fix}{last}")


def run_job(config: Any, progress: Optional[Progress] = None, python: Optional[str] = None,
            keep_for_s: Optional[float] = None) -> Any:
    """Run ``config`` in a worker process; returns its result or raises the engine's error.

    ``progress`` receives the worker's log lines, stages and percentages; its ``is_canceled`` is polled
    every :data:`POLL_S` seconds and a cancel reaches the worker's next check (one batch of tiles, one
    k-means step or one output block). With ``keep_for_s``, the run takes the worker kept from an earlier
    run (:mod:`.kept`) when there is one, and a worker that answered with a result or an engine error is
    kept for the next run, released after ``keep_for_s`` idle seconds; a canceled, failed or dead worker
    never is. A kept worker that ended before it started the job (killed while idle) is replaced by a new
    one for this job. Without ``keep_for_s``, the worker runs this job only.
    """
    progress = progress or Progress()
    kind = job_kind(config)
    kind.validate(config)
    folders = _destination_folders(config)
    missing = _missing_folders(folders)
    python = python or worker_python()
    environment = worker_environment()
    reused = kept.take(python, environment) if keep_for_s else None
    worker = reused or WorkerChannel(python, environment)
    outcome: Any = None
    kept_now = False
    stderr_tail = ""
    try:
        outcome = _converse(worker, config, kind, progress)
        if outcome is NOT_STARTED and worker is reused:  # the kept worker died while idle: the job in a new one
            fresh = WorkerChannel(python, environment)
            worker.stop()
            worker.discard()
            worker = fresh
            outcome = _converse(worker, config, kind, progress)
        outcome = None if outcome is NOT_STARTED else outcome
        if keep_for_s and (isinstance(outcome, kind.result_type) or type(outcome) is EngineError):
            kept.keep(worker, keep_for_s)
            kept_now = True
        else:
            worker.close_input()
            _await_exit(worker.process, progress)
    finally:
        returncode = 0 if kept_now else worker.stop()
        if not isinstance(outcome, kind.result_type) or returncode != 0:
            remove_leftovers(folders, worker.pid)
            _remove_empty(missing)
        if not kept_now:
            stderr_tail = worker.stderr_tail()
            worker.discard()
    if outcome is None:
        if progress.is_canceled():
            raise Canceled()
        raise WorkerDiedError(death_message(returncode, stderr_tail))
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _await_exit(process: subprocess.Popen, progress: Progress) -> None:
    """Give a worker whose job has ended up to :data:`EXIT_WAIT_S` to exit by itself (its interpreter may
    still be tearing down), so that its own exit code tells how it ended; a cancel ends the wait."""
    deadline = time.monotonic() + EXIT_WAIT_S
    while not progress.is_canceled() and time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=POLL_S)
            return


def _remove_empty(folders: List[str]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _converse(worker: WorkerChannel, config: Any, kind: JobKind, progress: Progress) -> Any:
    """Send the job, relay events until its result or error (the outcome) or until the worker's stdout
    closes (None; :data:`NOT_STARTED` when it closed before the job started); after a cancel, the worker gets
    :data:`CANCEL_GRACE_S` to answer before it is killed."""
    worker.send(_job_line(config))
    kill_at = None
    started = False
    while True:
        line = worker.next_line(POLL_S)
        if line is None:
            return None if started else NOT_STARTED
        event = _parse(line) if line else {}
        started = started or event.get("event") == "started"
        if event.get("event") == "commit?":
            worker.send("cancel" if progress.is_canceled() else "commit")
        elif event:
            outcome = _handle(event, kind, progress)
            if outcome is not None:
                return outcome
        if kill_at is None and progress.is_canceled():
            kill_at = time.monotonic() + CANCEL_GRACE_S
            worker.send("cancel")
        if kill_at is not None and time.monotonic() > kill_at:
            worker.process.kill()
            return Canceled()


def _parse(line: str) -> Dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _handle(event: Dict[str, Any], job: JobKind, progress: Progress) -> Any:
    """Relay one event to ``progress``; the final outcome for a result or error event, else None."""
    name = event.get("event")
    if name == "started":
        before = event.get("jobs_before", 0)
        kept_note = f"; kept from {before} earlier run{'s' * (before != 1)}" if before else ""
        progress.info(f"Running in a worker process (pid {event['pid']}, {event['python']}{kept_note}).")
    elif name == "info":
        progress.info(event["message"])
    elif name == "warning":
        progress.warning(event["message"])
    elif name == "stage":
        progress.stage(event["name"])
    elif name == "progress":
        progress.progress(event["percent"])
    elif name == "result":
        return job.result_type.from_json(event["result"])
    elif name == "error":
        if event["kind"] == "canceled":
            return Canceled(event["message"])
        if event["kind"] == "engine":
            return EngineError(event["message"])
        return WorkerBugError(event["type"], event["message"], event["traceback"])
    return None
