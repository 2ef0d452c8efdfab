"""CHMv2 checkpoint layouts: the head's shape from its tensors, Hugging Face names -> Meta names, and the
settings of a Hugging Face CHMv2 config.json.

    Meta decoder (.pth, ours)                         Hugging Face (model.safetensors, prefix "head.")
    reassemble_blocks.projects.N.conv.*               reassemble_stage.layers.N.projection.*
    reassemble_blocks.resize_layers.N.*               reassemble_stage.layers.N.resize.*
    reassemble_blocks.readout_projects.N.0.*          reassemble_stage.readout_projects.N.0.*
    convs.N.conv.weight                               convs.N.weight
    fusion_blocks.N.project.conv.*                    fusion_layers.N.projection.*
    fusion_blocks.N.res_conv_unitU.convC.conv.*       fusion_layers.N.residual_layerU.convolutionC.*
    conv_depth.head.{0,2,4}.*                         conv_depth.head.{0,2,4}.*
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Dict, Tuple

from torch import Tensor

from ..errors import CheckpointError, format_keys, printable
from .config import CHMV2_DOWNLOAD_FORM, REASSEMBLE_FACTORS, HeadConfig

USE_RELEASED_HEAD = (f"Use Meta's released decoder (dinov3_vitl16_chmv2_dpt_head-3703d643.pth, form "
                     f"{CHMV2_DOWNLOAD_FORM}) or the Hugging Face folder facebook/dinov3-vitl16-chmv2-dpt-head.")

_HF_TO_META = (
    (r"^reassemble_stage\.layers\.(\d+)\.projection\.", r"reassemble_blocks.projects.\1.conv."),
    (r"^reassemble_stage\.layers\.(\d+)\.resize\.", r"reassemble_blocks.resize_layers.\1."),
    (r"^reassemble_stage\.readout_projects\.", r"reassemble_blocks.readout_projects."),
    (r"^convs\.(\d+)\.weight$", r"convs.\1.conv.weight"),
    (r"^fusion_layers\.(\d+)\.projection\.", r"fusion_blocks.\1.project.conv."),
    (r"^fusion_layers\.(\d+)\.residual_layer(\d)\.convolution(\d)\.", r"fusion_blocks.\1.res_conv_unit\2.conv\3.conv."),
)


def hf_head_name_to_meta(key: str) -> str:
    """The Meta decoder name of an HF head tensor (names no rule knows are kept: they show as unexpected)."""
    for pattern, replacement in _HF_TO_META:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return key


def _shape(state: Dict[str, Tensor], key: str, ndim: int, path: Path) -> Tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{path}: not a CHMv2 DPT head: tensor '{key}' is missing (the file's first keys: "
                              f"{format_keys(list(state), 3)}). {USE_RELEASED_HEAD}")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"{path}: '{key}' has shape {list(shape)}, not {ndim}-dimensional. {USE_RELEASED_HEAD}")
    return shape


def infer_head(state: Dict[str, Tensor], path: Path, min_height: float, max_height: float) -> HeadConfig:
    """The HeadConfig the (Meta-named) tensors describe: D from the readout projection [D, 2D], the
    reassemble channels from the 1x1 projections [C, D, 1, 1], fusion width, hidden channels and bins from
    the convolutions that produce them."""
    dim = _shape(state, "reassemble_blocks.readout_projects.0.0.weight", 2, path)[0]
    channels = tuple(_shape(state, f"reassemble_blocks.projects.{i}.conv.weight", 4, path)[0] for i in range(4))
    return HeadConfig(
        embed_dim=dim,
        post_process_channels=channels,
        channels=_shape(state, "convs.0.conv.weight", 4, path)[0],
        hidden_channels=_shape(state, "conv_depth.head.2.weight", 4, path)[0],
        n_bins=_shape(state, "conv_depth.head.4.weight", 4, path)[0],
        min_height=min_height,
        max_height=max_height,
    )


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def hf_head_settings(config: dict, head: HeadConfig, config_path: Path) -> Tuple[float, float, Tuple[int, ...]]:
    """(min height, max height, out layers) from a CHMv2 config.json, which must describe `head` (inferred from
    the tensors) and the variant of the reference implementation (readout "project", mixlog bins)."""
    wrong = []
    expected = {"model_type": "chmv2", "readout_type": "project", "bins_strategy": "chmv2_mixlog",
                "norm_strategy": "chmv2_mixlog", "patch_size": 16}
    wrong += [f"{k} {printable(repr(config.get(k, v)), 40)} (supported: {v!r})"
              for k, v in expected.items() if config.get(k, v) != v]
    factors = config.get("reassemble_factors", list(REASSEMBLE_FACTORS))
    if not isinstance(factors, list) or [float(f) for f in factors if _positive(f)] != list(REASSEMBLE_FACTORS):
        wrong.append(f"reassemble_factors {printable(repr(factors), 40)} (supported: {list(REASSEMBLE_FACTORS)})")
    found = {"post_process_channels": list(head.post_process_channels), "fusion_hidden_size": head.channels,
             "head_hidden_size": head.hidden_channels, "number_output_channels": head.n_bins}
    wrong += [f"{k} {printable(repr(config[k]), 40)} (weights: {v!r})"
              for k, v in found.items() if k in config and config[k] != v]
    low, high = config.get("min_depth", head.min_height), config.get("max_depth", head.max_height)
    if not (_positive(low) and _positive(high) and low < high / 8):
        wrong.append(f"min_depth {printable(repr(low), 20)} / max_depth {printable(repr(high), 20)} (need "
                     "0 < min_depth < max_depth / 8)")
    backbone = config.get("backbone_config")
    if not isinstance(backbone, dict):
        wrong.append("backbone_config missing (a CHMv2 config.json describes its DINOv3 backbone)")
        backbone = {}
    for flag in ("apply_layernorm", "reshape_hidden_states", "return_class_token"):
        if backbone.get(flag, True) is not True:
            wrong.append(f"backbone_config.{flag} {printable(repr(backbone[flag]), 20)} (supported: true)")
    indices = backbone.get("out_indices", [6, 12, 18, 24])
    depth = backbone.get("num_hidden_layers", 24)
    four = isinstance(indices, list) and len(indices) == 4 and isinstance(depth, int)
    if not (four and all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= depth for i in indices)):
        wrong.append(f"backbone_config.out_indices {printable(repr(indices), 40)} (four blocks 1..{depth})")
    if wrong:
        raise CheckpointError(f"{config_path}: not a supported CHMv2 configuration, or it disagrees with the "
                              f"weights: {'; '.join(wrong)}. {USE_RELEASED_HEAD}")
    return float(low), float(high), tuple(i - 1 for i in indices)  # hidden state i = after block i - 1
