"""The plugin-private dependency folder: where it is, when it is complete, and how it reaches ``sys.path``.

``<QGIS profile>/python/treeseg-deps/py313-linux_x86_64``: one per Python version and platform (see
:func:`platform_key`). At plugin load, :func:`add_to_sys_path` puts a complete folder at the end of
``sys.path``: in QGIS's process the copies of QGIS and of other plugins (typing_extensions, filelock,
fsspec, sympy...) come first, so TreeSeg changes nothing they import. The worker process that runs the
engine (``worker/client.py``) runs only TreeSeg and gets the folder first (:func:`worker_sys_path`), so there a
too-old package elsewhere is superseded; ``installer.installed_version`` reports that view. When the swap
of a new install could not happen during the session (Windows keeps loaded DLLs locked), it is finished at
load, before anything is imported from the folder.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

FOLDER_NAME = "treeseg-deps"
COMPLETE_MARKER = ".treeseg-complete.json"
STAGING_SUFFIX = ".partial"
PENDING_SUFFIX = ".pending"
OLD_SUFFIX = ".old"


def platform_key(version: Optional[Tuple[int, int]] = None, platform: Optional[str] = None,
                 free_threaded: Optional[bool] = None) -> str:
    """``py313-linux_x86_64``: the Python version, ABI and platform the private folder is for.

    Compiled wheels (torch, safetensors) only load in the ``major.minor`` they were built for, so every
    Python version gets its own folder (``py312-win_amd64``, ``py314-macosx_11_0_arm64``, ...). A
    free-threaded build (``python3.13t``) has another ABI and gets ``py313t-...``. The arguments default to
    the running interpreter (they exist for tests).
    """
    major, minor = version or (sys.version_info.major, sys.version_info.minor)
    if free_threaded is None:
        free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    name = re.sub(r"[^A-Za-z0-9]+", "_", platform or sysconfig.get_platform()).strip("_").lower()
    return f"py{major}{minor}{'t' if free_threaded else ''}-{name}"


def deps_folder(base: Path) -> Path:
    """The private folder under ``base`` (normally ``<QGIS profile>/python``) for this Python and platform."""
    return Path(base) / FOLDER_NAME / platform_key()


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished install (its completion marker)."""
    return (Path(folder) / COMPLETE_MARKER).is_file()


def sibling(folder: Path, suffix: str) -> Path:
    """The folder beside ``folder`` with ``suffix`` added to its name (staging, pending, old)."""
    return folder.with_name(folder.name + suffix)


def promote(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by the complete ``staging`` folder; raises OSError when a file is locked."""
    old = sibling(folder, OLD_SUFFIX)
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    try:
        staging.rename(folder)
    except OSError:
        if old.exists() and not folder.exists():
            old.rename(folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def add_to_sys_path(folder: Path) -> bool:
    """Finish a pending install, then put a complete ``folder`` last on ``sys.path``; True if it is there."""
    folder = Path(folder)
    pending = sibling(folder, PENDING_SUFFIX)
    if is_complete(pending):
        with contextlib.suppress(OSError):  # still locked: the previous complete folder stays in use
            promote(pending, folder)
    if not is_complete(folder):
        return False
    entry = str(folder)
    if entry not in sys.path:
        sys.path.append(entry)
    return True


def worker_sys_path(entries: Sequence[str]) -> List[str]:
    """``entries`` (a ``sys.path``) as the worker process uses them: TreeSeg's private dependency folders
    first, the rest in their order."""
    private = [entry for entry in entries if Path(entry).parent.name == FOLDER_NAME]
    return private + [entry for entry in entries if entry not in private]
