"""QGIS's own Python interpreter, for ``-m pip`` and for the engine's worker processes.

Inside QGIS ``sys.executable`` is often the QGIS binary (``/usr/bin/qgis``, ``C:\\OSGeo4W\\bin\\qgis-bin.exe``,
``QGIS.app/Contents/MacOS/QGIS``), so :func:`python_interpreter` tries the interpreters of that
installation (see :func:`interpreter_candidates`: next to the executable, OSGeo4W's ``apps/Python3XY``, the
macOS bundle's ``Contents/MacOS/bin`` and ``Python.framework``, ``sys.prefix`` / ``sys.exec_prefix``), then
``python3.X`` on the PATH, and accepts the first one whose ``major.minor`` is the running Python's.
"""

from __future__ import annotations

import shutil
import subprocess  # nosec B404
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple


def interpreter_candidates(executable: str, prefixes: Sequence[str], version: Tuple[int, int],
                           windows: bool) -> List[str]:
    """Where the Python of the installation that runs ``executable`` may be, most likely first.

    Covers, besides a plain ``python3.X``:

    * Linux and the like: ``/usr/bin/qgis`` -> ``/usr/bin/python3.X`` (``sys.prefix``/bin);
    * Windows (OSGeo4W and the standalone installers): ``<root>/bin/qgis-bin.exe`` -> ``<root>/bin/python3.exe``
      or ``python.exe``, and ``<root>/apps/Python3XY/python.exe`` (also ``sys.prefix``);
    * macOS: ``QGIS.app/Contents/MacOS/QGIS`` -> ``Contents/MacOS/bin/python3.X`` or
      ``Contents/Frameworks/Python.framework/Versions/3.X/bin/python3.X``.

    Paths only: nothing is checked for existence or run here (see :func:`python_interpreter`).
    """
    major, minor = version
    if windows:
        names = ["python.exe", "python3.exe", f"python{major}.{minor}.exe", f"python{major}{minor}.exe"]
    else:
        names = [f"python{major}.{minor}", f"python{major}", "python"]
    exe = Path(executable)
    here = exe.parent
    folders = [here]
    if windows:
        root = here.parent  # <root>/bin/qgis-bin.exe
        folders += [root / "apps" / f"Python{major}{minor}", root / "bin"]
    else:
        folders += [here / "bin"]  # macOS bundle: Contents/MacOS/bin
        framework = here.parent / "Frameworks" / "Python.framework" / "Versions" / f"{major}.{minor}"
        folders += [framework / "bin"]
    for prefix in prefixes:
        folders += [Path(prefix), Path(prefix) / ("Scripts" if windows else "bin"), Path(prefix) / "bin"]
    candidates = [str(exe)] if exe.name.lower().startswith("python") else []
    candidates += [str(folder / name) for folder in folders for name in names]
    return list(dict.fromkeys(candidates))


def python_interpreter(executable: Optional[str] = None, prefixes: Optional[Sequence[str]] = None,
                       version: Optional[Tuple[int, int]] = None,
                       run: Callable[[str], Optional[Tuple[int, int]]] | None = None,
                       windows: Optional[bool] = None) -> str:
    """The Python interpreter of the installation that runs this code (QGIS's own), for ``-m pip`` and
    for worker processes; ``python_interpreter()`` looks for the running one.

    Tries :func:`interpreter_candidates` that exist, then ``python3.X`` / ``python3`` on the PATH, and
    returns the first that reports the running ``major.minor``. Raises RuntimeError when none does.
    """
    executable = executable or sys.executable
    prefixes = tuple(dict.fromkeys(prefixes if prefixes is not None else (sys.prefix, sys.exec_prefix)))
    major, minor = version or (sys.version_info.major, sys.version_info.minor)
    windows = sys.platform == "win32" if windows is None else windows
    probe = run or _interpreter_version
    candidates = [path for path in interpreter_candidates(executable, prefixes, (major, minor), windows)
                  if Path(path).is_file()]
    candidates += [found for found in (shutil.which(f"python{major}.{minor}"), shutil.which(f"python{major}"))
                   if found]
    for candidate in dict.fromkeys(candidates):
        if probe(candidate) == (major, minor):
            return candidate
    raise RuntimeError(f"No Python {major}.{minor} interpreter found next to {executable} or in "
                       f"{', '.join(prefixes)}; install the packages by hand (see the README).")


def _interpreter_version(candidate: str) -> Optional[Tuple[int, int]]:
    try:  # fixed arguments; the interpreter is a file found on disk
        done = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments, a Python found on disk
            [candidate, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    numbers = done.stdout.split()
    if done.returncode != 0 or len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        return None
    return int(numbers[0]), int(numbers[1])
