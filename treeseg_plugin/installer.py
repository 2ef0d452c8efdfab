"""The dependency installer's pip steps, free of QGIS so that they can be tested with plain pip.

The engine's packages (torch, safetensors, huggingface_hub; numpy and GDAL come with QGIS) are installed
with pip into a plugin-private folder (:mod:`.dependency_folder`: one per Python version and platform, and
how it reaches ``sys.path``), never into QGIS's own Python:

* pip runs in a subprocess (an argument list, no shell) as ``python -m pip install --target <staging>
  --only-binary=:all: -c constraints.txt ...``, with QGIS's own interpreter (:mod:`.interpreter`). The
  constraints file pins the packages QGIS already ships (numpy above all) at their installed versions, so
  pip never replaces QGIS's numpy (1.x or 2.x) nor builds anything from source.
* pip installs into a fresh staging folder. Only when it succeeds are the distributions that QGIS already
  has at the same version removed from it (the pinned ones always), a completion marker written and the
  staging folder swapped in for the private folder. On failure or cancel the staging folder is deleted:
  nothing half-installed ever reaches ``sys.path``.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import queue
import re
import shutil
import subprocess  # nosec B404
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Dict, Iterable, List, Optional, Tuple

from .dependency_folder import (
    COMPLETE_MARKER,
    PENDING_SUFFIX,
    STAGING_SUFFIX,
    platform_key,
    promote,
    sibling,
    worker_sys_path,
)
from .interpreter import python_interpreter

CPU = "cpu"
CUDA = "cuda"
TORCH_INDEXES = {
    CPU: "https://download.pytorch.org/whl/cpu",
    CUDA: "https://download.pytorch.org/whl/cu128",
}
PYPI = "https://pypi.org/simple"


@dataclass(frozen=True)
class Requirement:
    """A distribution the engine needs, and the oldest version it works with."""

    distribution: str
    minimum: str

    @property
    def specifier(self) -> str:
        return f"{self.distribution}>={self.minimum}"


REQUIREMENTS = (
    Requirement("torch", "2.1"),
    Requirement("safetensors", "0.4"),
    Requirement("huggingface_hub", "0.23"),
)

# Packages that QGIS or its bundled plugins ship: compiled ones and their close companions. Pinned at the
# installed version whenever importable, so pip keeps what QGIS was built against.
SHIPPED_WITH_QGIS = (
    "numpy", "scipy", "pandas", "shapely", "pyproj", "matplotlib", "pillow", "GDAL", "h5py", "netCDF4",
    "lxml", "psycopg2", "PyYAML", "MarkupSafe", "Jinja2", "requests", "urllib3", "certifi", "six",
    "python-dateutil",
)

VersionOf = Callable[[str], Optional[str]]
LineSink = Callable[[str], None]


def _worker_distribution(distribution: str) -> Optional[importlib.metadata.Distribution]:
    """The installed ``distribution`` that the worker process imports (:func:`worker_sys_path`), or None."""
    return next(iter(importlib.metadata.distributions(name=distribution, path=worker_sys_path(sys.path))), None)


def installed_version(distribution: str) -> Optional[str]:
    """The version of ``distribution`` that the worker process imports, or None."""
    found = _worker_distribution(distribution)
    return None if found is None else found.version


def version_tuple(version: str) -> Tuple[int, ...]:
    """Leading numeric release parts: "2.13.0+cpu" -> (2, 13, 0), "1.7rc1" -> (1, 7)."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() < len(piece):
            break
    return tuple(parts)


@dataclass(frozen=True)
class Problem:
    """A requirement that is missing (``installed`` is None) or older than its minimum."""

    requirement: Requirement
    installed: Optional[str]

    def __str__(self) -> str:
        if self.installed is None:
            return f"{self.requirement.distribution} is not installed"
        return f"{self.requirement.distribution} {self.installed} is older than {self.requirement.minimum}"


