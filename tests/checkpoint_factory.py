"""Random-weight DINOv3 ViT checkpoints for tests, in Meta's and Hugging Face's layouts (no gated weights).

    sd = make_state_dict("vits16", seed=0)           # official Meta layout, 188 tensors
    pth = write_meta_pth(tmp / "dinov3_vits16_pretrain_lvd1689m.pth", sd)
    pth = with_sha8_suffix(pth)                      # -> ...lvd1689m-<first 8 hex of SHA-256>.pth
    folder = write_hf_folder(tmp / "hf", sd, "vits16")   # config.json + model.safetensors

The state dicts are what facebookresearch/dinov3 saves (spec §3): every tensor random but scaled so that
activations stay O(1) and attention is far from uniform; LayerScale gammas ~ U(0.25, 0.75) so every block
matters; the K third of qkv.bias is nonzero (the model must mask it out) and bias_mask is [1,0,1].
RoPE periods are bf16-rounded like the released files (`periods="released"`) or the fp32 values
transformers recomputes (`periods="hf"`, making Meta and HF files of one state dict numerically equal).
The HF conversion here is written independently of treeseg_plugin.dinov3 so that it cross-checks it.
Everything is deterministic for a given seed; a ViT-S/16 state dict takes well under a second.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Union

import torch
from safetensors.torch import save_file

StateDict = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class FactoryConfig:
    embed_dim: int
    depth: int
    num_heads: int
    ffn: str = "mlp"  # "mlp" | "swiglu"
    ffn_ratio: float = 4.0
    swiglu_align: int = 8
    n_storage_tokens: int = 4
    qkv_bias: bool = True
    local_cls_norm: bool = False
    rope_base: float = 100.0

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def ffn_hidden_dim(self) -> int:
        hidden = int(self.embed_dim * self.ffn_ratio)
        if self.ffn == "mlp":
            return hidden
        hidden = int(hidden * 2 / 3)
        return -(-hidden // self.swiglu_align) * self.swiglu_align


PRESETS = {
    "tiny": FactoryConfig(embed_dim=64, depth=2, num_heads=2),  # not a released architecture
    "tiny-swiglu-nobias": FactoryConfig(  # 7B-like: SwiGLU aligned to 64, no qkv bias, local_cls_norm
        embed_dim=64, depth=2, num_heads=2, ffn="swiglu", ffn_ratio=3.0, swiglu_align=64, qkv_bias=False,
        local_cls_norm=True,
    ),
    "vits16": FactoryConfig(embed_dim=384, depth=12, num_heads=6),
    "vits16plus": FactoryConfig(embed_dim=384, depth=12, num_heads=6, ffn="swiglu", ffn_ratio=6.0),
}
ConfigLike = Union[str, FactoryConfig]


def get_config(config: ConfigLike) -> FactoryConfig:
    return PRESETS[config] if isinstance(config, str) else config


def released_periods(head_dim: int, base: float = 100.0) -> torch.Tensor:
    """Periods as stored in Meta's released files: base**(4i/hd) rounded to bf16 (spec §0.2), fp32 dtype."""
    return (base ** (4 * torch.arange(head_dim // 4, dtype=torch.float32) / head_dim)).bfloat16().float()


def hf_periods(head_dim: int, base: float = 100.0) -> torch.Tensor:
    """1 / inv_freq with transformers' fp32 inv_freq = 1 / base**arange(0, 1, 4/hd)."""
    return 1 / (1 / base ** torch.arange(0, 1, 4 / head_dim, dtype=torch.float32))


def make_state_dict(config: ConfigLike, seed: int = 0, periods: str = "released") -> StateDict:
    """Official Meta-layout state dict with random weights (see module docstring)."""
    cfg = get_config(config)
    gen = torch.Generator().manual_seed(seed)
    dim, hidden = cfg.embed_dim, cfg.ffn_hidden_dim

    def normal(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    def layer_norm(prefix: str) -> StateDict:
        return {f"{prefix}.weight": 1 + normal(dim, std=0.1), f"{prefix}.bias": normal(dim, std=0.1)}

    def linear(prefix: str, n_in: int, n_out: int) -> StateDict:
        return {f"{prefix}.weight": normal(n_out, n_in, std=n_in**-0.5), f"{prefix}.bias": normal(n_out, std=0.1)}

    sd: StateDict = {"cls_token": normal(1, 1, dim, std=0.5)}
    if cfg.n_storage_tokens:
        sd["storage_tokens"] = normal(1, cfg.n_storage_tokens, dim, std=0.5)
    sd["mask_token"] = normal(1, dim, std=0.5)  # unused at inference; nonzero to prove it
    sd["patch_embed.proj.weight"] = normal(dim, 3, 16, 16, std=(3 * 16 * 16) ** -0.5)
    sd["patch_embed.proj.bias"] = normal(dim, std=0.1)
    make_periods = {"released": released_periods, "hf": hf_periods}[periods]
    sd["rope_embed.periods"] = make_periods(cfg.head_dim, cfg.rope_base)
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        sd.update(layer_norm(b + "norm1"))
        sd[b + "attn.qkv.weight"] = normal(3 * dim, dim, std=dim**-0.5)
        if cfg.qkv_bias:
            sd[b + "attn.qkv.bias"] = normal(3 * dim, std=0.5)  # K third nonzero: must be masked out
            sd[b + "attn.qkv.bias_mask"] = torch.cat([torch.ones(dim), torch.zeros(dim), torch.ones(dim)])
        sd.update(linear(b + "attn.proj", dim, dim))
        sd[b + "ls1.gamma"] = 0.25 + 0.5 * torch.rand(dim, generator=gen)
        sd.update(layer_norm(b + "norm2"))
        if cfg.ffn == "mlp":
            sd.update(linear(b + "mlp.fc1", dim, hidden))
            sd.update(linear(b + "mlp.fc2", hidden, dim))
        else:
            sd.update(linear(b + "mlp.w1", dim, hidden))
            sd.update(linear(b + "mlp.w2", dim, hidden))
            sd.update(linear(b + "mlp.w3", hidden, dim))
        sd[b + "ls2.gamma"] = 0.25 + 0.5 * torch.rand(dim, generator=gen)
    sd.update(layer_norm("norm"))
    if cfg.local_cls_norm:
        sd.update(layer_norm("local_cls_norm"))
    return sd


# ---------------------------------------------------------------- Meta .pth


def write_meta_pth(path: Path, sd: StateDict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def with_sha8_suffix(path: Path) -> Path:
    """Rename x.pth to x-<first 8 hex of its SHA-256>.pth (Meta's naming) and return the new path."""
    path = Path(path)
    target = path.with_name(f"{path.stem}-{sha256_of(path)[:8]}{path.suffix}")
    path.rename(target)
    return target


# ---------------------------------------------------------------- Hugging Face layout (spec §4)


def meta_to_hf(sd: StateDict, layout: str = "hub") -> StateDict:
    """Meta names -> transformers' DINOv3ViTModel names. layout "hub": `layer.N.*` as in the hub files;
    "transformers5": `model.layer.N.*` as transformers 5 holds them. Drops periods, bias_mask, the K bias
    and local_cls_norm, exactly like transformers' conversion script."""
    layer_prefix = {"hub": "layer.", "transformers5": "model.layer."}[layout]
    renames = {
        "norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.o_proj",
        "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1",
        "mlp.fc1": "mlp.up_proj", "mlp.fc2": "mlp.down_proj",
        "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.up_proj", "mlp.w3": "mlp.down_proj",
    }
    out: StateDict = {}
    for key, value in sd.items():
        value = value.clone()
        if key == "cls_token":
            out["embeddings.cls_token"] = value
        elif key == "storage_tokens":
            out["embeddings.register_tokens"] = value
        elif key == "mask_token":
            out["embeddings.mask_token"] = value.unsqueeze(1)
        elif key.startswith("patch_embed.proj."):
            out["embeddings.patch_embeddings." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("norm."):
            out[key] = value
        elif key == "rope_embed.periods" or key.startswith("local_cls_norm.") or key.endswith("bias_mask"):
            continue
        elif key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            prefix = f"{layer_prefix}{index}."
            if rest.startswith("attn.qkv."):
                q, k, v = (t.clone() for t in value.chunk(3, dim=0))
                kind = rest.rsplit(".", 1)[1]
                out[f"{prefix}attention.q_proj.{kind}"] = q
                if kind == "weight":
                    out[f"{prefix}attention.k_proj.weight"] = k
                out[f"{prefix}attention.v_proj.{kind}"] = v
            else:
                module, param = rest.rsplit(".", 1) if not rest.endswith("gamma") else (rest, "")
                name = renames[module]
                out[prefix + (f"{name}.{param}" if param else name)] = value
        else:
            raise KeyError(f"no HF name for {key}")
    return out


def write_hf_safetensors(path: Path, sd: StateDict, layout: str = "hub") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in meta_to_hf(sd, layout).items()}, str(path))
    return path


def hf_config(config: ConfigLike) -> dict:
    """config.json content in transformers' DINOv3ViTConfig format."""
    cfg = get_config(config)
    gated = cfg.ffn == "swiglu"
    return {
        "architectures": ["DINOv3ViTModel"],
        "model_type": "dinov3_vit",
        "hidden_size": cfg.embed_dim,
        "intermediate_size": cfg.ffn_hidden_dim,
        "num_hidden_layers": cfg.depth,
        "num_attention_heads": cfg.num_heads,
        "hidden_act": "silu" if gated else "gelu",
        "use_gated_mlp": gated,
        "layer_norm_eps": 1e-5,
        "rope_theta": cfg.rope_base,
        "patch_size": 16,
        "image_size": 224,
        "num_channels": 3,
        "num_register_tokens": cfg.n_storage_tokens,
        "query_bias": cfg.qkv_bias,
        "key_bias": False,
        "value_bias": cfg.qkv_bias,
        "proj_bias": True,
        "mlp_bias": True,
        "layerscale_value": 1.0,
        "pos_embed_rescale": 2.0,
    }


def write_hf_folder(folder: Path, sd: StateDict, config: ConfigLike, layout: str = "hub", **overrides) -> Path:
    """folder/config.json (DINOv3ViTConfig; `overrides` change fields) + folder/model.safetensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**hf_config(config), **overrides}, indent=2))
    write_hf_safetensors(folder / "model.safetensors", sd, layout)
    return folder
