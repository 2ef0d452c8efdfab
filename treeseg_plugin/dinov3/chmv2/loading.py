"""Loading CHMv2 strictly, in either released form.

* Meta: the decoder `.pth` (`dinov3_vitl16_chmv2_dpt_head-3703d643.pth`: the DPT head only, our module
  names) together with a DINOv3 ViT-L/16 SAT-493M backbone checkpoint (any form `load_backbone` reads).
* Hugging Face: a CHMv2 model folder or repo id (`facebook/dinov3-vitl16-chmv2-dpt-head`): config.json +
  model.safetensors holding `backbone.*` (transformers' DINOv3ViTBackbone) and `head.*`.

Files are found as the backbone's are (weights.resolve_weights: a path, the Hugging Face cache, a download
only when allowed) and read by the same safe readers. Every tensor of a file is used, every parameter
filled, shapes must match, NaN/Inf are refused, and an 8-hex-digit SHA-256 prefix in a `.pth` name is
checked. The backbone must be SAT-493M and as wide as the head. Nothing is ever random.

transformers' CHMv2 backbone has a K bias (`key_bias: true`), which Meta's ViT masks out: a Hugging Face
file's `k_proj.bias` is used as transformers uses it (the fused qkv bias keeps it, its mask is all ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ..backbone import Backbone, load_backbone
from ..checkpoint import verify
from ..checkpoint.files import load_hf_config, read_state_dict
from ..checkpoint.hf_mapping import hf_to_meta
from ..checkpoint.layout import FORMAT_NAMES, HF_FORMAT, META_FORMAT, hf_layer_prefix, infer_hf
from ..device import DeviceLike, check_dtype, resolve_device
from ..errors import CheckpointError, WeightsNotFoundError, format_keys
from ..variants import DATASET_NAMES, VARIANTS
from ..vision_transformer import DinoVisionTransformer, ViTConfig
from ..weights import ResolvedWeights, Source, WeightsInfo, resolve_weights, sha256_file, verify_meta_hash
from .config import (
    BACKBONE_VARIANT,
    CHMV2_DOWNLOAD_FORM,
    CHMV2_MEAN,
    CHMV2_STD,
    HF_REPO_ID,
    MAX_HEIGHT_M,
    MIN_HEIGHT_M,
    out_layers,
)
from .head import DPTHead
from .layout import USE_RELEASED_HEAD, hf_head_name_to_meta, hf_head_settings, infer_head
from .model import CanopyHeightModel, HeadWeightsInfo

Log = Optional[Callable[[str], None]]
SAT_BACKBONE = VARIANTS[BACKBONE_VARIANT]


def _fill(module: nn.Module, state: Dict[str, Tensor], path: Path, device: torch.device,
          dtype: torch.dtype) -> int:
    """Load `state` (our names) into `module` (built on the meta device): exactly its tensors, finite, of
    its shapes. Returns the number of tensors used."""
    shapes = {k: tuple(t.shape) for k, t in module.state_dict().items()}
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    if missing or unexpected:
        problems = [f"{what} ({len(keys)}): {format_keys(keys)}"
                    for what, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise CheckpointError(f"{path}: the tensors do not match a CHMv2 DPT head ({'; '.join(problems)}). "
                              f"The file is incomplete, modified or of another model. {USE_RELEASED_HEAD}")
    verify.check_values(state, path)
    wrong = [f"{k} {list(state[k].shape)} (expected {list(s)})" for k, s in shapes.items()
             if tuple(state[k].shape) != s]
    if wrong:
        raise CheckpointError(f"{path}: shape mismatch ({len(wrong)}): {format_keys(wrong, 3)}. {USE_RELEASED_HEAD}")
    module.load_state_dict({k: _copy(t, device, dtype) for k, t in state.items()}, strict=True, assign=True)
    module.requires_grad_(False).eval()
    return len(shapes)


def _copy(tensor: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A copy on device/dtype that shares nothing with the file's (memory-mapped) tensor."""
    out = tensor.to(device=device, dtype=dtype)
    return out.clone() if out.data_ptr() == tensor.data_ptr() else out


