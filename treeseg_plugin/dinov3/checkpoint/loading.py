"""Loading a DINOv3 ViT checkpoint: read -> infer the architecture -> map to our names -> verify -> materialise.

Two layouts are understood (see docs/weights.md):

* Meta (`.pth` from Meta's download form): the official `DinoVisionTransformer` state dict, whose names
  are our module names. A top-level dict holding it under "model", "teacher" or "state_dict" is accepted,
  and a common prefix in front of `cls_token` (e.g. "backbone.", "module.") is stripped; tensors outside
  that prefix (training heads) are ignored and reported.
* Hugging Face (`model.safetensors`, possibly sharded): transformers' `DINOv3ViTModel` names, mapped by
  `hf_mapping.hf_to_meta`.

Loading is strict (`checkpoint_verify`): every tensor of the file is used, every parameter and buffer of
the model is filled (the model is built on the meta device, so nothing else can exist), shapes must match,
every tensor must be finite. Any failure raises CheckpointError naming the file, the keys and what to do.
`verify_checkpoint` runs the same checks in the same order without materialising anything (the weights
manager's Verify): the mapping runs on meta tensors and the values are streamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..errors import format_keys
from ..vision_transformer import DinoVisionTransformer, ViTConfig
from . import verify
from .files import StreamedState, read_state_dict
from .hf_mapping import hf_to_meta
from .layout import META_FORMAT, detect_format, infer_architecture, strip_prefix


@dataclass(frozen=True)
class LoadedCheckpoint:
    model: DinoVisionTransformer  # eval mode, no grad, on the requested device and dtype
    format: str  # META_FORMAT | HF_FORMAT
    tensors_loaded: int  # tensors of the file used (all of them)
    tensors_total: int  # tensors in the file (its backbone part for wrapped training checkpoints)
    model_tensors: int  # parameters + buffers of the model, all filled
    computed: Tuple[str, ...]  # model buffers computed, not read (HF: RoPE periods, k-bias masks)
    notes: Tuple[str, ...]  # how the heads were found, ignored tensors: for the log


@dataclass(frozen=True)
class CheckedCheckpoint:
    """What :func:`verify_checkpoint` found: the file is loadable, and describes this architecture."""

    format: str
    config: ViTConfig
    tensors_loaded: int
    tensors_total: int
    notes: Tuple[str, ...]


_BUFFERS = ("rope_embed.periods", "attn.qkv.bias_mask")  # the buffers whose values check_buffers checks


def _select(state: Mapping[str, Tensor], keys: Sequence[str]) -> Dict[str, Tensor]:
    """The Meta layout is ours: the model's tensors, by name."""
    return {key: state[key] for key in keys}


def _materialise(tensor: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A copy on device/dtype that shares nothing with the file's (memory-mapped) tensors."""
    out = tensor.to(device=device, dtype=dtype)
    return out.clone() if out.data_ptr() == tensor.data_ptr() else out


@dataclass(frozen=True)
class _Prepared:
    """A checkpoint matched to its model, before any value is checked."""

    state: Dict[str, Tensor]  # the file's tensors, wrapper prefix stripped
    format: str
    config: ViTConfig
    model: DinoVisionTransformer  # on the meta device: holds nothing
    shapes: Dict[str, Tuple[int, ...]]
    tensors: Dict[str, Tensor]  # the model's tensors as converted from the file (views, no copies)
    lineage: Dict[str, verify.Lineage]
    notes: List[str]


def _prepare(state: Dict[str, Tensor], notes: List[str], path: Path, config_path: Optional[Path],
             patch_stride: int) -> _Prepared:
    """Strip a wrapper prefix, infer the architecture, map the names, and check that the tensors cover the
    model exactly; works on meta tensors too (shapes and names only)."""
    state, prefix_notes = strip_prefix(state)
    notes = notes + prefix_notes
    verify.check_not_empty(state, path)
    fmt = detect_format(state, path)
    config, rope_base, heads_note = infer_architecture(state, fmt, path, config_path)
    notes.append(heads_note)
    model = DinoVisionTransformer(config, patch_stride)
    shapes = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    convert = partial(_select, keys=list(shapes)) if fmt == META_FORMAT else partial(
        hf_to_meta, config=config, rope_base=rope_base)
    tensors, lineage = verify.traced_convert(convert, state)
    if lineage.keys() != shapes.keys():  # the mapping must describe exactly this model
        raise RuntimeError(f"internal key mapping error: {format_keys(lineage.keys() ^ shapes.keys())}")
    verify.check_coverage(state, lineage, path)
    return _Prepared(state, fmt, config, model, shapes, tensors, lineage, notes)


def _used(lineage: Mapping[str, verify.Lineage]) -> int:
    return sum(len(line.sources) for line in lineage.values())


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
    prepared = _prepare(state, notes, path, config_path, patch_stride)
    verify.check_values(prepared.state, path)
    verify.check_shapes(prepared.state, prepared.lineage, prepared.shapes, path)
    verify.check_buffers(prepared.tensors, path)

    loaded = {
        key: _materialise(tensor, device, torch.float32 if key == "rope_embed.periods" else dtype)
        for key, tensor in prepared.tensors.items()
    }
    model, lineage, total, fmt, notes = (prepared.model, prepared.lineage, len(prepared.state), prepared.format,
                                         prepared.notes)
    del prepared, state
    model.load_state_dict(loaded, strict=True, assign=True)
    empty = [n for n, t in chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if empty:
        raise RuntimeError(f"internal loading error: tensors left unfilled: {format_keys(empty)}")
    model.requires_grad_(False).eval()
    computed = tuple(k for k, line in lineage.items() if not line.sources)
    return LoadedCheckpoint(model, fmt, _used(lineage), total, len(loaded), computed, tuple(notes))


def verify_checkpoint(path: Path, *, shards: Sequence[Path] = (), config_path: Path | None = None) -> CheckedCheckpoint:
    """Every check of :func:`load_checkpoint`, without materialising the model (it is built on the meta
    device only): names and shapes from the headers, values streamed one tensor at a time (peak memory:
    about the largest tensor)."""
    streamed = StreamedState(path, shards)
    prepared = _prepare(dict(streamed.meta), streamed.notes, path, config_path, 16)
    values = streamed.values(prepared.state)
    verify.check_values(values, path)
    verify.check_shapes(prepared.state, prepared.lineage, prepared.shapes, path)
    buffers = {key: values[line.sources[0]] if line.sources else prepared.tensors[key]
               for key, line in prepared.lineage.items() if key.endswith(_BUFFERS)}
    verify.check_buffers(buffers, path)
    return CheckedCheckpoint(prepared.format, prepared.config, _used(prepared.lineage), len(prepared.state),
                             tuple(prepared.notes))
