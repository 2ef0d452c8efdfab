"""Hugging Face DINOv3ViTModel names -> Meta DinoVisionTransformer names (ours).

    HF (hub file; transformers 5 in memory: "model.layer.N")   Meta
    embeddings.cls_token [1, 1, D]                             cls_token [1, 1, D]
    embeddings.mask_token [1, 1, D]                            mask_token [1, D]
    embeddings.register_tokens [1, R, D]                       storage_tokens [1, R, D]
    embeddings.patch_embeddings.{weight,bias}                  patch_embed.proj.{weight,bias}
    (not stored: inv_freq is recomputed)                       rope_embed.periods [head_dim / 4], computed
    layer.N.norm{1,2}.*                                        blocks.N.norm{1,2}.*
    layer.N.attention.{q,k,v}_proj.weight [D, D] each          blocks.N.attn.qkv.weight [3D, D]
    layer.N.attention.{q,v}_proj.bias [D] each (no k bias)     blocks.N.attn.qkv.bias [3D], K third zero
    (not stored)                                               blocks.N.attn.qkv.bias_mask [3D], computed
    layer.N.attention.o_proj.*                                 blocks.N.attn.proj.*
    layer.N.layer_scale{1,2}.lambda1 [D]                       blocks.N.ls{1,2}.gamma [D]
    layer.N.mlp.up_proj / down_proj (MLP)                      blocks.N.mlp.fc1 / fc2
    layer.N.mlp.gate_proj / up_proj / down_proj (SwiGLU)       blocks.N.mlp.w1 / w2 / w3
    norm.*                                                     norm.*

local_cls_norm (vitl16-SAT, 7B) is not in HF files, and a model built from an HF file has none.
"""

from __future__ import annotations

from typing import Dict, Mapping

import torch
from torch import Tensor

from ..layers.attention import k_bias_mask
from ..layers.rope import rope_periods
from ..vision_transformer import ViTConfig
from .layout import hf_layer_prefix


def hf_to_meta(state: Mapping[str, Tensor], config: ViTConfig, rope_base: float) -> Dict[str, Tensor]:
    """The Meta state dict of an HF state dict (every HF tensor is used once; RoPE periods computed in fp32
    as 1/inv_freq, as transformers does).

    Plain tensor code: checkpoint_verify.traced_convert runs it and records which HF tensors make each output.
    """
    layers = hf_layer_prefix(state)
    out: Dict[str, Tensor] = {}
    out["cls_token"] = state["embeddings.cls_token"]
    out["mask_token"] = state["embeddings.mask_token"].reshape(1, -1)  # [1, 1, D] -> [1, D]
    out["patch_embed.proj.weight"] = state["embeddings.patch_embeddings.weight"]  # [D, 3, 16, 16]
    out["patch_embed.proj.bias"] = state["embeddings.patch_embeddings.bias"]
    out["rope_embed.periods"] = rope_periods(config.head_dim, rope_base)  # [head_dim / 4]
    out["norm.weight"] = state["norm.weight"]
    out["norm.bias"] = state["norm.bias"]
    if config.n_storage_tokens:
        out["storage_tokens"] = state["embeddings.register_tokens"]  # [1, R, D]

    if config.ffn_layer == "mlp":
        ffn = {"fc1": "up_proj", "fc2": "down_proj"}
    else:  # SwiGLU: silu(w1 x) * (w2 x) -> w3
        ffn = {"w1": "gate_proj", "w2": "up_proj", "w3": "down_proj"}
    renames = {
        "norm1": "norm1",
        "norm2": "norm2",
        "attn.proj": "attention.o_proj",
        **{f"mlp.{meta}": f"mlp.{hf}" for meta, hf in ffn.items()},
    }
    for i in range(config.depth):
        hf, meta = f"{layers}{i}.", f"blocks.{i}."
        for meta_name, hf_name in renames.items():
            out[f"{meta}{meta_name}.weight"] = state[f"{hf}{hf_name}.weight"]
            out[f"{meta}{meta_name}.bias"] = state[f"{hf}{hf_name}.bias"]
        out[meta + "ls1.gamma"] = state[hf + "layer_scale1.lambda1"]
        out[meta + "ls2.gamma"] = state[hf + "layer_scale2.lambda1"]
        q = state[hf + "attention.q_proj.weight"]  # [D, D]
        k = state[hf + "attention.k_proj.weight"]
        v = state[hf + "attention.v_proj.weight"]
        out[meta + "attn.qkv.weight"] = torch.cat([q, k, v], dim=0)  # [3D, D]
        if config.qkv_bias:
            q_bias = state[hf + "attention.q_proj.bias"]  # [D]
            v_bias = state[hf + "attention.v_proj.bias"]
            out[meta + "attn.qkv.bias"] = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias], dim=0)  # [3D]
            out[meta + "attn.qkv.bias_mask"] = k_bias_mask(3 * config.embed_dim)  # [3D]: 1, 0 (K), 1
    return out
