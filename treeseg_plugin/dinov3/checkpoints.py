"""DINOv3 ViT checkpoints: reading, format detection, architecture inference, key mapping, strict loading.

Two layouts are understood (see docs/weights.md):

* Meta (`.pth` from Meta's download form): the official `DinoVisionTransformer` state dict, whose names
  are our module names. A top-level dict holding it under "model", "teacher" or "state_dict" is accepted,
  and a common prefix in front of `cls_token` (e.g. "backbone.", "module.") is stripped; tensors outside
  that prefix (training heads) are ignored and reported.
* Hugging Face (`model.safetensors`, possibly sharded): transformers' `DINOv3ViTModel` names, layers
  spelled `layer.N.*` (hub files) or `model.layer.N.*` (transformers 5 in memory). q/k/v are concatenated
  into our fused qkv (K bias zero), and the buffers HF does not store are computed: RoPE periods as
  transformers does (fp32, 1/inv_freq) and the [1,0,1] k-bias masks.

The architecture is inferred from the tensors: D from cls_token, depth from the block count, R from the
storage tokens, MLP vs SwiGLU and its width from the FFN weights, qkv bias from its presence. Heads: HF
config.json when present; else for Meta files head_dim = 4 * len(rope periods); else (HF file without
config) the heads of the released ViT with the same D, depth and FFN, otherwise head_dim 64.

Loading is strict: every tensor of the file is used, every parameter and buffer of the model is filled
(the model is built on the meta device, so nothing else can exist), shapes must match, every tensor must
be finite. Any failure raises CheckpointError naming the file, the keys and what to do.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from .attention import k_bias_mask
from .errors import CheckpointError, format_keys, printable
from .rope import rope_periods
from .variants import META_DOWNLOAD_FORM, VARIANTS
from .vision_transformer import DinoVisionTransformer, ViTConfig

META_FORMAT = "meta-pth"
HF_FORMAT = "hf-safetensors"
FORMAT_NAMES = {META_FORMAT: "Meta format", HF_FORMAT: "HF format"}

_WRAPPER_KEYS = ("model", "teacher", "state_dict")
_REDOWNLOAD = (
    "The file is probably truncated or corrupt: download it again (Hugging Face repo or Meta's form "
    f"{META_DOWNLOAD_FORM})."
)
_USE_RELEASED = (
    "Use an unmodified released DINOv3 ViT checkpoint (Meta .pth or Hugging Face model.safetensors)."
)

# Exceptions that are not about the file and must never be turned into a CheckpointError.
_NOT_ABOUT_THE_FILE = (KeyboardInterrupt, SystemExit, GeneratorExit)

# safetensors: the header-size limit of the safetensors library itself, and the bits per element of
# every dtype it defines (sub-byte types included, so that no valid file is refused here).
SAFETENSORS_MAX_HEADER = 100_000_000
_SAFETENSORS_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6,
}

# target key -> (source keys in the file, function combining those tensors into the target tensor)
_Source = Tuple[Tuple[str, ...], Callable[[List[Tensor]], Tensor]]


@dataclass(frozen=True)
class LoadedCheckpoint:
    model: DinoVisionTransformer  # eval mode, no grad, on the requested device and dtype
    format: str  # META_FORMAT | HF_FORMAT
    tensors_loaded: int  # tensors of the file used (all of them)
    tensors_total: int  # tensors in the file (its backbone part for wrapped training checkpoints)
    model_tensors: int  # parameters + buffers of the model, all filled
    computed: Tuple[str, ...]  # model buffers computed, not read (HF: RoPE periods, k-bias masks)
    notes: Tuple[str, ...]  # how the heads were found, ignored tensors: for the log


# ---------------------------------------------------------------- reading


def _sniff(path: Path) -> str:
    """'zip' (torch.save), 'pickle' (legacy torch.save) or 'safetensors', from the first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({_first_line(error)}). Check the file's permissions.") from None
    if not head:
        raise CheckpointError(f"{path}: the file is empty. {_REDOWNLOAD}")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head[8:9] == b"{":  # an 8-byte header length, then the JSON header: checked by _safetensors_problem
        return "safetensors"
    raise CheckpointError(
        f"{path}: not a PyTorch checkpoint or safetensors file (it starts with {head[:8]!r}). "
        "Pass a DINOv3 .pth file from Meta, a Hugging Face model.safetensors or a model folder."
    )