def _checked_backbone(backbone: Backbone, head_dim: int) -> Tuple[int, ...]:
    """The blocks the head reads; refuses a backbone of another dataset or width."""
    weights = backbone.weights
    if weights.dataset != "sat493m":
        trained = f"pretrained on {DATASET_NAMES[weights.dataset]}" if weights.dataset else \
            "of unknown pretraining data (no 'sat493m' in its name or folder)"
        raise CheckpointError(
            f"{weights.path}: this backbone is {trained}; CHMv2's head was trained on the DINOv3 ViT-L/16 "
            f"SAT-493M backbone. Use {SAT_BACKBONE.meta_filename} (Meta's form) or "
            f"{SAT_BACKBONE.hf_repo_id}, under a name that keeps 'sat493m'.")
    if backbone.embed_dim != head_dim:
        raise CheckpointError(
            f"{weights.path}: the backbone's embedding width is {backbone.embed_dim} but the CHMv2 head reads "
            f"{head_dim}-wide features: it belongs to another backbone size. Use {SAT_BACKBONE.meta_filename}.")
    try:
        return out_layers(backbone.depth)
    except ValueError as error:
        raise CheckpointError(f"{weights.path}: {error}. Use {SAT_BACKBONE.meta_filename}.") from None


def _hf_backbone(state: Dict[str, Tensor], backbone_config: dict, path: Path, config_path: Path,
                 device: torch.device, dtype: torch.dtype) -> Tuple[DinoVisionTransformer, int]:
    """Our ViT from transformers' DINOv3ViTBackbone tensors (prefix removed), strictly; and the tensors used."""
    k_biases = {k for k in state if k.endswith(".attention.k_proj.bias")}
    key_bias = backbone_config.get("key_bias", False) is True
    if key_bias != bool(k_biases):
        raise CheckpointError(f"{config_path}: key_bias is {str(key_bias).lower()} but {path} has "
                              f"{len(k_biases)} k_proj.bias tensors. Use the config.json of the same release.")
    without_k = {k: v for k, v in state.items() if k not in k_biases}
    settings = {k: v for k, v in backbone_config.items() if k != "key_bias"}
    config, rope_base, _ = infer_hf(without_k, path, settings, config_path)
    vit = DinoVisionTransformer(config, patch_stride=16)
    shapes = {k: tuple(t.shape) for k, t in vit.state_dict().items()}

    def convert(source: Dict[str, Tensor]) -> Dict[str, Tensor]:
        out = hf_to_meta(source, config=config, rope_base=rope_base)
        if key_bias:  # transformers adds the K bias: keep it, unmasked
            layers = hf_layer_prefix(source)
            for i in range(config.depth):
                attn = f"{layers}{i}.attention."
                out[f"blocks.{i}.attn.qkv.bias"] = torch.cat(
                    [source[attn + "q_proj.bias"], source[attn + "k_proj.bias"], source[attn + "v_proj.bias"]])
                out[f"blocks.{i}.attn.qkv.bias_mask"] = torch.ones(3 * config.embed_dim)  # [3D]
        return out

    tensors, lineage = verify.traced_convert(convert, state)
    if lineage.keys() != shapes.keys():
        raise RuntimeError(f"internal key mapping error: {format_keys(lineage.keys() ^ shapes.keys())}")
    verify.check_coverage(state, lineage, path)
    verify.check_values(state, path)
    verify.check_shapes(state, lineage, shapes, path)
    verify.check_buffers({k: t for k, t in tensors.items() if not (key_bias and k.endswith("bias_mask"))}, path)
    vit.load_state_dict({k: _copy(t, device, torch.float32 if k == "rope_embed.periods" else dtype)
                         for k, t in tensors.items()}, strict=True, assign=True)
    vit.requires_grad_(False).eval()
    return vit, sum(len(line.sources) for line in lineage.values())


