"""Random-weight CHMv2 checkpoints for tests, in Hugging Face's and Meta's layouts (no gated weights).

    folder, model = write_hf_chmv2(tmp / "hf")                # transformers' CHMv2ForDepthEstimation, saved
    decoder, backbone = write_meta_chmv2(tmp / "meta", model)  # the same weights as Meta's two .pth files

The Hugging Face model is built by transformers from a tiny CHMv2Config (4 blocks, D=64) and every tensor
is drawn again so that activations stay O(1) (LayerNorm weights ~1, LayerScale ~U(0.25, 0.75), conv and
linear weights ~N(0, 1/fan_in)); the
last bias falls from 2 to -2 over the bins, so that heights are those of trees (a few to ~30 m) rather than the
~48 m that uniform bin weights give. The Meta files are derived from it here, by renaming written
independently of treeseg_plugin.dinov3.chmv2: the decoder under Meta's `DPTHead` names, the backbone as
Meta's DinoVisionTransformer state dict (fused qkv, [1,0,1] bias mask, RoPE periods as transformers
computes them). Meta masks the K bias, transformers adds it: `k_bias=False` zeroes it, so that both
layouts describe one function (with the same `layer_norm_eps`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Tuple

import torch

from tests.checkpoint_factory import hf_periods, write_meta_pth

TINY = dict(hidden_size=64, intermediate_size=256, num_attention_heads=2, num_hidden_layers=4,
            out_indices=[1, 2, 3, 4])
TINY_HEAD = dict(post_process_channels=[16, 32, 64, 64], fusion_hidden_size=32, head_hidden_size=16,
                 number_output_channels=32)


def chmv2_config(layer_norm_eps: float = 1e-6, **backbone):
    """A CHMv2Config with a tiny backbone and head (overrides go to the backbone config)."""
    import transformers

    return transformers.CHMv2Config(
        backbone_config={"model_type": "dinov3_vit", "image_size": 64, "num_register_tokens": 4, "key_bias": True,
                         "reshape_hidden_states": True, "apply_layernorm": True, "return_class_token": True,
                         "layer_norm_eps": layer_norm_eps, **TINY, **backbone},
        **TINY_HEAD,
    )


def randomise(model: torch.nn.Module, seed: int, k_bias: bool = True) -> None:
    """Draw every parameter again (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                value = 1 + 0.1 * torch.randn(param.shape, generator=gen)
            elif "lambda1" in name:
                value = 0.25 + 0.5 * torch.rand(param.shape, generator=gen)
            elif name.endswith(("cls_token", "register_tokens", "mask_token")):
                value = 0.5 * torch.randn(param.shape, generator=gen)
            elif param.ndim >= 2:
                fan_in = param[0].numel() if "resize" not in name or param.ndim != 4 else param.shape[0]
                value = torch.randn(param.shape, generator=gen) * fan_in ** -0.5
            else:
                value = 0.1 * torch.randn(param.shape, generator=gen)
            if name == "head.conv_depth.head.4.bias":  # favour the low bins: heights of trees, not ~48 m
                value = torch.linspace(2.0, -2.0, param.numel())
            if name.endswith("k_proj.bias") and not k_bias:
                value = torch.zeros(param.shape)
            param.copy_(value)


def write_hf_chmv2(folder: Path, seed: int = 0, k_bias: bool = True, layer_norm_eps: float = 1e-6):
    """folder/config.json + model.safetensors of a random tiny CHMv2ForDepthEstimation; returns both."""
    import transformers

    model = transformers.CHMv2ForDepthEstimation(chmv2_config(layer_norm_eps)).eval()
    randomise(model, seed, k_bias)
    model.save_pretrained(folder)
    return Path(folder), model


_HEAD_RENAMES = (
    (r"reassemble_stage\.layers\.(\d)\.projection\.", r"reassemble_blocks.projects.\1.conv."),
    (r"reassemble_stage\.layers\.(\d)\.resize\.", r"reassemble_blocks.resize_layers.\1."),
    (r"reassemble_stage\.readout_projects\.", "reassemble_blocks.readout_projects."),
    (r"^convs\.(\d)\.weight", r"convs.\1.conv.weight"),
    (r"fusion_layers\.(\d)\.projection\.", r"fusion_blocks.\1.project.conv."),
    (r"fusion_layers\.(\d)\.residual_layer(\d)\.convolution(\d)\.", r"fusion_blocks.\1.res_conv_unit\2.conv\3.conv."),
)


def meta_decoder(hf_state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Meta's decoder state dict (DPTHead names) from an HF CHMv2 state dict."""
    out = {}
    for key, value in hf_state.items():
        if not key.startswith("head."):
            continue
        name = key[len("head."):]
        for pattern, replacement in _HEAD_RENAMES:
            name = re.sub(pattern, replacement, name)
        out[name] = value.clone()
    return out


def meta_backbone(hf_state: Dict[str, torch.Tensor], depth: int, heads: int) -> Dict[str, torch.Tensor]:
    """Meta's DinoVisionTransformer state dict from the `backbone.` tensors of an HF CHMv2 state dict."""
    bb = {k[len("backbone."):]: v.clone() for k, v in hf_state.items() if k.startswith("backbone.")}
    dim = bb["embeddings.cls_token"].shape[-1]
    out = {
        "cls_token": bb["embeddings.cls_token"],
        "storage_tokens": bb["embeddings.register_tokens"],
        "mask_token": bb["embeddings.mask_token"].reshape(1, dim),
        "patch_embed.proj.weight": bb["embeddings.patch_embeddings.weight"],
        "patch_embed.proj.bias": bb["embeddings.patch_embeddings.bias"],
        "rope_embed.periods": hf_periods(dim // heads),
        "norm.weight": bb["norm.weight"],
        "norm.bias": bb["norm.bias"],
    }
    for i in range(depth):
        hf, meta = f"model.layer.{i}.", f"blocks.{i}."
        attn = hf + "attention."
        out[meta + "attn.qkv.weight"] = torch.cat([bb[attn + f"{p}_proj.weight"] for p in "qkv"])
        out[meta + "attn.qkv.bias"] = torch.cat([bb[attn + f"{p}_proj.bias"] for p in "qkv"])
        out[meta + "attn.qkv.bias_mask"] = torch.cat([torch.ones(dim), torch.zeros(dim), torch.ones(dim)])
        out[meta + "attn.proj.weight"] = bb[attn + "o_proj.weight"]
        out[meta + "attn.proj.bias"] = bb[attn + "o_proj.bias"]
        for n in ("norm1", "norm2"):
            out[f"{meta}{n}.weight"], out[f"{meta}{n}.bias"] = bb[f"{hf}{n}.weight"], bb[f"{hf}{n}.bias"]
        out[meta + "ls1.gamma"] = bb[hf + "layer_scale1.lambda1"]
        out[meta + "ls2.gamma"] = bb[hf + "layer_scale2.lambda1"]
        for meta_name, hf_name in (("fc1", "up_proj"), ("fc2", "down_proj")):
            out[f"{meta}mlp.{meta_name}.weight"] = bb[f"{hf}mlp.{hf_name}.weight"]
            out[f"{meta}mlp.{meta_name}.bias"] = bb[f"{hf}mlp.{hf_name}.bias"]
    return out


def write_meta_chmv2(folder: Path, model) -> Tuple[Path, Path]:
    """Meta's two files for `model` (a CHMv2ForDepthEstimation): the decoder .pth and a backbone .pth named
    as a SAT-493M checkpoint."""
    folder = Path(folder)
    state = model.state_dict()
    config = model.config.backbone_config
    decoder = write_meta_pth(folder / "dinov3_tiny_chmv2_dpt_head.pth", meta_decoder(state))
    backbone = write_meta_pth(folder / "dinov3_tiny_pretrain_sat493m.pth",
                              meta_backbone(state, config.num_hidden_layers, config.num_attention_heads))
    return decoder, backbone