def _first_line(error: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()  # torch colours some messages
    return printable(f"{type(error).__name__}: {text[0] if text else ''}", 240)


def _weights_only_refusal(path: Path, error: BaseException) -> CheckpointError | None:
    """The CheckpointError for a pickle that torch.load(weights_only=True) refused, else None.

    torch's own message starts by explaining how to load the file anyway (weights_only=False, which
    runs code from the file); only the reason is kept.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    if "Weights only load failed" not in text and "weights_only" not in text:
        return None
    unsafe = re.search(r"Unsupported global: GLOBAL ([\w.<>]+)", text)
    if unsafe:
        return CheckpointError(
            f"{path}: refused: the file is a pickle that holds Python objects, not only tensors (it needs "
            f"{printable(unsafe.group(1), 120)}); loading it could run code from the file. TreeSeg loads .pth "
            "files only with torch.load(weights_only=True) and never runs code from a checkpoint. Use the "
            "released file, or re-save just the tensors (torch.save(model.state_dict(), path)) in a trusted "
            "environment."
        )
    detail = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    reason = printable(detail.group(1).split(". Please")[0], 200) if detail else _first_line(error)
    return CheckpointError(
        f"{path}: torch.load(weights_only=True) cannot read it ({reason}): the file is corrupt or holds more "
        f"than plain tensors. {_REDOWNLOAD}"
    )


def _torch_load(path: Path, container: str) -> object:
    """torch.load with weights_only=True, memory-mapped where the file format allows it."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=container == "zip")
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except BaseException as error:  # anything a corrupt file can raise; fatal signals are re-raised
        if isinstance(error, _NOT_ABOUT_THE_FILE):
            raise
        refusal = _weights_only_refusal(path, error)
        if refusal is not None:
            raise refusal from None
        raise CheckpointError(f"{path}: unreadable PyTorch checkpoint ({_first_line(error)}). {_REDOWNLOAD}") from None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _no_duplicates(pairs: List[Tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate names: {format_keys(sorted({k for k in keys if keys.count(k) > 1}), 3)}")
    return dict(pairs)


def _safetensors_entry(entry: object, data_size: int) -> Tuple[int, int] | str:
    """(begin, end) of a valid header entry in the data section, else what is wrong with it."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        return "an entry needs dtype, shape and data_offsets"
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    bits = _SAFETENSORS_BITS.get(dtype) if isinstance(dtype, str) else None
    if bits is None:
        return f"unknown dtype {printable(repr(dtype), 40)}"
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        return f"shape {printable(repr(shape), 60)} is not a list of non-negative integers"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        return f"data_offsets {printable(repr(offsets), 60)} are not [begin, end] with 0 <= begin <= end"
    begin, end = offsets
    if end > data_size:
        return f"data_offsets [{begin}, {end}] run past the end of the file (its data section has {data_size} bytes)"
    numel, most = 1, (data_size * 8) // bits + 1  # stop multiplying early: a crafted shape can be huge
    if 0 in shape:
        numel = 0
    for dim in shape:
        numel *= dim
        if numel > most:
            break
    if numel * bits != (end - begin) * 8:
        return (f"shape {printable(repr(shape), 60)} of {dtype} does not fit its data_offsets [{begin}, {end}] "
                f"({end - begin} bytes)")
    return begin, end


def _safetensors_problem(path: Path) -> str:
    """What is wrong with a safetensors file's header, or "" when it is sound.

    The 8-byte length must fit the file, the header must be a UTF-8 JSON object whose entries have a known
    dtype, a shape and data offsets that agree, and the tensors must tile the data section exactly (no
    overlap, no gap, nothing past the end). Checked before any tensor is read or memory is allocated for
    it, and independently of the safetensors version installed.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        header_len = int.from_bytes(prefix, "little")
        if len(prefix) < 8:
            return f"the file has only {size} bytes"
        if header_len == 0 or header_len > size - 8:
            return f"the header length says {header_len} bytes but only {size - 8} follow: the file is cut short"
        if header_len > SAFETENSORS_MAX_HEADER:
            return f"the header length {header_len} exceeds the {SAFETENSORS_MAX_HEADER} bytes safetensors allows"
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        return f"the header is not valid UTF-8 JSON: {_first_line(error)}"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    data_size = size - 8 - header_len
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                return "the header's __metadata__ is not a map of strings"
            continue
        span = _safetensors_entry(entry, data_size)
        if isinstance(span, str):
            return f"tensor '{printable(name, 120)}': {span}"
        spans.append((*span, name))
    position, previous = 0, ""
    for begin, end, name in sorted(spans):
        if begin < position:
            return f"tensor '{printable(name, 120)}' overlaps '{printable(previous, 120)}'"
        if begin > position:
            return f"{begin - position} bytes before tensor '{printable(name, 120)}' belong to no tensor"
        position, previous = end, name
    if position != data_size:
        return f"the tensors cover {position} of the {data_size} data bytes"
    return ""


def _read_safetensors(path: Path) -> Dict[str, Tensor]:
    from safetensors.torch import load_file

    problem = _safetensors_problem(path)
    if problem:
        raise CheckpointError(f"{path}: unreadable safetensors file ({problem}). {_REDOWNLOAD}")
    try:
        return load_file(str(path))
    except BaseException as error:  # safetensors' Rust panics (PanicException) are BaseExceptions
        if isinstance(error, _NOT_ABOUT_THE_FILE):
            raise
        raise CheckpointError(f"{path}: unreadable safetensors file ({_first_line(error)}). {_REDOWNLOAD}") from None


def _as_state_dict(obj: object, path: Path) -> Tuple[Dict[str, Tensor], List[str]]:
    """The tensor dict inside what torch.load returned (unwrapping "model"/"teacher"/"state_dict")."""
    notes = []
    if isinstance(obj, dict) and not all(isinstance(v, Tensor) for v in obj.values()):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj, notes = obj[key], [f"state dict taken from the '{key}' entry"]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, not a state dict of tensors "
            f"(nor one under {', '.join(repr(k) for k in _WRAPPER_KEYS)}). {_USE_RELEASED}"
        )
    others = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if others:
        raise CheckpointError(
            f"{path}: not a state dict: {len(others)} entries are not named tensors ({format_keys(others)}). "
            f"{_USE_RELEASED}"
        )
    return obj, notes


def read_state_dict(path: Path, shards: Sequence[Path] = ()) -> Tuple[Dict[str, Tensor], List[str]]:
    """All tensors of a checkpoint file (or of the shards listed by `path`, a safetensors index)."""
    if shards:
        state: Dict[str, Tensor] = {}
        for shard in shards:
            _sniff(shard)
            part = _read_safetensors(shard)
            clash = sorted(state.keys() & part.keys())
            if clash:
                raise CheckpointError(f"{shard}: repeats tensors of other shards of {path}: "
                                      f"{format_keys(clash)}. {_REDOWNLOAD}")
            state.update(part)
        return state, []
    container = _sniff(path)
    if container == "safetensors":
        return _read_safetensors(path), []
    return _as_state_dict(_torch_load(path, container), path)


# ---------------------------------------------------------------- layout and architecture


def _strip_prefix(state: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], List[str]]:
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


def _detect_format(state: Dict[str, Tensor], path: Path) -> str:
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
        f"{_USE_RELEASED}"
    )


