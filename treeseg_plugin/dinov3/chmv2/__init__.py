"""CHMv2 canopy height (Meta's DPT head on DINOv3 ViT-L/16 SAT-493M), re-implemented for inference.

    from treeseg_plugin.dinov3.chmv2 import load_canopy_height_model
    model = load_canopy_height_model("facebook/dinov3-vitl16-chmv2-dpt-head", device="auto")
    heights = model(images)   # [B,3,H,W] normalised with model.mean / model.std -> [B,H,W] metres

The constants (config.py) import without torch; the model code on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CanopyHeightModel", "load_canopy_height_model", "verify_canopy_height_weights"]


def __getattr__(name: str) -> Any:
    """Import the torch-backed names on first use (PEP 562)."""
    if name == "CanopyHeightModel":
        from .model import CanopyHeightModel

        return CanopyHeightModel
    if name in ("load_canopy_height_model", "verify_canopy_height_weights"):
        from . import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
