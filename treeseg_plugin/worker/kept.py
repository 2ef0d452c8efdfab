"""The worker kept between runs in one QGIS session, with its last model loaded (the worker keeps the
backbone: engine/encode/runtime.py).

At most one idle worker is kept. A run takes it (a second run meanwhile starts its own); a run that ended
with a result or an engine error gives it back, which releases any other kept one. It is released after
its idle time, at plugin unload (:func:`release`) and when Python exits; a released worker's input closes,
so it exits and its memory returns to the system.
"""

from __future__ import annotations

import atexit
import threading
from typing import Dict, Optional

from .channel import WorkerChannel

_lock = threading.Lock()
_kept: Optional[WorkerChannel] = None
_timer: Optional[threading.Timer] = None


def take(python: str, environment: Dict[str, str]) -> Optional[WorkerChannel]:
    """The kept worker when it is alive and was started with ``python`` and ``environment``; None otherwise
    (a kept worker that does not fit is released)."""
    global _kept
    with _lock:
        worker, _kept = _kept, None
        _cancel_timer()
    if worker is None:
        return None
    if worker.alive() and worker.python == python and worker.environment == environment:
        return worker
    worker.release()
    return None


def keep(worker: WorkerChannel, idle_s: float) -> None:
    """Keep ``worker`` for the next run; released after ``idle_s`` seconds without one."""
    global _kept, _timer
    with _lock:
        previous, _kept = _kept, worker
        _cancel_timer()
        _timer = threading.Timer(idle_s, _release_if_idle, args=(worker,))
        _timer.daemon = True
        _timer.start()
    if previous is not None:
        previous.release()


def release() -> None:
    """Release the kept worker now (plugin unload, Python's exit)."""
    global _kept
    with _lock:
        worker, _kept = _kept, None
        _cancel_timer()
    if worker is not None:
        worker.release()


def kept_pid() -> Optional[int]:
    """The process id of the kept worker, None when none is kept."""
    with _lock:
        return None if _kept is None else _kept.pid


def _release_if_idle(worker: WorkerChannel) -> None:
    global _kept
    with _lock:
        if _kept is not worker:  # taken by a run meanwhile
            return
        _kept = None
    worker.release()


def _cancel_timer() -> None:
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None


atexit.register(release)
