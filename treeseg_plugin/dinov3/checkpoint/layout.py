"""Checkpoint layout (Meta or Hugging Face names) and the architecture the tensors describe.

D comes from cls_token [1, 1, D], the depth from the block count, R from the storage tokens [1, R, D], MLP
vs SwiGLU and its width F from the first FFN weight [F, D], qkv bias from its presence. Heads: HF
config.json when present; else for Meta files head_dim = 4 * len(rope periods); else (HF file without
config) the heads of the released ViT with the same D, depth and FFN, otherwise head_dim 64.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from torch import Tensor

from ..errors import USE_RELEASED, CheckpointError, format_keys, printable
from ..variants import VARIANTS
from ..vision_transformer import ViTConfig
from .files import is_count, load_hf_config

META_FORMAT = "meta-pth"
HF_FORMAT = "hf-safetensors"
FORMAT_NAMES = {META_FORMAT: "Meta format", HF_FORMAT: "HF format"}


def strip_prefix(state: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], List[str]]:
    """Remove a wrapper prefix ("backbone.", "module.", ...) found in front of the CLS token."""
    anchors = [k for k in state if k in ("cls_token", "embeddings.cls_token") or k.endswith(".cls_token")]
    if not anchors:
        return state, []
    anchor = min(anchors, key=len)
    name = "embeddings.cls_token" if anchor.endswith("embeddings.cls_token") else "cls_token"
    prefix = anchor[: -len(name)]
    if not prefix:
        return state, []
    ignored = [k for k in state if not k.startswith(prefix)]
    notes = [f"prefix '{prefix}' stripped"]
    if ignored:
        notes.append(f"ignored {len(ignored)} tensors outside '{prefix}' ({format_keys(ignored, 3)})")
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, notes


def detect_format(state: Dict[str, Tensor], path: Path) -> str:
    """META_FORMAT or HF_FORMAT, from the name of the CLS token; ConvNeXt and other models are refused."""
    if any("downsample_layers." in k or re.match(r"(.*\.)?stages\.\d", k) for k in state):
        raise CheckpointError(
            f"{path}: this is a DINOv3 ConvNeXt checkpoint; ConvNeXt backbones are not supported yet. "
            "Use a DINOv3 ViT (e.g. dinov3_vits16_pretrain_lvd1689m-08c60483.pth or "
            "facebook/dinov3-vits16-pretrain-lvd1689m)."
        )
    if "cls_token" in state:
        return META_FORMAT
    if "embeddings.cls_token" in state:
        return HF_FORMAT
    raise CheckpointError(
        f"{path}: not a DINOv3 ViT checkpoint: it has no 'cls_token' (Meta layout) nor "
        f"'embeddings.cls_token' (Hugging Face layout); its first keys are {format_keys(list(state))}. "
        f"{USE_RELEASED}"
    )


def _require(state: Dict[str, Tensor], key: str, path: Path, layout: str) -> Tensor:
    """state[key], which must exist and have as many dimensions as `layout` (e.g. "[1, 1, D]")."""
    if key not in state:
        hint = ""
        if "pos_embed" in state or "embeddings.position_embeddings" in state:
            hint = " It has learned position embeddings: a DINOv2 or other ViT, not DINOv3."
        raise CheckpointError(
            f"{path}: missing tensor '{key}', needed to infer the architecture.{hint} {USE_RELEASED}"
        )
    if state[key].ndim != layout.count(",") + 1:
        raise CheckpointError(
            f"{path}: '{key}' has shape {list(state[key].shape)}; a DINOv3 ViT stores it as {layout}. "
            f"{USE_RELEASED}"
        )
    return state[key]


def _block_count(state: Dict[str, Tensor], prefix: str, path: Path) -> int:
    """The depth: blocks `prefix`0 .. `prefix`N-1, none missing."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for m in map(pattern.match, state) if m}
    if not indices:
        raise CheckpointError(f"{path}: no transformer blocks ('{prefix}N.*' tensors). {USE_RELEASED}")
    depth = max(indices) + 1
    if len(indices) != depth:  # also bounds the depth by the number of tensors in the file
        first_missing = min(set(range(len(indices) + 1)) - indices)
        raise CheckpointError(
            f"{path}: transformer blocks are missing: the highest is '{prefix}{depth - 1}' but the file has "
            f"only {len(indices)} blocks (the first missing is '{prefix}{first_missing}'). {USE_RELEASED}"
        )
    return depth