def _check_not_empty(state: Dict[str, Tensor], path: Path) -> None:
    """No tensor without elements: the architecture is read from shapes, and every shape must be backed by
    data in the file (an empty [0, 1, 2**40] tensor costs no bytes but would describe a huge model)."""
    empty = [f"{k} {list(t.shape)}" for k, t in state.items() if t.numel() == 0]
    if empty:
        raise CheckpointError(f"{path}: tensors without elements ({len(empty)}): {format_keys(empty)}. "
                              f"{_USE_RELEASED}")


def _require(state: Dict[str, Tensor], key: str, path: Path, layout: str) -> Tensor:
    """state[key], which must exist and have as many dimensions as `layout` (e.g. "[1, 1, D]")."""
    if key not in state:
        hint = ""
        if "pos_embed" in state or "embeddings.position_embeddings" in state:
            hint = " It has learned position embeddings: a DINOv2 or other ViT, not DINOv3."
        raise CheckpointError(
            f"{path}: missing tensor '{key}', needed to infer the architecture.{hint} {_USE_RELEASED}"
        )
    if state[key].ndim != layout.count(",") + 1:
        raise CheckpointError(
            f"{path}: '{key}' has shape {list(state[key].shape)}; a DINOv3 ViT stores it as {layout}. "
            f"{_USE_RELEASED}"
        )
    return state[key]


