"""TreeSeg's Diagnostics report: versions, libraries, hardware and folders, to paste into a bug report.

The one source of the report for the ``treeseg:diagnostics`` algorithm and the Diagnostics dialog.
:func:`collect` gives ``(section, key, value)`` entries; :func:`as_text` and :func:`as_html` format them.
Every section is gathered on its own, so a broken library shows up as a line instead of a failed report.
torch is imported only here, on demand, and a missing torch is reported, not raised.

No secret enters the report: the Hugging Face token is never read, only whether a source for it is set.
"""

from __future__ import annotations

import html
import os
import platform
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, List, Optional, Set, Tuple

from . import dependency_folder, installer, interpreter
from . import settings as treeseg_settings
from .nvidia_gpus import nvidia_gpus

Entry = Tuple[str, str, str]  # (section, key, value)
Items = List[Tuple[str, str]]

NOT_AVAILABLE = "not available"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
MAX_WEIGHT_FILES = 50
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS",
                    "CUDA_VISIBLE_DEVICES")
# BLAS, LAPACK and OpenMP runtimes: libblas, libopenblas, libflexiblas, liblapack, libmkl_*, libgomp, libiomp5,
# libomp (also the scipy_openblas that numpy wheels bundle).
_MATH_LIBRARY = re.compile(r"blas|lapack|mkl|gomp|iomp|^libomp", re.IGNORECASE)
PLUGIN_ROOT = Path(__file__).resolve().parent.parent


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _value(read: Callable[[], object]) -> str:
    """``read()`` as text, or the error it raised (one failing query never hides the others)."""
    try:
        return str(read())
    except Exception as error:
        return f"error ({type(error).__name__}: {error})"


def _treeseg() -> Items:
    from .version import plugin_version

    return [("version", plugin_version()), ("plugin folder", str(PLUGIN_ROOT))]


def _qgis() -> Items:
    from qgis.core import Qgis, QgsApplication
    from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR, qVersion

    return [("QGIS", Qgis.version()), ("application", QgsApplication.platform()),
            ("Qt", f"{qVersion()} (built against {QT_VERSION_STR})"), ("PyQt", PYQT_VERSION_STR)]


def _python() -> Items:
    return [("version", " ".join(sys.version.split())),
            ("executable", sys.executable),
            ("interpreter for workers and pip", _value(interpreter.python_interpreter)),
            ("prefix", sys.prefix)]


def _platform() -> Items:
    items = [("platform", platform.platform()), ("machine", platform.machine())]
    os_release = getattr(platform, "freedesktop_os_release", None)  # Python 3.10+
    if sys.platform.startswith("linux") and os_release is not None:
        items.append(("distribution", _value(lambda: os_release().get("PRETTY_NAME", "unknown"))))
    return items


def _libraries() -> Items:
    def numpy_version() -> str:
        import numpy

        return f"{numpy.__version__} ({Path(numpy.__file__).parent})"

    def gdal_version() -> str:
        from osgeo import gdal

        return gdal.VersionInfo("RELEASE_NAME")

    items = [("numpy", _value(numpy_version)), ("GDAL", _value(gdal_version))]
    for distribution in ("safetensors", "huggingface_hub"):
        items.append((distribution, installer.installed_version(distribution) or "not installed"))
    return items


def torch_items() -> Items:
    """The installed torch: version, CUDA build, what it can use, and the NVIDIA GPUs it may miss (imports torch)."""
    try:
        import torch
    except ImportError as error:
        return [("torch", f"not installed ({type(error).__name__}: {error})")]
    except Exception as error:  # a broken install raises OSError or RuntimeError
        return [("torch", f"does not import ({type(error).__name__}: {error})")]
    cuda = _value(lambda: _yes_no(torch.cuda.is_available()))
    items = [("version", torch.__version__), ("location", str(Path(torch.__file__).parent)),
             ("CUDA build", torch.version.cuda or "none (CPU-only build)"), ("CUDA available", cuda)]
    if cuda == "yes":
        items.append(("cuDNN", _value(lambda: torch.backends.cudnn.version())))
        for index in range(torch.cuda.device_count()):
            items.append((f"CUDA device {index}", _value(lambda index=index: _cuda_device(torch, index))))
    gpus = nvidia_gpus()
    items.append(("NVIDIA GPUs (nvidia-smi)", "; ".join(gpus) or "none"))
    if gpus and cuda != "yes":
        why = "is a CPU-only build" if not torch.version.cuda else "cannot use CUDA (driver missing or too old?)"
        items.append(("WARNING", f"an NVIDIA GPU is present but this torch {why}: TreeSeg runs on the CPU. "
                                 "Install PyTorch's CUDA build (README, Installing the dependencies)."))
    mps = getattr(torch.backends, "mps", None)
    items.append(("MPS available", _yes_no(mps is not None and mps.is_available())))
    items.append(("CPU capability", _value(lambda: torch.backends.cpu.get_cpu_capability())))
    items.append(("threads", f"{torch.get_num_threads()} (inter-op {torch.get_num_interop_threads()})"))
    return items


def _cuda_device(torch: ModuleType, index: int) -> str:
    properties = torch.cuda.get_device_properties(index)
    return (f"{properties.name}, {properties.total_memory / 2**30:.1f} GiB, "
            f"compute capability {properties.major}.{properties.minor}")


def loaded_math_libraries(maps: str) -> List[str]:
    """The BLAS/LAPACK/OpenMP libraries named in ``/proc/<pid>/maps`` text, each path once, in load order."""
    paths = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/") and _MATH_LIBRARY.search(Path(fields[5]).name):
            paths.append(fields[5])
    return list(dict.fromkeys(paths))