def _check_patch(state: Dict[str, Tensor], key: str, path: Path) -> int:
    """The patch size, 16: the patch embedding must be a [D, 3, 16, 16] convolution."""
    weight = _require(state, key, path, "[D, 3, 16, 16]")
    if tuple(weight.shape[1:]) != (3, 16, 16):
        raise CheckpointError(
            f"{path}: '{key}' has shape {list(weight.shape)}; DINOv3 ViTs embed RGB 16x16 patches "
            f"([D, 3, 16, 16]). {USE_RELEASED}"
        )
    return 16


def _infer_meta(state: Dict[str, Tensor], path: Path) -> Tuple[ViTConfig, str]:
    """ViTConfig and a note on the heads, which come from the RoPE periods (head dim = 4 * len(periods))."""
    dim = _require(state, "cls_token", path, "[1, 1, D]").shape[-1]
    periods = _require(state, "rope_embed.periods", path, "[head dim / 4]")
    head_dim = 4 * periods.numel()
    if head_dim == 0 or dim % head_dim:
        raise CheckpointError(
            f"{path}: 'rope_embed.periods' has {periods.numel()} entries (head dim {head_dim}), which does "
            f"not divide the embedding dim {dim}. {USE_RELEASED}"
        )
    if "blocks.0.mlp.fc1.weight" in state:
        ffn, hidden = "mlp", _require(state, "blocks.0.mlp.fc1.weight", path, "[hidden, D]").shape[0]
    else:
        ffn, hidden = "swiglu", _require(state, "blocks.0.mlp.w1.weight", path, "[hidden, D]").shape[0]
    storage = state.get("storage_tokens")
    config = ViTConfig(
        embed_dim=dim,
        depth=_block_count(state, "blocks.", path),
        num_heads=dim // head_dim,
        ffn_layer=ffn,
        ffn_hidden_dim=hidden,
        n_storage_tokens=storage.shape[1] if storage is not None and storage.ndim == 3 else 0,
        qkv_bias="blocks.0.attn.qkv.bias" in state,
        local_cls_norm="local_cls_norm.weight" in state,
        patch_size=_check_patch(state, "patch_embed.proj.weight", path),
    )
    return config, f"heads from the RoPE periods (head dim {head_dim})"


def hf_layer_prefix(state: Mapping[str, Tensor]) -> str:
    """"layer." (hub files) or "model.layer." (transformers 5 in memory)."""
    return "model.layer." if any(k.startswith("model.layer.") for k in state) else "layer."


