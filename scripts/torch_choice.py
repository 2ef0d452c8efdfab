"""Which PyTorch scripts/setup.sh installs, and why; run by setup.sh with Debian's /usr/bin/python3.

    python3 scripts/torch_choice.py ROUTE WHEEL DEBIAN_TORCH MINIMUM

ROUTE is TREESEG_TORCH (auto, wheels, debian, cpu, cuda), WHEEL the local torch wheel found ("" for none),
DEBIAN_TORCH the python3-torch version apt offers ("" for none), MINIMUM the oldest torch TreeSeg supports.
Prints the route, a tab and the reason. With auto: the local wheel, else Debian's torch when new enough,
else PyPI's CUDA build when nvidia-smi lists an NVIDIA GPU, else the CPU build from PyTorch's CPU index.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from treeseg_plugin.nvidia_gpus import CPU_DOWNLOAD, CUDA_DOWNLOAD, nvidia_gpus


def _numbers(version: str) -> List[int]:
    return [int(part) for part in re.findall(r"\d+", version)]


def choose(route: str, wheel: str, debian_torch: str, minimum: str, gpus: Sequence[str]) -> Tuple[str, str]:
    """(the route, why) for TREESEG_TORCH=``route`` on a machine with these findings."""
    if route != "auto":
        return route, f"TREESEG_TORCH={route}"
    if wheel:
        return "wheels", f"a local torch wheel for this Python was found ({wheel})"
    if debian_torch and _numbers(debian_torch) >= _numbers(minimum):
        return "debian", f"no local wheel; apt offers python3-torch {debian_torch} (TreeSeg needs {minimum}+)"
    none_local = f"no local wheel and no python3-torch {minimum}+ in apt"
    if gpus:
        return "cuda", (f"{none_local}; nvidia-smi lists {len(gpus)} NVIDIA GPU(s) ({gpus[0]}): the CUDA build, "
                        f"{CUDA_DOWNLOAD} to download (TREESEG_TORCH=cpu for the CPU build)")
    return "cpu", (f"{none_local}; no NVIDIA GPU visible (nvidia-smi absent, failing or listing none): the CPU "
                   f"build, {CPU_DOWNLOAD} to download (TREESEG_TORCH=cuda for the CUDA build)")


def main(arguments: Sequence[str]) -> None:
    route, wheel, debian_torch, minimum = arguments
    gpus = nvidia_gpus() if route == "auto" and not wheel else []
    print("\t".join(choose(route, wheel, debian_torch, minimum, gpus)))


if __name__ == "__main__":
    main(sys.argv[1:])