def _math_libraries() -> Items:
    maps = Path("/proc/self/maps")
    if not sys.platform.startswith("linux") or not maps.is_file():
        return [("loaded libraries", f"{NOT_AVAILABLE} on {platform.system()}")]
    paths = loaded_math_libraries(maps.read_text(encoding="utf-8", errors="replace"))
    items = [("loaded", path) for path in paths] or [("loaded", "none")]
    return items + [(name, value) for name in THREAD_VARIABLES if (value := os.environ.get(name)) is not None]


def cpu_model_and_flags(cpuinfo: str) -> Tuple[Optional[str], Optional[Set[str]]]:
    """The first ``model name`` and ``flags`` of ``/proc/cpuinfo`` text; None for what it lacks."""
    model = flags = None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = set(value.split())
    return model, flags


def _cpu() -> Items:
    cpuinfo = Path("/proc/cpuinfo")
    model, flags = None, None
    if sys.platform.startswith("linux") and cpuinfo.is_file():
        model, flags = cpu_model_and_flags(cpuinfo.read_text(encoding="utf-8", errors="replace"))
    items = [("model", model or platform.processor() or "unknown"), ("logical CPUs", str(os.cpu_count()))]
    if hasattr(os, "sched_getaffinity"):
        items.append(("usable by this process", str(len(os.sched_getaffinity(0)))))
    for flag in CPU_FLAGS:
        items.append((flag, NOT_AVAILABLE if flags is None else _yes_no(flag in flags)))
    return items


def _folders() -> Items:
    dependencies = dependency_folder.deps_folder(treeseg_settings.dependencies_base())
    items = [("dependency folder", str(dependencies)),
             ("dependency folder exists", _yes_no(dependencies.is_dir())),
             ("dependency folder complete", _yes_no(dependency_folder.is_complete(dependencies))),
             ("dependency folder on sys.path", _yes_no(str(dependencies) in sys.path))]
    return items + _weights() + [("Hugging Face token", _token_source())]


def _weights() -> Items:
    """The weights folder, each model found where Segment Trees looks (as the weights manager shows), the files."""
    from .dinov3.variants import VARIANTS  # the standard library only, no torch

    folder = Path(treeseg_settings.load_settings().weights_folder).expanduser()
    items = [("weights folder", str(folder)), ("weights folder exists", _yes_no(folder.is_dir()))]
    for variant in VARIANTS.values():
        location = treeseg_settings.locate(variant.name, str(folder))
        if location is not None:
            items.append((f"model {variant.display_name}", f"{location.where}: {_weights_file(location.path)}"))
    if not folder.is_dir():
        return items
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    for path in files[:MAX_WEIGHT_FILES]:
        items.append(("file", f"{path.relative_to(folder)} ({path.stat().st_size:,} bytes)"))
    if len(files) > MAX_WEIGHT_FILES:
        items.append(("file", f"... and {len(files) - MAX_WEIGHT_FILES} more"))
    return items


def _weights_file(path: Path) -> str:
    """The weights file (in a Hugging Face folder, its model file), its size and whether it was verified."""
    if path.is_dir():
        path = next((path / name for name in treeseg_settings.HF_WEIGHT_FILES if (path / name).is_file()), path)
    size = f"{path.stat().st_size:,} bytes" if path.is_file() else "a folder"
    verified = "verified" if treeseg_settings.verification_of(path) else "not verified"
    return f"{path} ({size}, {verified})"


def _token_source() -> str:
    """Where a token would come from; the token itself is never read."""
    sources = []
    if treeseg_settings.load_settings().auth_config_id:
        sources.append("an authentication configuration is chosen")
    if os.environ.get("HF_TOKEN"):
        sources.append("HF_TOKEN is set")
    return "; ".join(sources) or "none configured"


SECTIONS: Tuple[Tuple[str, Callable[[], Items]], ...] = (
    ("TreeSeg", _treeseg),
    ("QGIS and Qt", _qgis),
    ("Python", _python),
    ("Platform", _platform),
    ("Libraries", _libraries),
    ("PyTorch", torch_items),
    ("BLAS and OpenMP in this process", _math_libraries),
    ("CPU", _cpu),
    ("Folders", _folders),
)


def collect() -> List[Entry]:
    """Every section's entries, in report order."""
    entries = []
    for section, gather in SECTIONS:
        try:
            items = gather()
        except Exception as error:  # the report must come out whatever is broken
            items = [("error", f"{type(error).__name__}: {error}")]
        entries += [(section, key, value) for key, value in items]
    return entries


def as_text(entries: Iterable[Entry]) -> str:
    """Plain text: a ``[section]`` header, then ``key: value`` lines."""
    lines = ["TreeSeg diagnostics"]
    current = None
    for section, key, value in entries:
        if section != current:
            lines += ["", f"[{section}]"]
            current = section
        lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def as_html(entries: Iterable[Entry]) -> str:
    """An HTML page: one table per section."""
    parts = ["<html><head><meta charset=\"utf-8\"><title>TreeSeg diagnostics</title></head><body>",
             "<h1>TreeSeg diagnostics</h1>"]
    current = None
    for section, key, value in entries:
        if section != current:
            parts.append(("</table>" if current is not None else "") + f"<h2>{html.escape(section)}</h2><table>")
            current = section
        parts.append(f"<tr><th align=\"left\">{html.escape(key)}</th><td>{html.escape(value)}</td></tr>")
    parts.append(("</table>" if current is not None else "") + "</body></html>")
    return "\n".join(parts) + "\n"


def report_text() -> str:
    """The whole report as plain text."""
    return as_text(collect())