def _block_count(state: Dict[str, Tensor], prefix: str, path: Path) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for m in map(pattern.match, state) if m}
    if not indices:
        raise CheckpointError(f"{path}: no transformer blocks ('{prefix}N.*' tensors). {_USE_RELEASED}")
    depth = max(indices) + 1
    if len(indices) != depth:  # also bounds the depth by the number of tensors in the file
        first_missing = min(set(range(len(indices) + 1)) - indices)
        raise CheckpointError(
            f"{path}: transformer blocks are missing: the highest is '{prefix}{depth - 1}' but the file has "
            f"only {len(indices)} blocks (the first missing is '{prefix}{first_missing}'). {_USE_RELEASED}"
        )
    return depth


def _check_patch(state: Dict[str, Tensor], key: str, path: Path) -> int:
    weight = _require(state, key, path, "[D, 3, 16, 16]")
    if tuple(weight.shape[1:]) != (3, 16, 16):
        raise CheckpointError(
            f"{path}: '{key}' has shape {list(weight.shape)}; DINOv3 ViTs embed RGB 16x16 patches "
            f"([D, 3, 16, 16]). {_USE_RELEASED}"
        )
    return 16


def _infer_meta(state: Dict[str, Tensor], path: Path) -> Tuple[ViTConfig, str]:
    dim = _require(state, "cls_token", path, "[1, 1, D]").shape[-1]
    periods = _require(state, "rope_embed.periods", path, "[head dim / 4]")
    head_dim = 4 * periods.numel()
    if head_dim == 0 or dim % head_dim:
        raise CheckpointError(
            f"{path}: 'rope_embed.periods' has {periods.numel()} entries (head dim {head_dim}), which does "
            f"not divide the embedding dim {dim}. {_USE_RELEASED}"
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


def _hf_layer_prefix(state: Dict[str, Tensor]) -> str:
    return "model.layer." if any(k.startswith("model.layer.") for k in state) else "layer."


def _infer_hf(
    state: Dict[str, Tensor], path: Path, hf_config: dict | None, config_path: Path | None
) -> Tuple[ViTConfig, float, str]:
    """ViTConfig, RoPE base and a note on where the head count came from."""
    dim = _require(state, "embeddings.cls_token", path, "[1, 1, D]").shape[-1]
    layers = _hf_layer_prefix(state)
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
    wrong = [f"{k} {printable(repr(hf_config[k]), 40)} (weights: {v!r})" for k, v in found.items()
             if k in hf_config and hf_config[k] != v]
    heads = hf_config.get("num_attention_heads")
    if heads is not None and (not _is_count(heads) or heads == 0 or dim % heads or (dim // heads) % 4):
        wrong.append(f"num_attention_heads {printable(repr(heads), 40)} (must split {dim} into heads of a "
                     "multiple of 4)")
    for name, default in (("layer_norm_eps", 1e-5), ("rope_theta", 100.0)):
        value = hf_config.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            wrong.append(f"{name} {printable(repr(value), 40)} (must be a positive number)")
    if wrong:
        raise CheckpointError(
            f"{config_path} disagrees with the weights in {path}: {'; '.join(wrong)}. Use the config.json "
            "from the same Hugging Face repository and revision as the weights, or remove it."
        )
    if heads is not None:
        note = f"heads from {config_path}"
    else:
        same = [v for v in VARIANTS.values()
                if (v.embed_dim, v.depth, v.ffn_layer, v.ffn_hidden_dim) == (dim, depth, ffn, hidden)]
        if same:
            heads, note = same[0].num_heads, f"heads {same[0].num_heads} as in the released {same[0].arch_display}"
        elif dim % 64 == 0:
            heads, note = dim // 64, f"heads = D/64 = {dim // 64} assumed (no config.json next to the file)"
        else:
            raise CheckpointError(
                f"{path}: cannot tell the number of attention heads (D={dim} is not a multiple of 64 and no "
                "config.json is next to the file). Put the model's config.json in the same folder."
            )
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


# ---------------------------------------------------------------- key mapping


def _same(tensors: List[Tensor]) -> Tensor:
    return tensors[0]


def _cat(tensors: List[Tensor]) -> Tensor:
    return torch.cat(tensors, dim=0)


def _q_zero_v(tensors: List[Tensor]) -> Tensor:
    q, v = tensors
    return torch.cat([q, torch.zeros_like(q), v], dim=0)


def _flat_mask_token(tensors: List[Tensor]) -> Tensor:
    return tensors[0].reshape(1, -1)  # HF [1,1,D] -> Meta [1,D]


def _meta_sources(model_keys: Sequence[str]) -> Dict[str, _Source]:
    return {k: ((k,), _same) for k in model_keys}


def _hf_sources(config: ViTConfig, layer_prefix: str, rope_base: float) -> Dict[str, _Source]:
    def computed(value: Callable[[], Tensor]) -> _Source:
        return (), lambda _: value()

    sources: Dict[str, _Source] = {
        "cls_token": (("embeddings.cls_token",), _same),
        "mask_token": (("embeddings.mask_token",), _flat_mask_token),
        "patch_embed.proj.weight": (("embeddings.patch_embeddings.weight",), _same),
        "patch_embed.proj.bias": (("embeddings.patch_embeddings.bias",), _same),
        "rope_embed.periods": computed(lambda: rope_periods(config.head_dim, rope_base)),
        "norm.weight": (("norm.weight",), _same),
        "norm.bias": (("norm.bias",), _same),
    }
    if config.n_storage_tokens:
        sources["storage_tokens"] = (("embeddings.register_tokens",), _same)
    ffn_names = (
        {"fc1": "up_proj", "fc2": "down_proj"}
        if config.ffn_layer == "mlp"
        else {"w1": "gate_proj", "w2": "up_proj", "w3": "down_proj"}
    )
    renames = {
        "norm1": "norm1",
        "norm2": "norm2",
        "attn.proj": "attention.o_proj",
        **{f"mlp.{ours}": f"mlp.{theirs}" for ours, theirs in ffn_names.items()},
    }
    for i in range(config.depth):
        ours, theirs = f"blocks.{i}.", f"{layer_prefix}{i}."
        attn = theirs + "attention."
        for our_name, their_name in renames.items():
            for param in ("weight", "bias"):
                sources[f"{ours}{our_name}.{param}"] = ((f"{theirs}{their_name}.{param}",), _same)
        sources[ours + "ls1.gamma"] = ((theirs + "layer_scale1.lambda1",), _same)
        sources[ours + "ls2.gamma"] = ((theirs + "layer_scale2.lambda1",), _same)
        sources[ours + "attn.qkv.weight"] = (tuple(f"{attn}{n}_proj.weight" for n in "qkv"), _cat)
        if config.qkv_bias:
            sources[ours + "attn.qkv.bias"] = ((attn + "q_proj.bias", attn + "v_proj.bias"), _q_zero_v)
            sources[ours + "attn.qkv.bias_mask"] = computed(lambda: k_bias_mask(3 * config.embed_dim))
    return sources


# ---------------------------------------------------------------- verification


def _check_coverage(state: Dict[str, Tensor], sources: Dict[str, _Source], path: Path) -> None:
    needed = [s for keys, _ in sources.values() for s in keys]
    missing = [s for s in needed if s not in state]
    unexpected = [k for k in state if k not in set(needed)]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing ({len(missing)}): {format_keys(missing)}")
        if unexpected:
            problems.append(f"unexpected ({len(unexpected)}): {format_keys(unexpected)}")
        raise CheckpointError(
            f"{path}: the tensors do not match a DINOv3 ViT ({'; '.join(problems)}). The file is incomplete, "
            f"modified or of another model. {_USE_RELEASED}"
        )


def _finite(tensor: Tensor) -> bool:
    """All elements finite. Fast path: NaN/Inf anywhere make the fp32 sum non-finite (isfinite is slow)."""
    return bool(torch.isfinite(tensor.sum(dtype=torch.float32))) or bool(torch.isfinite(tensor).all())


def _check_values(state: Dict[str, Tensor], path: Path) -> None:
    not_float = [f"{k} ({t.dtype})" for k, t in state.items() if not t.is_floating_point()]
    if not_float:
        raise CheckpointError(f"{path}: tensors are not floating point: {format_keys(not_float)}. {_USE_RELEASED}")
    bad = [f"{k} ({'NaN' if torch.isnan(t).any() else 'Inf'})" for k, t in state.items() if not _finite(t)]
    if bad:
        hint = ""
        if any("bias_mask" in k for k in bad):
            hint = " A NaN bias_mask means the model was saved before its weights were initialised."
        raise CheckpointError(
            f"{path}: NaN or Inf values ({len(bad)} tensors): {format_keys(bad)}.{hint} {_REDOWNLOAD}"
        )


def _check_buffers(tensors: Dict[str, Tensor], path: Path) -> None:
    """bias_mask: only 0/1 with zeros on the K third; RoPE periods: positive."""
    bad = []
    for key, tensor in tensors.items():
        if key.endswith("attn.qkv.bias_mask"):
            third = tensor.numel() // 3
            binary = bool(((tensor == 0) | (tensor == 1)).all())
            if not binary or bool(tensor[third : 2 * third].any()):
                bad.append(f"{key} (must be 0/1 with zeros on the K third)")
    if not bool((tensors["rope_embed.periods"] > 0).all()):
        bad.append("rope_embed.periods (must be positive)")
    if bad:
        raise CheckpointError(f"{path}: invalid buffers: {format_keys(bad)}. {_USE_RELEASED}")


def _assemble(
    state: Dict[str, Tensor], sources: Dict[str, _Source], shapes: Dict[str, Tuple[int, ...]], path: Path
) -> Dict[str, Tensor]:
    tensors, wrong = {}, []
    for target, (keys, combine) in sources.items():
        try:
            tensor = combine([state[k] for k in keys])
        except RuntimeError:  # torch.cat of incompatible shapes
            tensor = None
        if tensor is None or tuple(tensor.shape) != shapes[target]:
            found = ", ".join(f"{k} {list(state[k].shape)}" for k in keys)
            via = "" if keys == (target,) else f" for {target}"
            wrong.append(f"{found}{via} (expected {list(shapes[target])})")
        else:
            tensors[target] = tensor
    if wrong:
        raise CheckpointError(f"{path}: shape mismatch ({len(wrong)}): {format_keys(wrong, 3)}. {_USE_RELEASED}")
    return tensors


def _materialise(tensor: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A copy on device/dtype that shares nothing with the file's (memory-mapped) tensors."""
    out = tensor.to(device=device, dtype=dtype)
    return out.clone() if out.data_ptr() == tensor.data_ptr() else out


def load_hf_config(config_path: Path) -> dict:
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError, RecursionError) as error:
        raise CheckpointError(
            f"{config_path}: unreadable config.json ({_first_line(error)}). Download it again or remove it."
        ) from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: not a model configuration. Download it again or remove it.")
    return config


def load_checkpoint(
    path: Path,
    *,
    shards: Sequence[Path] = (),
    config_path: Path | None = None,
    device: torch.device,
    dtype: torch.dtype,
    patch_stride: int = 16,
) -> LoadedCheckpoint:
    """Read, verify and load a checkpoint into a new DinoVisionTransformer (RoPE periods stay fp32)."""
    state, notes = read_state_dict(path, shards)
    state, prefix_notes = _strip_prefix(state)
    notes += prefix_notes
    _check_not_empty(state, path)
    fmt = _detect_format(state, path)
    if fmt == META_FORMAT:
        config, heads_note = _infer_meta(state, path)
        sources = None
    else:
        hf_config = load_hf_config(config_path) if config_path else None
        config, rope_base, heads_note = _infer_hf(state, path, hf_config, config_path)
        sources = _hf_sources(config, _hf_layer_prefix(state), rope_base)
    notes.append(heads_note)

    if config.num_heads <= 0 or config.embed_dim % config.num_heads or config.head_dim % 4:
        raise CheckpointError(f"{path}: the tensors describe no valid DINOv3 ViT ({config.describe()}: the "
                              f"embedding dim must split into heads of a multiple of 4). {_USE_RELEASED}")
    model = DinoVisionTransformer(config, patch_stride)
    shapes = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    sources = sources if sources is not None else _meta_sources(list(shapes))
    if sources.keys() != shapes.keys():  # the mapping must describe exactly this model
        raise RuntimeError(f"internal key mapping error: {format_keys(sources.keys() ^ shapes.keys())}")

    total = len(state)
    _check_coverage(state, sources, path)
    _check_values(state, path)
    tensors = _assemble(state, sources, shapes, path)
    _check_buffers(tensors, path)

    loaded = {
        key: _materialise(tensor, device, torch.float32 if key == "rope_embed.periods" else dtype)
        for key, tensor in tensors.items()
    }
    del tensors, state
    model.load_state_dict(loaded, strict=True, assign=True)
    empty = [n for n, t in chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if empty:
        raise RuntimeError(f"internal loading error: tensors left unfilled: {format_keys(empty)}")
    model.requires_grad_(False).eval()
    computed = tuple(k for k, (keys, _) in sources.items() if not keys)
    used = sum(len(keys) for keys, _ in sources.values())
    return LoadedCheckpoint(model, fmt, used, total, len(shapes), computed, tuple(notes))
