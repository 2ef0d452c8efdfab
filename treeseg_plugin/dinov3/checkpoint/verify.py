"""Strict verification of a checkpoint against the model it is loaded into.

Every tensor of the file is used, every parameter and buffer of the model is filled, shapes match, every
tensor is finite floating point, and the buffers hold what the model expects. The conversion to our names
(identity for Meta files, `hf_mapping.hf_to_meta` for HF files) runs through `traced_convert` on tensors
that carry their names, which tells for every model tensor the file tensors it is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from ..errors import REDOWNLOAD, USE_RELEASED, CheckpointError, format_keys

Convert = Callable[[Mapping[str, Tensor]], Dict[str, Tensor]]  # file state dict -> model state dict


@dataclass(frozen=True)
class Lineage:
    """Where one model tensor comes from."""

    sources: Tuple[str, ...]  # the file tensors it is computed from, in order; () for computed buffers
    shape: Optional[Tuple[int, ...]]  # None: its sources do not combine (torch.cat of [D, D] and [D, 2D])


class _Traced(Tensor):
    """A file tensor (a view, no copy), or a result computed from file tensors, that carries their names."""

    sources: Tuple[str, ...] = ()
    broken = False  # a source is missing or an operation failed: no value, no shape

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        inputs = [t for t in _leaves((args, kwargs or {})) if isinstance(t, _Traced)]
        sources = tuple(dict.fromkeys(s for t in inputs for s in t.sources))
        if any(t.broken for t in inputs):
            return _broken(sources)
        try:
            result = super().__torch_function__(func, types, args, kwargs or {})
        except RuntimeError:  # torch.cat of incompatible shapes or dtypes
            return _broken(sources)
        if isinstance(result, _Traced):
            result.sources = sources
        return result


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def _traced(tensor: Tensor, sources: Tuple[str, ...]) -> _Traced:
    traced = tensor.as_subclass(_Traced)
    traced.sources = sources
    return traced


def _broken(sources: Tuple[str, ...]) -> _Traced:
    traced = _traced(torch.empty(0), sources)
    traced.broken = True
    return traced


class _TracedState(Mapping):
    """The file's state dict, each tensor traced by its name (a missing name gives a broken tensor)."""

    def __init__(self, state: Dict[str, Tensor]) -> None:
        self._state = state

    def __getitem__(self, key: str) -> Tensor:
        return _traced(self._state[key], (key,)) if key in self._state else _broken((key,))

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)


def traced_convert(convert: Convert, state: Dict[str, Tensor]) -> Tuple[Dict[str, Tensor], Dict[str, Lineage]]:
    """`convert(state)`, run so that it cannot fail on the file's content, and for every tensor it makes: the
    file tensors it comes from and its shape. The tensors are valid once check_coverage and check_shapes pass."""
    tensors, lineage = {}, {}
    for key, tensor in convert(_TracedState(state)).items():
        if not isinstance(tensor, _Traced):  # computed from the architecture alone (RoPE periods, k-bias masks)
            tensors[key], lineage[key] = tensor, Lineage((), tuple(tensor.shape))
            continue
        with torch._C.DisableTorchFunctionSubclass():  # back to a plain tensor (a view: no copy)
            plain = tensor.as_subclass(Tensor)
        tensors[key] = plain
        lineage[key] = Lineage(tensor.sources, None if tensor.broken else tuple(plain.shape))
    return tensors, lineage


def check_not_empty(state: Dict[str, Tensor], path: Path) -> None:
    """No tensor without elements: the architecture is read from shapes, and every shape must be backed by
    data in the file (an empty [0, 1, 2**40] tensor costs no bytes but would describe a huge model)."""
    empty = [f"{k} {list(t.shape)}" for k, t in state.items() if t.numel() == 0]
    if empty:
        raise CheckpointError(f"{path}: tensors without elements ({len(empty)}): {format_keys(empty)}. "
                              f"{USE_RELEASED}")


def check_coverage(state: Dict[str, Tensor], lineage: Dict[str, Lineage], path: Path) -> None:
    """Every tensor the model needs is in the file, and every tensor of the file is needed."""
    needed = [s for line in lineage.values() for s in line.sources]
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
            f"modified or of another model. {USE_RELEASED}"
        )


def _finite(tensor: Tensor) -> bool:
    """All elements finite. Fast path: NaN/Inf anywhere make the fp32 sum non-finite (isfinite is slow)."""
    return bool(torch.isfinite(tensor.sum(dtype=torch.float32))) or bool(torch.isfinite(tensor).all())


def check_values(state: Mapping[str, Tensor], path: Path) -> None:
    """Every tensor of the file is floating point and finite; one pass, one tensor at a time (``state`` may
    read each tensor from disk when it is accessed)."""
    not_float, bad = [], []
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            not_float.append(f"{key} ({tensor.dtype})")
        elif not not_float and not _finite(tensor):
            bad.append(f"{key} ({'NaN' if torch.isnan(tensor).any() else 'Inf'})")
    if not_float:
        raise CheckpointError(f"{path}: tensors are not floating point: {format_keys(not_float)}. {USE_RELEASED}")
    if bad:
        hint = ""
        if any("bias_mask" in k for k in bad):
            hint = " A NaN bias_mask means the model was saved before its weights were initialised."
        raise CheckpointError(
            f"{path}: NaN or Inf values ({len(bad)} tensors): {format_keys(bad)}.{hint} {REDOWNLOAD}"
        )


def check_shapes(
    state: Dict[str, Tensor], lineage: Dict[str, Lineage], shapes: Dict[str, Tuple[int, ...]], path: Path
) -> None:
    """Every model tensor, as converted from the file, has the shape of the model's."""
    wrong: List[str] = []
    for target, line in lineage.items():
        if line.shape != shapes[target]:
            found = ", ".join(f"{k} {list(state[k].shape)}" for k in line.sources)
            via = "" if line.sources == (target,) else f" for {target}"
            wrong.append(f"{found}{via} (expected {list(shapes[target])})")
    if wrong:
        raise CheckpointError(f"{path}: shape mismatch ({len(wrong)}): {format_keys(wrong, 3)}. {USE_RELEASED}")


def check_buffers(tensors: Dict[str, Tensor], path: Path) -> None:
    """bias_mask: only 0/1 with zeros on the K third; RoPE periods: positive."""
    bad = []
    for key, tensor in tensors.items():
        if key.endswith("attn.qkv.bias_mask"):
            third = tensor.numel() // 3
            binary = bool(((tensor == 0) | (tensor == 1)).all())
            if not binary or bool(tensor[third: 2 * third].any()):
                bad.append(f"{key} (must be 0/1 with zeros on the K third)")
    if not bool((tensors["rope_embed.periods"] > 0).all()):
        bad.append("rope_embed.periods (must be positive)")
    if bad:
        raise CheckpointError(f"{path}: invalid buffers: {format_keys(bad)}. {USE_RELEASED}")