def _variant_name(config: ViTConfig) -> str:
    shape = (config.embed_dim, config.depth, config.num_heads, config.ffn_hidden_dim)
    released = (SAT_BACKBONE.embed_dim, SAT_BACKBONE.depth, SAT_BACKBONE.num_heads, SAT_BACKBONE.ffn_hidden_dim)
    return SAT_BACKBONE.name if shape == released else "custom"


def _from_hf(state: Dict[str, Tensor], resolved: ResolvedWeights, digest: Optional[str], device: torch.device,
             dtype: torch.dtype) -> CanopyHeightModel:
    path = resolved.path
    if resolved.config_path is None:
        raise CheckpointError(f"{path}: a Hugging Face CHMv2 file needs its config.json next to it. Download the "
                              f"whole folder of {HF_REPO_ID}.")
    config = load_hf_config(resolved.config_path)
    others = [k for k in state if not k.startswith(("backbone.", "head."))]
    if others:
        raise CheckpointError(f"{path}: tensors outside 'backbone.' and 'head.' ({len(others)}): "
                              f"{format_keys(others)}. {USE_RELEASED_HEAD}")
    head_state = {hf_head_name_to_meta(k[len("head."):]): v for k, v in state.items() if k.startswith("head.")}
    head_config = infer_head(head_state, path, MIN_HEIGHT_M, MAX_HEIGHT_M)
    low, high, layers = hf_head_settings(config, head_config, resolved.config_path)
    head = DPTHead(replace(head_config, min_height=low, max_height=high))
    head_used = _fill(head, head_state, path, device, dtype)
    backbone_state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    vit, backbone_used = _hf_backbone(backbone_state, config["backbone_config"], path, resolved.config_path,
                                      device, dtype)
    weights = WeightsInfo(path, HF_FORMAT, backbone_used, len(backbone_state), "sat493m")
    backbone = Backbone(vit, _variant_name(vit.config), weights, CHMV2_MEAN, CHMV2_STD).eval()
    if backbone.embed_dim != head.config.embed_dim:
        raise CheckpointError(f"{path}: the backbone is {backbone.embed_dim} wide but the head reads "
                              f"{head.config.embed_dim}. {USE_RELEASED_HEAD}")
    info = HeadWeightsInfo(str(path), HF_FORMAT, head_used, len(head_state), digest)
    return CanopyHeightModel(backbone, head, layers, info)


def is_hf_chmv2(state: Dict[str, Tensor]) -> bool:
    """A Hugging Face CHMv2 state dict: backbone and head in one file."""
    return "backbone.embeddings.cls_token" in state or any(k.startswith("head.") for k in state)


