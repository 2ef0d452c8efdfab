"""Released DINOv3 ViT backbones (facebookresearch/dinov3 `hub/backbones.py`) and their normalisation.

Imports nothing but the standard library: the Processing provider lists these models even when torch is
missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SAT493M_MEAN = (0.430, 0.411, 0.296)
SAT493M_STD = (0.213, 0.156, 0.143)

DATASET_NAMES = {"lvd1689m": "LVD-1689M", "sat493m": "SAT-493M"}
NORMALISATION = {
    "lvd1689m": (IMAGENET_MEAN, IMAGENET_STD),
    "sat493m": (SAT493M_MEAN, SAT493M_STD),
}

META_DOWNLOAD_FORM = "https://ai.meta.com/resources/models-and-libraries/dinov3-downloads/"


def swiglu_hidden_dim(dim: int, ratio: float, align_to: int) -> int:
    """Official SwiGLU width: int(int(dim*ratio) * 2/3) rounded up to a multiple of `align_to`."""
    hidden = int(int(dim * ratio) * 2 / 3)
    return align_to * math.ceil(hidden / align_to)


@dataclass(frozen=True)
class Variant:
    """One released checkpoint: architecture, where to get it, how to normalise its input."""

    name: str  # "vits16", "vitl16-sat493m"
    arch: str  # "vits16": the hub function / file name stem
    arch_display: str  # "ViT-S/16"
    dataset: str  # "lvd1689m" | "sat493m"
    params_millions: float  # learnable parameters incl. unused mask_token/local_cls_norm (buffers excluded)
    embed_dim: int
    depth: int
    num_heads: int
    ffn_layer: str  # "mlp" | "swiglu"
    ffn_ratio: float
    meta_sha8: str  # first 8 hex digits of the .pth file's SHA-256
    hf_repo_id: str | None = None
    swiglu_align: int = 8
    qkv_bias: bool = True
    local_cls_norm: bool = False  # `untie_global_and_local_cls_norm`: an extra (unused at eval) LayerNorm
    n_storage_tokens: int = 4

    @property
    def display_name(self) -> str:
        return f"{self.arch_display} ({DATASET_NAMES[self.dataset]})"

    @property
    def ffn_hidden_dim(self) -> int:
        if self.ffn_layer == "mlp":
            return int(self.embed_dim * self.ffn_ratio)
        return swiglu_hidden_dim(self.embed_dim, self.ffn_ratio, self.swiglu_align)

    @property
    def meta_filename(self) -> str:
        return f"dinov3_{self.arch}_pretrain_{self.dataset}-{self.meta_sha8}.pth"

    @property
    def hf_repo_name(self) -> str:
        """The Hugging Face repository name (also for Meta-only variants, as a folder name)."""
        return hf_repo_name(self.arch, self.dataset)

    @property
    def mean(self) -> tuple[float, float, float]:
        return NORMALISATION[self.dataset][0]

    @property
    def std(self) -> tuple[float, float, float]:
        return NORMALISATION[self.dataset][1]


def hf_repo_name(arch: str, dataset: str) -> str:
    """``dinov3-vits16-pretrain-lvd1689m``: the name of a Hugging Face repository of Meta's DINOv3 ViTs."""
    return f"dinov3-{arch}-pretrain-{dataset}"


def _hf(arch: str, dataset: str = "lvd1689m") -> str:
    return f"facebook/{hf_repo_name(arch, dataset)}"


_S = dict(embed_dim=384, depth=12, num_heads=6)
_L = dict(embed_dim=1024, depth=24, num_heads=16)
_7B = dict(embed_dim=4096, depth=40, num_heads=32, ffn_layer="swiglu", ffn_ratio=3.0, swiglu_align=64,
           qkv_bias=False, local_cls_norm=True)

# Ordered: the first entry (ViT-S/16 LVD-1689M) is the default.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("vits16", "vits16", "ViT-S/16", "lvd1689m", 21.60, **_S, ffn_layer="mlp", ffn_ratio=4.0,
                meta_sha8="08c60483", hf_repo_id=_hf("vits16")),
        Variant("vits16plus", "vits16plus", "ViT-S+/16", "lvd1689m", 28.70, **_S, ffn_layer="swiglu",
                ffn_ratio=6.0, meta_sha8="4057cbaa", hf_repo_id=_hf("vits16plus")),
        Variant("vitb16", "vitb16", "ViT-B/16", "lvd1689m", 85.67, embed_dim=768, depth=12, num_heads=12,
                ffn_layer="mlp", ffn_ratio=4.0, meta_sha8="73cec8be", hf_repo_id=_hf("vitb16")),
        Variant("vitl16", "vitl16", "ViT-L/16", "lvd1689m", 303.15, **_L, ffn_layer="mlp", ffn_ratio=4.0,
                meta_sha8="8aa4cbdd", hf_repo_id=_hf("vitl16")),
        Variant("vitl16-sat493m", "vitl16", "ViT-L/16", "sat493m", 303.16, **_L, ffn_layer="mlp",
                ffn_ratio=4.0, meta_sha8="eadcf0ff", hf_repo_id=_hf("vitl16", "sat493m"), local_cls_norm=True),
        Variant("vitl16plus", "vitl16plus", "ViT-L+/16", "lvd1689m", 403.92, **_L, ffn_layer="swiglu",
                ffn_ratio=6.0, meta_sha8="46503df0"),
        Variant("vith16plus", "vith16plus", "ViT-H+/16", "lvd1689m", 840.63, embed_dim=1280, depth=32,
                num_heads=20, ffn_layer="swiglu", ffn_ratio=6.0, meta_sha8="7c1da9a5",
                hf_repo_id=_hf("vith16plus")),
        Variant("vit7b16", "vit7b16", "ViT-7B/16", "lvd1689m", 6716.04, **_7B, meta_sha8="a955f4ea",
                hf_repo_id=_hf("vit7b16")),
        Variant("vit7b16-sat493m", "vit7b16", "ViT-7B/16", "sat493m", 6716.04, **_7B, meta_sha8="a6675841",
                hf_repo_id=_hf("vit7b16", "sat493m")),
    )
}
