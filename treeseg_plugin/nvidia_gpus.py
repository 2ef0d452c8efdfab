"""The NVIDIA GPUs this machine's driver lists (``nvidia-smi -L``), without torch: which build of PyTorch to
install (scripts/setup.sh through scripts/torch_choice.py, the in-QGIS installer) and whether the installed
one misses a GPU (Diagnostics). QGIS-free."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404  # runs nvidia-smi only
from typing import List

CUDA_DOWNLOAD = "about 2.6 GiB"  # PyPI's default Linux torch with its CUDA wheels
CPU_DOWNLOAD = "about 200 MiB"  # torch from PyTorch's CPU index


def nvidia_gpus(timeout_s: float = 15.0) -> List[str]:
    """The lines ``nvidia-smi -L`` prints for each GPU ("GPU 0: NVIDIA … (UUID: …)"); empty when nvidia-smi is
    not on PATH, cannot run, or lists none (without a loaded driver it prints only an error)."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return []
    try:
        done = subprocess.run(  # noqa: S603  # nosec B603  # fixed arguments, nvidia-smi found on PATH
            [program, "-L"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.startswith("GPU ")]
