"""The pickle-free container of TreeSeg's model files: the ``.tscm`` cluster model (engine/cluster/model_file.py)
and the ``.tscc`` classifier (engine/classify/classifier_file.py).

One safetensors file holds the tensors (all float32) and one header metadata string under the file kind's key:
the JSON object ``{"model": <document>, "sha256": <hex>}``, the checksum being the SHA-256 of the document's
canonical JSON (:func:`canonical`: sorted keys, ASCII only, no whitespace) followed by each tensor's
little-endian float32 bytes, in the order of the tensor names given. One metadata entry keeps the file
byte-for-byte deterministic (safetensors writes several in a random order). Reading goes through safetensors
(never pickle, never ``torch.load``) and checks the size limit, the tensor names, the header key and the
checksum, so a truncated, damaged or hand-edited file is refused before any field is read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Dict, Sequence, Tuple

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file


class FieldError(ValueError):
    """A file is not what its kind must be: a field missing, of the wrong type or out of range, or the container
    itself damaged."""


def canonical(document: Dict[str, Any]) -> str:
    """The document's JSON text the checksum covers."""
    return json.dumps(document, sort_keys=True, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def checksum(document: Dict[str, Any], tensors: Sequence[np.ndarray]) -> str:
    """SHA-256 (hex) of the canonical document and the tensors' little-endian float32 bytes, in order."""
    digest = hashlib.sha256(canonical(document).encode("utf-8"))
    for tensor in tensors:
        digest.update(tensor.astype("<f4").tobytes())
    return digest.hexdigest()


def save(path: str, key: str, document: Dict[str, Any], tensors: Dict[str, np.ndarray]) -> None:
    """Write ``tensors`` (contiguous, in the order given: the checksum's) and the sealed ``document`` under the
    header ``key`` to ``path``; raises OSError when it cannot be written."""
    text = json.dumps({"model": document, "sha256": checksum(document, list(tensors.values()))}, sort_keys=True,
                      indent=1)
    try:
        save_file(tensors, path, metadata={key: text})
    except SafetensorError as exc:  # safetensors reports I/O failures as its own error
        raise OSError(str(exc)) from exc


def load(path: str, key: str, names: Sequence[str], max_bytes: int, what: str) \
        -> Tuple[Dict[str, Any], str, Dict[str, np.ndarray]]:
    """The document, its checksum and the tensors ``names`` of the file at ``path`` (a ``what``, e.g. "cluster
    model"), the checksum checked; raises :class:`FieldError` (a ValueError) for a file that is not one, OSError
    when it cannot be read."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise FieldError(f"it is {size} bytes, more than a {what} can be ({max_bytes})")
    try:
        with safe_open(path, framework="numpy") as handle:
            metadata, found = handle.metadata() or {}, list(handle.keys())
            if sorted(found) != sorted(names):
                raise FieldError(f"it holds the tensors {found}, not {list(names)}")
            tensors = {name: handle.get_tensor(name) for name in names}
    except SafetensorError as exc:
        raise FieldError(f"it is not a complete safetensors file ({exc})") from exc
    if set(metadata) != {key}:
        raise FieldError(f"its header is not a TreeSeg {what}'s")
    sealed = json.loads(metadata[key])
    if not isinstance(sealed, dict) or set(sealed) != {"model", "sha256"} or not isinstance(sealed["model"], dict):
        raise FieldError(f"its metadata is not a TreeSeg {what}'s")
    if checksum(sealed["model"], list(tensors.values())) != sealed["sha256"]:
        raise FieldError("its checksum does not match its contents (edited by hand, or damaged)")
    return sealed["model"], sealed["sha256"], tensors


def get(data: Dict[str, Any], key: str, kind: type, where: str) -> Any:
    """``data[key]``, checked to be a ``kind`` (an int is a float; floats finite); ``where`` prefixes the name."""
    if not isinstance(data, dict) or key not in data:
        raise FieldError(f"'{where}{key}' is missing")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise FieldError(f"'{where}{key}' must be {kind.__name__}, not {type(value).__name__}")
    if kind is float and not math.isfinite(value):
        raise FieldError(f"'{where}{key}' must be finite")
    return value


def get_int(data: Dict[str, Any], key: str, where: str, low: int, high: int = 2**31) -> int:
    """``data[key]``, an int within ``low..high``."""
    value = get(data, key, int, where)
    if not low <= value <= high:
        raise FieldError(f"'{where}{key}' is {value}, outside {low}..{high}")
    return value


def check_format(document: Dict[str, Any], name: str, newest: int) -> None:
    """The document is of format ``name`` and of a schema version this TreeSeg reads (up to ``newest``)."""
    if get(document, "format", str, "") != name:
        raise FieldError(f"'format' is not {name!r}")
    version = get_int(document, "schema_version", "", 1)
    if version > newest:
        raise FieldError(f"it has schema version {version}, newer than this TreeSeg reads ({newest}); update TreeSeg")
