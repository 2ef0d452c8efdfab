"""Reading checkpoint files safely: the container from its first bytes, pickles only through
torch.load(weights_only=True), safetensors only after their header has been validated.

Supported containers: torch.save zip archives and legacy pickles (Meta's .pth), and safetensors files,
possibly sharded (Hugging Face's model.safetensors). A training checkpoint that holds the state dict under
"model", "teacher" or "state_dict" is unwrapped. Every failure raises CheckpointError naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
from torch import Tensor

from ..errors import REDOWNLOAD, USE_RELEASED, CheckpointError, format_keys, printable

_WRAPPER_KEYS = ("model", "teacher", "state_dict")

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


def _sniff(path: Path) -> str:
    """'zip' (torch.save), 'pickle' (legacy torch.save) or 'safetensors', from the first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({_first_line(error)}). Check the file's permissions.") from None
    if not head:
        raise CheckpointError(f"{path}: the file is empty. {REDOWNLOAD}")
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
        f"than plain tensors. {REDOWNLOAD}"
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
        raise CheckpointError(f"{path}: unreadable PyTorch checkpoint ({_first_line(error)}). {REDOWNLOAD}") from None


def is_count(value: object) -> bool:
    """A non-negative int that is not a bool (JSON sizes, shapes and offsets)."""
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
    if not isinstance(shape, list) or not all(is_count(d) for d in shape):
        return f"shape {printable(repr(shape), 60)} is not a list of non-negative integers"
    pair = isinstance(offsets, list) and len(offsets) == 2 and all(is_count(o) for o in offsets)
    if not (pair and offsets[0] <= offsets[1]):
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


def _safetensors_entries(path: Path) -> Dict[str, Tuple[str, List[int], int, int]]:
    """The tensors of a safetensors file whose header is sound: name -> (dtype, shape, first byte, end byte)."""
    problem = _safetensors_problem(path)
    if problem:
        raise CheckpointError(f"{path}: unreadable safetensors file ({problem}). {REDOWNLOAD}")
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len).decode("utf-8"))
    start = 8 + header_len
    return {name: (entry["dtype"], entry["shape"], start + entry["data_offsets"][0], start + entry["data_offsets"][1])
            for name, entry in header.items() if name != "__metadata__"}


def _read_safetensors(path: Path) -> Dict[str, Tensor]:
    from safetensors.torch import load_file

    problem = _safetensors_problem(path)
    if problem:
        raise CheckpointError(f"{path}: unreadable safetensors file ({problem}). {REDOWNLOAD}")
    try:
        return load_file(str(path))
    except BaseException as error:  # safetensors' Rust panics (PanicException) are BaseExceptions
        if isinstance(error, _NOT_ABOUT_THE_FILE):
            raise
        raise CheckpointError(f"{path}: unreadable safetensors file ({_first_line(error)}). {REDOWNLOAD}") from None


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
            f"(nor one under {', '.join(repr(k) for k in _WRAPPER_KEYS)}). {USE_RELEASED}"
        )
    others = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if others:
        raise CheckpointError(
            f"{path}: not a state dict: {len(others)} entries are not named tensors ({format_keys(others)}). "
            f"{USE_RELEASED}"
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
                                      f"{format_keys(clash)}. {REDOWNLOAD}")
            state.update(part)
        return state, []
    container = _sniff(path)
    if container == "safetensors":
        return _read_safetensors(path), []
    return _as_state_dict(_torch_load(path, container), path)


def load_hf_config(config_path: Path) -> dict:
    """The JSON object of a Hugging Face config.json."""
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


_TORCH_DTYPES = {"BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "I32": torch.int32,
                 "I64": torch.int64, "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
                 "F64": torch.float64, "F8_E5M2": torch.float8_e5m2, "F8_E4M3": torch.float8_e4m3fn}


class StreamedState:
    """A checkpoint opened without reading its values: ``meta`` holds every tensor's name, shape and dtype
    (meta tensors); :meth:`values` gives the real tensors, each read from disk when accessed.

    Safetensors are read tensor by tensor with plain file reads (no memory map), so a tensor's memory is
    freed as soon as it is dropped; .pth files are memory-mapped by torch.load (legacy pickles, which
    cannot be, are read whole).
    """

    def __init__(self, path: Path, shards: Sequence[Path] = ()) -> None:
        self.notes: List[str] = []
        self.meta: Dict[str, Tensor] = {}
        self._where: Dict[str, Tuple[Path, torch.dtype, List[int], int, int]] = {}
        self._loaded: Dict[str, Tensor] = {}
        if not shards and _sniff(path) != "safetensors":
            self._loaded, self.notes = read_state_dict(path)
            self.meta = {name: tensor.to("meta") for name, tensor in self._loaded.items()}
        for file in () if self._loaded else shards or [path]:
            _sniff(file)
            for name, (dtype, shape, begin, end) in _safetensors_entries(file).items():
                if name in self._where:
                    raise CheckpointError(f"{file}: repeats tensors of other shards of {path}: "
                                          f"{format_keys([name])}. {REDOWNLOAD}")
                if dtype not in _TORCH_DTYPES:
                    raise CheckpointError(f"{file}: tensor '{printable(name, 120)}' is stored as {dtype}, which "
                                          f"a DINOv3 checkpoint never uses. {USE_RELEASED}")
                self._where[name] = (file, _TORCH_DTYPES[dtype], shape, begin, end)
                self.meta[name] = torch.empty(shape, dtype=_TORCH_DTYPES[dtype], device="meta")
        self._name_of = {id(tensor): name for name, tensor in self.meta.items()}

    def read(self, name: str) -> Tensor:
        """The tensor stored as ``name``, read now (memory-mapped for .pth files)."""
        if name in self._loaded:
            return self._loaded[name]
        file, dtype, shape, begin, end = self._where[name]
        with open(file, "rb") as f:
            f.seek(begin)
            data = bytearray(f.read(end - begin))
        return torch.frombuffer(data, dtype=dtype).reshape(shape) if data else torch.empty(shape, dtype=dtype)

    def values(self, named: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """The real tensors behind ``named`` (this file's meta tensors, possibly renamed), read when accessed."""
        return _Values({key: self._name_of[id(tensor)] for key, tensor in named.items()}, self.read)


class _Values(Mapping):
    """name -> tensor, read by ``read(stored name)`` on every access (iterating reads one tensor at a time)."""

    def __init__(self, stored: Dict[str, str], read: Callable[[str], Tensor]) -> None:
        self._stored, self._read = stored, read

    def __getitem__(self, key: str) -> Tensor:
        return self._read(self._stored[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)
