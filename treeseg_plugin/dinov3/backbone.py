"""The loaded backbone handed to the engine, and `load_backbone`, the one way to get it; `verify_weights`
checks weights the same way without loading them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from .checkpoint.layout import FORMAT_NAMES, META_FORMAT
from .checkpoint.loading import LoadedCheckpoint, load_checkpoint, verify_checkpoint
from .device import DeviceLike, check_dtype, resolve_device
from .layers.patch_embed import grid_size
from .variants import DATASET_NAMES, NORMALISATION, VARIANTS, Variant
from .vision_transformer import DinoVisionTransformer, ViTConfig
from .weights import ResolvedWeights, Source, WeightsInfo, choose_dataset, resolve_weights, verify_meta_hash


class Backbone(nn.Module):
    """A DINOv3 ViT loaded from verified weights, in eval mode; its forwards run under inference_mode.

    Inputs are [B,3,H,W] images normalised with `mean` / `std` (moved to the backbone's device and dtype);
    H and W need not be multiples of the stride: the patch grid is `grid_size(H, W)`.
    """

    def __init__(
        self,
        vit: DinoVisionTransformer,
        variant: str,
        weights: WeightsInfo,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        self.vit = vit
        self.variant = variant  # released name ("vits16") when the shapes match one, else "custom"
        self.weights = weights
        self.mean = mean
        self.std = std

    @property
    def config(self) -> ViTConfig:
        return self.vit.config

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def num_heads(self) -> int:
        return self.config.num_heads

    @property
    def depth(self) -> int:
        return self.config.depth

    @property
    def n_storage_tokens(self) -> int:
        return self.config.n_storage_tokens

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def patch_stride(self) -> int:
        return self.vit.patch_stride

    @property
    def device(self) -> torch.device:
        return self.vit.cls_token.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vit.cls_token.dtype

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch rows and columns for an H x W image: ((H-16)//s + 1, (W-16)//s + 1)."""
        return grid_size(height, width, self.patch_size, self.patch_stride)

    def _prepare(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got shape {list(x.shape)}")
        self.grid_size(x.shape[2], x.shape[3])  # raises for images smaller than a patch
        return x.to(device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """x_norm_clstoken [B,D], x_storage_tokens [B,R,D] (normed), x_norm_patchtokens [B,H'W',D],
        x_prenorm [B,1+R+H'W',D]."""
        return self.vit.forward_features(self._prepare(x))

    forward = forward_features

    @torch.inference_mode()
    def get_intermediate_layers(self, x: Tensor, *args: Any, **kwargs: Any) -> tuple:
        """:meth:`DinoVisionTransformer.get_intermediate_layers` (its arguments and defaults: one definition)
        on images [B,3,H,W] moved to the model's device and dtype."""
        return self.vit.get_intermediate_layers(self._prepare(x), *args, **kwargs)


def _released_matches(config: ViTConfig) -> list[Variant]:
    """Released variants with this architecture (local_cls_norm aside: HF files never carry it)."""
    shape = (config.embed_dim, config.depth, config.num_heads, config.ffn_layer, config.ffn_hidden_dim,
             config.n_storage_tokens, config.qkv_bias)
    return [v for v in VARIANTS.values()
            if (v.embed_dim, v.depth, v.num_heads, v.ffn_layer, v.ffn_hidden_dim, v.n_storage_tokens,
                v.qkv_bias) == shape]


def _dataset_and_variant(
    config: ViTConfig, resolved: ResolvedWeights, fmt: str
) -> tuple[Optional[str], str, Optional[Variant]]:
    """Pretraining dataset (None: custom architecture), why, and the released variant these weights look like."""
    candidates = _released_matches(config)
    dataset, reason = choose_dataset(resolved, candidates, config.local_cls_norm if fmt == META_FORMAT else None)
    preferred = [v for v in candidates if v.dataset == dataset]
    return dataset, reason, (preferred or candidates or [None])[0]


def _report(log: Callable[[str], None], loaded: LoadedCheckpoint, backbone: Backbone,
            variant: Optional[Variant], reason: str) -> None:
    weights, config = backbone.weights, backbone.config
    arch = f"{variant.arch_display}-like" if variant else "custom ViT"
    log(f"Loaded {weights.tensors_loaded}/{weights.tensors_total} tensors from {weights.path} "
        f"({FORMAT_NAMES[weights.format]}, {arch}: {config.describe()})")
    filled = f"Filled {loaded.model_tensors}/{loaded.model_tensors} model parameters and buffers"
    if loaded.computed:
        masks = sum(k.endswith("bias_mask") for k in loaded.computed)
        what = "RoPE periods" + (f", {masks} k-bias masks" if masks else "")
        filled += f"; {len(loaded.computed)} computed, not stored in the file: {what}"
    log(filled)
    for note in loaded.notes:
        log(f"Checkpoint: {note}")
    if weights.dataset:
        log(f"Normalisation: {DATASET_NAMES[weights.dataset]} mean/std ({reason})")
    else:
        log(f"Normalisation: ImageNet mean/std of LVD-1689M (default: {reason})")
    log(f"Backbone ready: {backbone.variant}, {backbone.device.type} {str(backbone.dtype).replace('torch.', '')}, "
        f"patch stride {backbone.patch_stride}")


def load_backbone(
    source: Source,
    device: DeviceLike = "cpu",
    dtype: torch.dtype = torch.float32,
    patch_stride: int = 16,
    *,
    allow_download: bool = False,
    token: Optional[str] = None,
    verify_hash: bool = True,
    log: Optional[Callable[[str], None]] = None,
) -> Backbone:
    """Find, verify and load DINOv3 ViT weights; never falls back to anything else.

    source: a Meta .pth, an HF .safetensors file or model folder, an HF repo id, or a VARIANTS name.
    device: "cpu", "cuda", "mps", "auto" (CUDA, then MPS, then CPU) or a torch.device.
    dtype: torch.float32, torch.bfloat16, or torch.float16 (not on CPU). Weights are cast to it; RoPE and
        LayerNorm statistics are computed in fp32 regardless.
    patch_stride: 16, 8, 4, 2 or 1: stride of the 16x16 patch embedding (denser, overlapping patches).
    allow_download / token: see weights.py (the token is never logged). log: callable for progress lines.
    Raises WeightsNotFoundError, CheckpointError (both DinoV3Error) or ValueError for bad arguments.
    """
    if isinstance(patch_stride, bool) or not isinstance(patch_stride, int) or patch_stride <= 0 or 16 % patch_stride:
        raise ValueError(f"patch_stride must divide the patch size 16 (16, 8, 4, 2 or 1), got {patch_stride!r}")
    target = resolve_device(device, log)
    check_dtype(dtype, target)
    resolved = resolve_weights(source, allow_download=allow_download, token=token, log=log)
    digest = verify_meta_hash(resolved.path, log) if verify_hash else None
    loaded = load_checkpoint(
        resolved.path,
        shards=resolved.shards,
        config_path=resolved.config_path,
        device=target,
        dtype=dtype,
        patch_stride=patch_stride,
    )
    dataset, reason, variant = _dataset_and_variant(loaded.model.config, resolved, loaded.format)
    weights = WeightsInfo(resolved.path, loaded.format, loaded.tensors_loaded, loaded.tensors_total, dataset,
                          digest)
    mean, std = NORMALISATION[dataset or "lvd1689m"]
    backbone = Backbone(loaded.model, variant.name if variant else "custom", weights, mean, std).eval()
    if log:
        _report(log, loaded, backbone, variant, reason)
    return backbone


@dataclass(frozen=True)
class VerifiedWeights:
    """What :func:`verify_weights` found."""

    weights: WeightsInfo
    variant: str  # released name when the shapes match one, else "custom"
    config: ViTConfig


def verify_weights(source: Source, *, verify_hash: bool = True, log: Optional[Callable[[str], None]] = None) \
        -> VerifiedWeights:
    """Find and check weights exactly as :func:`load_backbone` does (every tensor, its shape, dtype and values,
    the Meta hash, the dataset), without materialising the model (its structure exists only on the meta
    device, to give the expected shapes): memory stays at about the largest tensor, also for ViT-7B.
    Raises what load_backbone raises; never downloads."""
    resolved = resolve_weights(source, log=log)
    digest = verify_meta_hash(resolved.path, log) if verify_hash else None
    checked = verify_checkpoint(resolved.path, shards=resolved.shards, config_path=resolved.config_path)
    dataset, reason, variant = _dataset_and_variant(checked.config, resolved, checked.format)
    weights = WeightsInfo(resolved.path, checked.format, checked.tensors_loaded, checked.tensors_total, dataset,
                          digest)
    if log:
        log(f"Verified {checked.tensors_loaded}/{checked.tensors_total} tensors of {resolved.path} "
            f"({FORMAT_NAMES[checked.format]}: {checked.config.describe()}); dataset: "
            f"{DATASET_NAMES.get(dataset or '', 'unknown')} ({reason})")
    return VerifiedWeights(weights, variant.name if variant else "custom", checked.config)
