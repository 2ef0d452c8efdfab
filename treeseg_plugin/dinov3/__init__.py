"""DINOv3 ViT backbone (Meta's DINOv3, re-implemented for inference; weights loaded strictly and verified).

    from treeseg_plugin.dinov3 import load_backbone
    bb = load_backbone("vits16", device="auto")
    feats = bb.forward_features(images)["x_norm_patchtokens"]   # [B, H'W', D]

Runtime dependencies: torch (>= 2.1), safetensors, huggingface_hub (only to find repo ids / download).
Supported checkpoints and errors: docs/weights.md.

``VARIANTS`` and the exceptions import without torch, so the Processing provider can describe the models
on a QGIS without torch; the torch-backed names are imported on first use.
"""

from __future__ import annotations

from typing import Any

from .errors import CheckpointError, DinoV3Error, WeightsNotFoundError
from .variants import VARIANTS, Variant

__all__ = [
    "VARIANTS",
    "Backbone",
    "CheckpointError",
    "DinoV3Error",
    "Variant",
    "WeightsInfo",
    "WeightsNotFoundError",
    "load_backbone",
    "verify_weights",
]


def __getattr__(name: str) -> Any:
    """Import the torch-backed names on first use (PEP 562)."""
    if name in ("Backbone", "load_backbone", "verify_weights"):
        from . import backbone

        return getattr(backbone, name)
    if name == "WeightsInfo":
        from .weights import WeightsInfo

        return WeightsInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