def find_problems(requirements: Iterable[Requirement] = REQUIREMENTS,
                  version_of: VersionOf = installed_version) -> List[Problem]:
    """The requirements that are missing or too old; empty when all are fine."""
    problems = []
    for requirement in requirements:
        version = version_of(requirement.distribution)
        if version is None or version_tuple(version) < version_tuple(requirement.minimum):
            problems.append(Problem(requirement, version))
    return problems


def constraints(shipped: Iterable[str] = SHIPPED_WITH_QGIS,
                version_of: VersionOf = installed_version) -> Dict[str, str]:
    """``{distribution: installed version}`` for every shipped package that is installed."""
    pins = {}
    for distribution in shipped:
        version = version_of(distribution)
        if version:
            pins[distribution] = version
    return pins


def write_constraints(path: Path, pins: Dict[str, str]) -> Path:
    """Write a pip constraints file pinning ``pins`` exactly."""
    lines = ["# Written by the TreeSeg installer: packages QGIS ships stay at their installed versions."]
    lines += [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda item: item[0].lower())]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


@dataclass
class InstallPlan:
    """What to install where; ``find_links`` switches pip to a local wheel folder with ``--no-index``."""

    folder: Path
    packages: Tuple[str, ...] = tuple(r.specifier for r in REQUIREMENTS)
    build: str = CPU
    python: str = ""
    pins: Dict[str, str] = field(default_factory=constraints)
    find_links: Optional[Path] = None

    def __post_init__(self) -> None:
        if self.build not in TORCH_INDEXES:
            raise ValueError(f"Unknown PyTorch build '{self.build}': use '{CPU}' or '{CUDA}'.")
        self.folder = Path(self.folder)


def pip_arguments(plan: InstallPlan, target: Path, constraints_file: Path) -> List[str]:
    """The full pip command line for ``plan``, installing into ``target``."""
    arguments = [plan.python or python_interpreter(), "-m", "pip", "install", "--disable-pip-version-check",
                 "--no-input", "--no-warn-script-location", "--progress-bar", "off",
                 "--target", str(target), "--only-binary=:all:", "-c", str(constraints_file)]
    if plan.find_links is not None:
        arguments += ["--no-index", "--find-links", str(plan.find_links)]
    else:
        arguments += ["--index-url", TORCH_INDEXES[plan.build], "--extra-index-url", PYPI]
    return arguments + list(plan.packages)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _remove_distribution(target: Path, dist_info: Path) -> None:
    """Delete the files listed in a distribution's RECORD inside ``target``, then its empty folders."""
    record = dist_info / "RECORD"
    paths = []
    if record.is_file():
        for line in record.read_text(encoding="utf-8").splitlines():
            relative = line.split(",")[0]
            if relative:
                paths.append((target / relative).resolve())
    root = target.resolve()
    for path in paths:
        if root in path.parents and path.is_file():
            path.unlink()
    folders = sorted({parent for path in paths for parent in path.parents if root in parent.parents},
                     key=lambda folder: len(folder.parts), reverse=True)
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    shutil.rmtree(dist_info, ignore_errors=True)


def prune_shipped(target: Path, version_of: VersionOf = installed_version) -> List[str]:
    """Remove from ``target`` every distribution already installed elsewhere at the same version."""
    removed = []
    for dist_info in sorted(Path(target).glob("*.dist-info")):
        name, _, version = dist_info.name[: -len(".dist-info")].partition("-")
        if version and version_of(name) == version:
            _remove_distribution(Path(target), dist_info)
            removed.append(f"{_normalise(name)}=={version}")
    return removed


@dataclass
class InstallResult:
    ok: bool
    message: str
    returncode: Optional[int] = None
    pending: bool = False  # installed, but the swap waits for the next QGIS start
    log: List[str] = field(default_factory=list)


