"""What a first run of Segment Trees needs, checked in one place for the Getting started dialog.

Three things: the Python packages (:func:`installer.find_problems`), the weights of a released DINOv3 ViT found
where Segment Trees looks (:func:`settings.locate`, as the weights manager shows them), and the device (the
Diagnostics report's PyTorch section and the NVIDIA GPUs ``nvidia-smi`` lists). :func:`check` imports torch
when it is installed, so the dialog runs it in a background task. QGIS-bound (settings), no widgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from . import installer
from . import settings as treeseg_settings
from .diagnostics import torch_items
from .dinov3.variants import VARIANTS
from .nvidia_gpus import nvidia_gpus

Found = Tuple[Tuple[str, treeseg_settings.Location], ...]  # (model's display name, where its weights are)


@dataclass(frozen=True)
class Readiness:
    """The state of each thing a run needs."""

    problems: Tuple[installer.Problem, ...]  # required packages missing or too old
    weights_folder: str
    found: Found  # every released DINOv3 ViT whose weights Segment Trees would find
    torch: Dict[str, str]  # Diagnostics' PyTorch entries; empty while torch is among the problems
    gpus: Tuple[str, ...]  # nvidia-smi's lines

    @property
    def torch_missing(self) -> bool:
        return any(problem.requirement.distribution == "torch" for problem in self.problems)

    @property
    def cuda(self) -> bool:
        return self.torch.get("CUDA available") == "yes"

    @property
    def mps(self) -> bool:
        return self.torch.get("MPS available") == "yes"

    @property
    def cpu_only_torch(self) -> bool:
        """torch imports but is a CPU-only build."""
        return "version" in self.torch and self.torch.get("CUDA build", "").startswith("none")


def check(version_of: installer.VersionOf = installer.installed_version) -> Readiness:
    """The packages (versions as the worker process sees them, or as ``version_of`` reads them), the weights
    of each released ViT in the weights folder and the caches, and what torch can run on."""
    problems = tuple(installer.find_problems(version_of=version_of))
    folder = treeseg_settings.load_settings().weights_folder
    found = []
    for variant in VARIANTS.values():
        location = treeseg_settings.locate(variant.name, folder)
        if location is not None:
            found.append((variant.display_name, location))
    ready = Readiness(problems, folder, tuple(found), {}, tuple(nvidia_gpus()))
    if ready.torch_missing:
        return ready
    return Readiness(problems, folder, tuple(found), dict(torch_items()), ready.gpus)
