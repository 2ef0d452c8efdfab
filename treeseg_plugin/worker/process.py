"""The worker process: ``python -m treeseg_plugin.worker.process`` runs the jobs read from stdin, one after
the other, until its input ends; the last backbone it loaded stays loaded for the next job
(engine/encode/runtime.py decides when it fits).

When its input ends it leaves without the interpreter's teardown (:func:`leave`). The pipe's messages are
described in :mod:`.client`. The worker keeps its real stdout for them and sends
everything else that is printed (by libraries, warnings, a fatal-error traceback) to stderr.
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import queue
import sys
import threading
import traceback
from typing import IO, Any, Callable, Dict, Sequence

from .client import PROTOCOL, kind_named

CANNOT_IMPORT = 3  # the exit code when the engine's packages cannot be imported


class PipeProgress:
    """One job's Progress interface over the pipe; canceled by a ``cancel`` line or the end of stdin."""

    def __init__(self, out: IO[str], lock: threading.Lock) -> None:
        self._out = out
        self._lock = lock
        self._canceled = threading.Event()
        self._answered = threading.Event()

    def send(self, event: str, **fields: Any) -> None:
        with self._lock:
            self._out.write(json.dumps({"event": event, **fields}) + "\n")
            self._out.flush()

    def answer(self) -> None:
        """The parent answered ``commit``."""
        self._answered.set()

    def cancel(self) -> None:
        self._canceled.set()
        self._answered.set()

    def info(self, message: str) -> None:
        self.send("info", message=message)

    def warning(self, message: str) -> None:
        self.send("warning", message=message)

    def stage(self, name: str) -> None:
        self.send("stage", name=name)

    def progress(self, percent: float) -> None:
        self.send("progress", percent=percent)

    def is_canceled(self) -> bool:
        return self._canceled.is_set()

    def may_commit(self) -> bool:
        """Ask the parent, so that a cancel sent while the last stage ran still counts."""
        if self.is_canceled():
            return False
        self.send("commit?")
        self._answered.wait()
        return not self.is_canceled()


def _error(kind: str, error: BaseException) -> Dict[str, str]:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {"kind": kind, "type": type(error).__name__, "message": str(error), "traceback": text}


def _missing_packages(error: BaseException) -> str:
    return (f"TreeSeg's worker process cannot import its Python packages ({type(error).__name__}: {error}). "
            "Install them with the plugin's installer (the message bar's Install..., or Raster > Tree "
            "Segmentation) or see the README, section 'Installing the dependencies'.")


def extend_sys_path(entries: Sequence[str]) -> None:
    """Add the parent's ``sys.path`` entries after the plugin root, in the order sent (TreeSeg's private
    dependency folder first)."""
    for entry in reversed(entries):
        if entry not in sys.path:
            sys.path.insert(1, entry)


def engine_functions() -> Dict[str, Callable[[Any, Any], Any]]:
    """Each job kind's engine function (imports torch and GDAL: in the worker only)."""
    from ..engine.runs.canopy_height import run_canopy_height
    from ..engine.runs.classify import run_classify
    from ..engine.runs.fit import run_fit_cluster_model
    from ..engine.runs.segmentation import run_segmentation

    return {"segment": run_segmentation, "fit": run_fit_cluster_model, "canopy-height": run_canopy_height,
            "classify": run_classify}


def run(job: Dict[str, Any], progress: PipeProgress) -> int:
    """Run one job; sends the result or the error; returns the exit code."""
    extend_sys_path(job.get("sys_path", []))
    kind = kind_named(job.get("kind", ""))
    try:
        from ..engine import Canceled, EngineError
        from ..engine.encode.runtime import keep_models_loaded
        runner = engine_functions()[kind.name]
        keep_models_loaded()  # the next job in this process may use the same backbone
    except (ImportError, OSError) as exc:  # OSError: a broken native library (libtorch, GDAL)
        progress.send("error", **{**_error("engine", exc), "message": _missing_packages(exc)})
        return CANNOT_IMPORT
    try:
        result = runner(kind.config_type(**job["config"]), progress)
    except Canceled as exc:
        progress.send("error", **_error("canceled", exc))
        return 1
    except EngineError as exc:
        progress.send("error", **_error("engine", exc))
        return 1
    except Exception as exc:  # a bug: the parent reports it with this traceback
        progress.send("error", **_error("bug", exc))
        return 1
    progress.send("result", result=result.to_json())
    return 0


def read_commands(commands: IO[str], out: IO[str], jobs: queue.Queue) -> None:
    """Read stdin until its end: each job line becomes a job with its own progress, ``commit`` and
    ``cancel`` go to the job that runs; the end of input cancels it and ends the queue."""
    lock = threading.Lock()
    current = PipeProgress(out, lock)
    for line in commands:
        text = line.strip()
        if text.startswith("{"):
            current = PipeProgress(out, lock)
            jobs.put((text, current))
        elif text == "commit":
            current.answer()
        elif text == "cancel":
            current.cancel()
    current.cancel()
    jobs.put(None)


def main() -> int:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints of native code go to stderr
    sys.stdout = sys.stderr
    faulthandler.enable()
    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=read_commands, args=(sys.stdin, out, jobs), daemon=True).start()
    code, jobs_before = 0, 0
    while (item := jobs.get()) is not None:
        line, progress = item
        try:
            job = json.loads(line)
        except ValueError:
            job = {}
        if job.get("protocol") != PROTOCOL:
            sys.stderr.write(f"Unknown job protocol {job.get('protocol')!r}; this worker speaks {PROTOCOL}.\n")
            return 2
        progress.send("started", pid=os.getpid(), python=sys.executable, jobs_before=jobs_before)
        code = run(job, progress)
        if code == CANNOT_IMPORT:  # the next job would fail the same way: a fresh worker may not
            return code
        jobs_before += 1
        gc.collect()  # the job's arrays, before the worker waits (the kept backbone stays)
    return code


def leave(code: int) -> None:
    """End the process with ``code`` at once: every job has answered and closed its files, and the interpreter's
    teardown (finalising torch's and GDAL's modules) would add 0.4-0.6 s to every run (docs/benchmarks.md,
    "The fixed cost per qgis_process run")."""
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
