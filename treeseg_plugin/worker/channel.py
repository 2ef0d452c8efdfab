"""One started worker process and its pipe: the process, a thread that reads its stdout into a queue, and
its stderr kept in a temporary file (quoted when it dies). :mod:`.client` speaks the protocol over it;
:mod:`.kept` holds one between runs."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess  # nosec B404
import tempfile
import threading
import time
from typing import IO, Dict, Optional

from ..engine.errors import EngineError

WORKER_MODULE = "treeseg_plugin.worker.process"
STDERR_TAIL = 2000  # characters of the worker's stderr quoted when it dies
CLOSE_WAIT_S = 5.0  # a released worker gets this long to exit after its stdin closed before it is killed


def _read_events(stream: IO[str], events: queue.Queue) -> None:
    for line in stream:
        events.put(line)
    events.put(None)


class WorkerChannel:
    """A worker process started with ``python`` and ``environment``; lines to its stdin, events from its stdout."""

    def __init__(self, python: str, environment: Dict[str, str]) -> None:
        self.python = python
        self.environment = environment
        self.events: queue.Queue = queue.Queue()  # stdout lines; None once stdout closed
        self.stdout_closed = False
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the worker: discard()
        try:
            self.process = subprocess.Popen(  # noqa: S603  # nosec B603: fixed arguments, QGIS's own Python
                [python, "-m", WORKER_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                env=environment, text=True, encoding="utf-8",
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except OSError as exc:
            self._stderr.close()
            raise EngineError(f"Cannot start TreeSeg's worker process with the Python interpreter '{python}': "
                              f"{exc}. Check that QGIS's Python is installed completely (see the README, "
                              "'Installing the dependencies').") from exc
        self._reader = threading.Thread(target=_read_events, args=(self.process.stdout, self.events), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process runs and its stdout is open (a worker killed while idle is not)."""
        return self.process.poll() is None and not self.stdout_closed

    def next_line(self, timeout: float) -> Optional[str]:
        """The next stdout line; "" when none came within ``timeout``; None once stdout has closed."""
        if self.stdout_closed:
            return None
        try:
            line = self.events.get(timeout=timeout)
        except queue.Empty:
            return ""
        self.stdout_closed = line is None
        return line

    def send(self, command: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a dead worker: its exit code and stderr tell why
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()

    def close_input(self) -> None:
        """End the worker's input: between jobs it exits; during one, the job is canceled."""
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()

    def stop(self) -> int:
        """Kill the process if it still runs, reap it and close the pipes; its exit code."""
        if self.process.poll() is None:
            self.process.kill()
        returncode = self.process.wait()
        self._reader.join(timeout=10)
        self.close_input()
        with contextlib.suppress(OSError, ValueError):
            self.process.stdout.close()
        return returncode

    def release(self) -> None:
        """End an idle worker: its input closed, up to :data:`CLOSE_WAIT_S` to exit by itself, then killed."""
        self.close_input()
        deadline = time.monotonic() + CLOSE_WAIT_S
        while self.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.1)
        self.stop()
        self._stderr.close()

    def stderr_tail(self) -> str:
        """The last :data:`STDERR_TAIL` characters the worker wrote to stderr."""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - STDERR_TAIL))
        return self._stderr.read().decode("utf-8", "replace").strip()

    def discard(self) -> None:
        """Free what is left after :meth:`stop` (the stderr file)."""
        self._stderr.close()