def _config_disagreements(hf_config: dict, found: Dict[str, object], dim: int) -> List[str]:
    """Where config.json contradicts the weights (``found``) or holds an unusable head count, eps or RoPE base."""
    wrong = [f"{k} {printable(repr(hf_config[k]), 40)} (weights: {v!r})" for k, v in found.items()
             if k in hf_config and hf_config[k] != v]
    heads = hf_config.get("num_attention_heads")
    if heads is not None and (not is_count(heads) or heads == 0 or dim % heads or (dim // heads) % 4):
        wrong.append(f"num_attention_heads {printable(repr(heads), 40)} (must split {dim} into heads of a "
                     "multiple of 4)")
    for name, default in (("layer_norm_eps", 1e-5), ("rope_theta", 100.0)):
        value = hf_config.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            wrong.append(f"{name} {printable(repr(value), 40)} (must be a positive number)")
    return wrong


def _heads_without_config(dim: int, depth: int, ffn: str, hidden: int, path: Path) -> Tuple[int, str]:
    """The head count of an HF file without config.json: the released ViT's with the same shape, else D/64."""
    same = [v for v in VARIANTS.values()
            if (v.embed_dim, v.depth, v.ffn_layer, v.ffn_hidden_dim) == (dim, depth, ffn, hidden)]
    if same:
        return same[0].num_heads, f"heads {same[0].num_heads} as in the released {same[0].arch_display}"
    if dim % 64 == 0:
        return dim // 64, f"heads = D/64 = {dim // 64} assumed (no config.json next to the file)"
    raise CheckpointError(
        f"{path}: cannot tell the number of attention heads (D={dim} is not a multiple of 64 and no "
        "config.json is next to the file). Put the model's config.json in the same folder."
    )


def infer_hf(
    state: Dict[str, Tensor], path: Path, hf_config: dict | None, config_path: Path | None
) -> Tuple[ViTConfig, float, str]:
    """ViTConfig, RoPE base and a note on where the head count came from."""
    dim = _require(state, "embeddings.cls_token", path, "[1, 1, D]").shape[-1]
    layers = hf_layer_prefix(state)
    gated = f"{layers}0.mlp.gate_proj.weight" in state
    hidden = _require(state, f"{layers}0.mlp.{'gate' if gated else 'up'}_proj.weight", path, "[hidden, D]").shape[0]
    registers = state.get("embeddings.register_tokens")
    depth = _block_count(state, layers, path)
    qkv_bias = f"{layers}0.attention.q_proj.bias" in state
    ffn = "swiglu" if gated else "mlp"
    found = dict(
        hidden_size=dim,
        num_hidden_layers=depth,
        intermediate_size=hidden,
        num_register_tokens=registers.shape[1] if registers is not None and registers.ndim == 3 else 0,
        use_gated_mlp=gated,
        hidden_act="silu" if gated else "gelu",
        query_bias=qkv_bias,
        value_bias=qkv_bias,
        key_bias=False,
        patch_size=_check_patch(state, "embeddings.patch_embeddings.weight", path),
        num_channels=3,
    )
    hf_config = hf_config or {}
    wrong = _config_disagreements(hf_config, found, dim)
    heads = hf_config.get("num_attention_heads")
    if wrong:
        raise CheckpointError(
            f"{config_path} disagrees with the weights in {path}: {'; '.join(wrong)}. Use the config.json "
            "from the same Hugging Face repository and revision as the weights, or remove it."
        )
    if heads is not None:
        note = f"heads from {config_path}"
    else:
        heads, note = _heads_without_config(dim, depth, ffn, hidden, path)
    config = ViTConfig(
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        ffn_layer=ffn,
        ffn_hidden_dim=hidden,
        n_storage_tokens=found["num_register_tokens"],
        qkv_bias=qkv_bias,
        patch_size=16,
        layer_norm_eps=float(hf_config.get("layer_norm_eps", 1e-5)),
    )
    return config, float(hf_config.get("rope_theta", 100.0)), note


def infer_architecture(
    state: Dict[str, Tensor], fmt: str, path: Path, config_path: Path | None
) -> Tuple[ViTConfig, float | None, str]:
    """ViTConfig, RoPE base (HF files; Meta files store the periods) and where the head count came from."""
    rope_base: float | None = None
    if fmt == META_FORMAT:
        config, note = _infer_meta(state, path)
    else:
        hf_config = load_hf_config(config_path) if config_path else None
        config, rope_base, note = infer_hf(state, path, hf_config, config_path)
    if config.num_heads <= 0 or config.embed_dim % config.num_heads or config.head_dim % 4:
        raise CheckpointError(f"{path}: the tensors describe no valid DINOv3 ViT ({config.describe()}: the "
                              f"embedding dim must split into heads of a multiple of 4). {USE_RELEASED}")
    return config, rope_base, note
