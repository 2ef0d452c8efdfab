"""User-facing engine errors: every failure the user can act on is an :class:`EngineError`.

Messages start with a stable phrase naming the problem ("Cannot open ... as a raster", "Cannot write
...", "Out of memory", ...) and end with the fix; ``docs/troubleshooting-run.md`` lists them.
:func:`write_error` turns an operating-system or GDAL write failure into such a message, choosing the
fix from the error number (full disk, no permission, vanished folder); :func:`resource_errors` does both
translations around a whole run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from typing import Iterator, Optional


class EngineError(Exception):
    """A failure the user can fix; the message names the problem and the fix."""


class Canceled(EngineError):  # noqa: N818 - public API name
    """The run was canceled by the user; everything it wrote has been removed."""

    def __init__(self, message: str = "Canceled by the user; no output was written.") -> None:
        super().__init__(message)


_OOM_WORDS = ("out of memory", "can't allocate memory", "defaultcpuallocator")  # CUDA / MPS, PyTorch's CPU allocator


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure: Python's MemoryError, or PyTorch's on any device
    (torch.cuda.OutOfMemoryError is a RuntimeError saying "CUDA out of memory")."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(word in str(exc).lower() for word in _OOM_WORDS))


def memory_error(exc: BaseException) -> EngineError:
    """The message for an allocation failure that nothing could work around (a batch of one included)."""
    detail = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    on_gpu = any(name in detail.lower() for name in ("cuda", "mps"))
    last = "or choose the CPU as the device." if on_gpu else "or close other programs."
    return EngineError(f"Out of memory ({detail}). Lower the batch size, the tile size or the maximum k-means "
                       f"samples, use a larger patch stride or a smaller model, {last}")


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
_FULL_WORDS = ("no space left", "disk full", "is full", "file too large", "quota")
_LOW_SPACE = 16 * 1024 * 1024  # bytes: below this, a write error without a reason is taken for a full disk


def _low_space(folder: Optional[str]) -> bool:
    try:
        return bool(folder) and shutil.disk_usage(folder).free < _LOW_SPACE
    except OSError:
        return False


def write_fix(exc: BaseException, folder: Optional[str]) -> str:
    """The fix for a failed write of a file in ``folder`` (``exc``: an OSError or a GDAL RuntimeError)."""
    number = getattr(exc, "errno", None)
    text = str(exc).lower()
    if folder and not os.path.isdir(folder):
        return (f"The output folder '{folder}' is gone (deleted, or its drive or network share was "
                "disconnected) while the run was writing. Make it available again and run again.")
    if number in _FULL or any(word in text for word in _FULL_WORDS) or _low_space(folder):
        return ("The disk is full (or the file is larger than the file system or quota allows). Free disk "
                "space or choose an output folder on another disk.")
    if number in _DENIED or "permission denied" in text or "read-only file system" in text:
        return "You cannot write in that folder. Choose an output folder you can write to."
    return "Check the free disk space and the output folder's permissions, or choose another output folder."


def write_error(what: str, exc: BaseException, folder: Optional[str]) -> EngineError:
    """``Cannot write <what>: <reason>. <fix>`` as an :class:`EngineError`."""
    reason = str(exc).strip().rstrip(".") or type(exc).__name__
    return EngineError(f"Cannot write {what}: {reason}. {write_fix(exc, folder)}")


@contextlib.contextmanager
def resource_errors(what: str, folder: Optional[str]) -> Iterator[None]:
    """Around a run: an allocation failure becomes :func:`memory_error`, a full disk while writing ``what``
    in ``folder`` becomes :func:`write_error`; anything else (a bug included) passes unchanged."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise memory_error(exc) from exc
    except OSError as exc:
        if exc.errno not in _FULL:
            raise
        raise write_error(what, exc, folder) from exc