def load_canopy_height_model(
    source: Source = HF_REPO_ID,
    backbone: Optional[Source] = None,
    device: DeviceLike = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    allow_download: bool = False,
    token: Optional[str] = None,
    verify_hash: bool = True,
    log: Log = None,
) -> CanopyHeightModel:
    """Find, verify and load CHMv2; never falls back to anything else.

    source: Meta's decoder .pth (then `backbone` is required: the SAT-493M ViT-L/16, as load_backbone takes
        it), or a Hugging Face CHMv2 model folder, model.safetensors or repo id (then no `backbone`).
    device, dtype, allow_download, token, verify_hash, log: as load_backbone.
    Raises WeightsNotFoundError or CheckpointError (DinoV3Error), or ValueError for bad arguments.
    """
    target = resolve_device(device, log)
    check_dtype(dtype, target)
    try:
        resolved = resolve_weights(source, allow_download=allow_download, token=token, log=log)
    except WeightsNotFoundError as error:
        raise WeightsNotFoundError(f"{error} CHMv2's weights are gated too: accept the licence of {HF_REPO_ID} "
                                   f"on Hugging Face, or request Meta's files at {CHMV2_DOWNLOAD_FORM}.") from None
    digest = verify_meta_hash(resolved.path, log) if verify_hash else None
    state, _ = read_state_dict(resolved.path, resolved.shards)
    verify.check_not_empty(state, resolved.path)
    if is_hf_chmv2(state):
        if backbone is not None:
            raise ValueError(f"{resolved.path} is a Hugging Face CHMv2 model, which includes its backbone: "
                             "give no separate backbone.")
        model = _from_hf(state, resolved, digest, target, dtype)
    else:
        if backbone is None:
            raise WeightsNotFoundError(
                f"{resolved.path} is a CHMv2 decoder without a backbone: Meta's decoder file holds only the head. "
                f"Give the DINOv3 ViT-L/16 SAT-493M backbone too ({SAT_BACKBONE.meta_filename} from Meta's form, "
                f"or {SAT_BACKBONE.hf_repo_id}), or use the Hugging Face model {HF_REPO_ID}, which includes it.")
        head = DPTHead(infer_head(state, resolved.path, MIN_HEIGHT_M, MAX_HEIGHT_M))
        head_used = _fill(head, state, resolved.path, target, dtype)
        base = load_backbone(backbone, target, dtype, 16, allow_download=allow_download, token=token,
                             verify_hash=verify_hash, log=log)
        layers = _checked_backbone(base, head.config.embed_dim)
        base = Backbone(base.vit, base.variant, base.weights, CHMV2_MEAN, CHMV2_STD).eval()
        info = HeadWeightsInfo(str(resolved.path), META_FORMAT, head_used, len(state), digest)
        model = CanopyHeightModel(base, head, layers, info)
    if log:
        info, weights = model.head_weights, model.backbone.weights
        log(f"CHMv2 head: {info.tensors_loaded}/{info.tensors_total} tensors from {info.path} "
            f"({FORMAT_NAMES[info.format]}: {model.config.describe()}); backbone {model.backbone.variant} "
            f"{weights.tensors_loaded}/{weights.tensors_total} tensors; blocks {[i + 1 for i in model.out_layers]}")
        log(f"Normalisation: CHMv2 mean {CHMV2_MEAN}, std {CHMV2_STD}")
    return model


@dataclass(frozen=True)
class VerifiedHead:
    """What :func:`verify_canopy_height_weights` checked in a CHMv2 file."""

    path: Path
    format: str  # "meta-pth" (the decoder alone) | "hf-safetensors" (backbone included)
    tensors_loaded: int
    tensors_total: int
    sha256: str


def is_chmv2_weights(path: Path) -> bool:
    """Whether a weights file or folder is CHMv2's rather than a backbone's: "chmv2" in its name (as both
    releases are named) or a config.json next to it whose model_type is "chmv2"."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if "chmv2" in path.name.lower() or "chmv2" in folder.name.lower():
        return True
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "chmv2"


def verify_canopy_height_weights(source: Source, *, verify_hash: bool = True, log: Log = None) -> VerifiedHead:
    """Check a CHMv2 file as :func:`load_canopy_height_model` does (every tensor used, shapes, values, the
    name's SHA-256 prefix), assigning the file's tensors to the meta device, so that the weights are read
    but never copied (the modules' initial parameters exist briefly). Meta's decoder is checked alone (its
    backbone is a weights entry of its own); a Hugging Face model with its backbone. Never downloads;
    raises what the loader raises."""
    resolved = resolve_weights(source, log=log)
    digest = verify_meta_hash(resolved.path, log) if verify_hash else None
    state, _ = read_state_dict(resolved.path, resolved.shards)
    verify.check_not_empty(state, resolved.path)
    meta = torch.device("meta")
    if is_hf_chmv2(state):
        model = _from_hf(state, resolved, digest, meta, torch.float32)
        used, fmt = model.head_weights.tensors_loaded + model.backbone.weights.tensors_loaded, HF_FORMAT
    else:
        head = DPTHead(infer_head(state, resolved.path, MIN_HEIGHT_M, MAX_HEIGHT_M))
        used, fmt = _fill(head, state, resolved.path, meta, torch.float32), META_FORMAT
    if log:
        log(f"Verified {used}/{len(state)} CHMv2 tensors of {resolved.path} ({FORMAT_NAMES[fmt]})")
    return VerifiedHead(resolved.path, fmt, used, len(state), digest or sha256_file(resolved.path))