def install(plan: InstallPlan, on_line: LineSink = print, is_canceled: Callable[[], bool] = lambda: False,
            version_of: VersionOf = installed_version) -> InstallResult:
    """Run pip for ``plan``, streaming its output to ``on_line``; see the module docstring for the steps."""
    log: List[str] = []

    def emit(line: str) -> None:
        log.append(line)
        on_line(line)

    staging = sibling(plan.folder, STAGING_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    constraints_file = write_constraints(plan.folder.parent / f"{plan.folder.name}-constraints.txt", plan.pins)
    try:
        arguments = pip_arguments(plan, staging, constraints_file)
    except RuntimeError as error:
        emit(str(error))
        return InstallResult(False, str(error), log=log)
    emit("$ " + " ".join(arguments))
    pins = ", ".join(f"{k}=={v}" for k, v in sorted(plan.pins.items()))
    emit(f"Constraints ({constraints_file}): {pins or 'none'}")
    returncode = _run_pip(arguments, emit, is_canceled)
    if returncode is None or returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        if returncode is None:
            message = "Installation canceled; nothing was installed."
        else:
            message = (f"pip failed (exit code {returncode}); nothing was installed. The pip log above says "
                       "why (no network, no wheel for this Python or platform, a version conflict...).")
        emit(message)
        return InstallResult(False, message, returncode, log=log)
    removed = prune_shipped(staging, version_of)
    if removed:
        emit("Kept QGIS's own copies of: " + ", ".join(removed))
    (staging / COMPLETE_MARKER).write_text(json.dumps({
        "packages": list(plan.packages), "build": plan.build, "pins": plan.pins,
        "python": platform_key(), "installed": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1), encoding="utf-8")
    try:
        promote(staging, plan.folder)
        pending = False
    except OSError:
        pending_folder = sibling(plan.folder, PENDING_SUFFIX)
        shutil.rmtree(pending_folder, ignore_errors=True)
        staging.rename(pending_folder)
        pending = True
    later = " (finished at the next QGIS start)" if pending else ""
    message = f"Installed into {plan.folder}{later}. Restart QGIS to use the new packages."
    emit(message)
    return InstallResult(True, message, 0, pending, log)


def _run_pip(arguments: List[str], emit: LineSink, is_canceled: Callable[[], bool]) -> Optional[int]:
    """pip's exit code, or None when canceled (pip is then terminated).

    A thread reads pip's output, so cancel is honoured within a fraction of a second even while pip is
    silent (downloading a large wheel).
    """
    environment = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1", PIP_NO_INPUT="1")
    try:  # the argument list comes from pip_arguments; no shell
        process = subprocess.Popen(  # noqa: S603  # nosec B603  # pip_arguments, no shell
            arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            encoding="utf-8", errors="replace", env=environment)
    except OSError as error:
        emit(f"Could not start pip: {error}")
        return 1
    with process:
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        canceled = False
        while True:
            if not canceled and is_canceled():
                canceled = True
                process.terminate()
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            if not canceled:
                emit(line)
        reader.join()
        returncode = process.wait()
    return None if canceled else returncode


def _read_lines(stream: IO[str], lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip())
    lines.put(None)


def packages_to_install(folder: Path, requirements: Iterable[Requirement] = REQUIREMENTS,
                        version_of: VersionOf = installed_version) -> Tuple[str, ...]:
    """Requirements that are missing or too old, plus those the private folder provides now.

    The new folder replaces the old one, so what it already holds must be installed again.
    """
    folder = Path(folder).resolve()
    broken = {problem.requirement for problem in find_problems(requirements, version_of)}
    return tuple(requirement.specifier for requirement in requirements
                 if requirement in broken or _installed_in(requirement.distribution, folder))


def _installed_in(distribution: str, folder: Path) -> bool:
    """Whether the worker process imports ``distribution`` from ``folder``."""
    found = _worker_distribution(distribution)
    if found is None:
        return False
    location = Path(str(found.locate_file(""))).resolve()
    return location == folder or folder in location.parents
