"""The ``.tscm`` cluster model file: one safetensors file, no pickle (format: docs/cluster-model.md).

The file is TreeSeg's model container (engine/cluster/container.py) holding one tensor, ``centroids`` (float32
``[K, D]``), and one header metadata string, ``treeseg_cluster_model``: the JSON object ``{"model": <document,
schema SCHEMA_VERSION>, "sha256": <hex>}``, the checksum being the SHA-256 of the document's canonical JSON
(:func:`canonical`: sorted keys, ASCII only, no whitespace) followed by the centroids' little-endian float32
bytes. Loading checks the checksum first (the container), so a truncated, damaged or hand-edited file is
refused, then every field's type, range and shape.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any, Dict, List, Tuple

import numpy as np

from ..errors import EngineError
from ..jobs.segmentation import MAX_CLUSTERS
from ..raster.palette import Legend
from ..raster.pixels import Stretch
from . import container
from .container import FieldError as _FieldError
from .container import get as _get
from .container import get_int as _int
from .model import (
    FEATURE_NORMALISATION,
    BackboneIdentity,
    ClusterModel,
    Encoding,
    FitInput,
    FitRecord,
    InputBands,
)

FORMAT = "treeseg-cluster-model"
SCHEMA_VERSION = 1
METADATA_KEY = "treeseg_cluster_model"
TENSOR = "centroids"
MAX_FILE_BYTES = 64 * 1024 * 1024  # K <= 64 centroids of a ViT-7B (D = 4096) take 1 MiB
_HEX_COLOR = re.compile(r"#[0-9a-f]{6}")


def _document(model: ClusterModel) -> Dict[str, Any]:
    bb, bands, fit = model.backbone, model.input, model.fit
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "k": model.k,
        "features": {"normalisation": FEATURE_NORMALISATION, "dim": int(model.centroids.shape[1])},
        "backbone": backbone_document(bb), "input": input_document(bands),
        "labels": {"order": "largest cluster of the fit sample first", "colors": list(model.legend.colors),
                   "names": list(model.legend.names)},
        "wcss": {str(k): v for k, v in sorted(model.wcss.items())},
        "wcss_drop_percent": {str(k): (v if math.isfinite(v) else None) for k, v in sorted(model.wcss_drop.items())},
        "fit": {"k_mode": fit.k_mode, "k_min": fit.k_min, "k_max": fit.k_max, "elbow_threshold": fit.elbow_threshold,
                "seed": fit.seed, "max_samples": fit.max_samples, "treeseg_version": fit.treeseg_version,
                "inputs": [{"name": i.name, "valid_patches": i.valid_patches, "sampled": i.sampled}
                           for i in fit.inputs],
                **({} if fit.encoding is None else {"encoding": encoding_document(fit.encoding)})},
    }


def backbone_document(bb: BackboneIdentity) -> Dict[str, Any]:
    """The ``backbone`` section: what makes features comparable (read back by :func:`read_backbone`)."""
    return {"variant": bb.variant, "embed_dim": bb.embed_dim, "patch_size": bb.patch_size,
            "patch_stride": bb.patch_stride, "weights_sha256": bb.weights_sha256,
            "weights_format": bb.weights_format, "mean": list(bb.mean), "std": list(bb.std)}


def input_document(bands: InputBands) -> Dict[str, Any]:
    """The ``input`` section: bands and stretch (read back by :func:`read_input`)."""
    return {"bands": list(bands.bands), "band_count": bands.band_count,
            "stretch": {str(b): {"low": s.low, "high": s.high} for b, s in sorted(bands.stretch.items())}}


def encoding_document(encoding: Encoding) -> Dict[str, Any]:
    """``fit.encoding``; the working resolution only when there is one (files at native resolution unchanged)."""
    document = dataclasses.asdict(encoding)
    if not encoding.working_resolution:
        del document["working_resolution"]
    return document


def checksum(document: Dict[str, Any], centroids: np.ndarray) -> str:
    """SHA-256 (hex) of the canonical document and the centroids' float32 little-endian bytes."""
    return container.checksum(document, [centroids])


def save_cluster_model(model: ClusterModel, path: str) -> None:
    """Write ``model`` to ``path`` (a ``.tscm`` file; raises OSError when it cannot be written)."""
    centroids = np.ascontiguousarray(model.centroids, dtype=np.float32)
    container.save(path, METADATA_KEY, _document(model), {TENSOR: centroids})


def _floats(data: Dict[str, Any], key: str, where: str, count: int) -> Tuple[float, ...]:
    values = _get(data, key, list, where)
    if len(values) != count:
        raise _FieldError(f"'{where}{key}' must hold {count} numbers")
    return tuple(_get({key: v}, key, float, where) for v in values)


def _k_table(data: Dict[str, Any], key: str, optional_values: bool) -> Dict[int, float]:
    table = _get(data, key, dict, "")
    out = {}
    for name, value in table.items():
        if not name.isdigit():
            raise _FieldError(f"'{key}' has the key {name!r}, not a K")
        out[int(name)] = -math.inf if value is None and optional_values else _get(table, name, float, f"{key}.")
    return out


def read_backbone(data: Dict[str, Any]) -> BackboneIdentity:
    w = "backbone."
    sha = data.get("weights_sha256") if isinstance(data, dict) else None
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise _FieldError("'backbone.weights_sha256' must be 64 hex digits or null")
    return BackboneIdentity(_get(data, "variant", str, w), _int(data, "embed_dim", w, 1),
                            _int(data, "patch_size", w, 1), _int(data, "patch_stride", w, 1), sha,
                            _get(data, "weights_format", str, w), _floats(data, "mean", w, 3),
                            _floats(data, "std", w, 3))


def read_input(data: Dict[str, Any]) -> InputBands:
    w = "input."
    count = _int(data, "band_count", w, 1)
    bands = _get(data, "bands", list, w)
    if len(bands) != 3:
        raise _FieldError("'input.bands' must name 3 bands (R, G, B)")
    chosen = tuple(_int({"bands": b}, "bands", w, 1, count) for b in bands)
    stretch = {}
    for name, entry in _get(data, "stretch", dict, w).items():
        if not name.isdigit() or int(name) not in chosen:
            raise _FieldError(f"'input.stretch' names band {name!r}, which is not one of the bands used")
        low, high = _get(entry, "low", float, f"{w}stretch."), _get(entry, "high", float, f"{w}stretch.")
        stretch[int(name)] = Stretch(low, high)
    return InputBands(chosen, count, stretch)


def read_legend(data: Dict[str, Any], k: int) -> Legend:
    """The ``labels`` section: ``k`` colours and ``k + 1`` names (NoData first)."""
    colors, names = _get(data, "colors", list, "labels."), _get(data, "names", list, "labels.")
    if len(colors) != k or not all(isinstance(c, str) and _HEX_COLOR.fullmatch(c) for c in colors):
        raise _FieldError(f"'labels.colors' must be {k} colours written #rrggbb")
    if len(names) != k + 1 or not all(isinstance(n, str) and n for n in names):
        raise _FieldError(f"'labels.names' must be {k + 1} names (NoData, then one per cluster)")
    return Legend(tuple(colors), tuple(names))


def _fit(data: Dict[str, Any]) -> FitRecord:
    w = "fit."
    inputs: List[FitInput] = []
    for item in _get(data, "inputs", list, w):
        inputs.append(FitInput(_get(item, "name", str, f"{w}inputs."), _int(item, "valid_patches", f"{w}inputs.", 0),
                               _int(item, "sampled", f"{w}inputs.", 0)))
    if not inputs:
        raise _FieldError("'fit.inputs' is empty")
    return FitRecord(_get(data, "k_mode", str, w), _int(data, "k_min", w, 2), _int(data, "k_max", w, 2),
                     _get(data, "elbow_threshold", float, w), _int(data, "seed", w, 0),
                     _int(data, "max_samples", w, 1), tuple(inputs), _get(data, "treeseg_version", str, w),
                     read_encoding(data["encoding"]) if "encoding" in data else None)


def read_encoding(data: Any) -> Encoding:
    """The optional ``fit.encoding`` (absent in files of TreeSeg versions that did not record it)."""
    w = "fit.encoding."
    if not isinstance(data, dict):
        raise _FieldError("'fit.encoding' is not an object")
    resolution = _get(data, "working_resolution", float, w) if "working_resolution" in data else 0.0
    if resolution < 0:
        raise _FieldError(f"'{w}working_resolution' is {resolution}, below 0")
    return Encoding(_get(data, "device", str, w), _get(data, "precision", str, w), _int(data, "tile_size", w, 16),
                    _int(data, "overlap", w, 0), resolution)


def _model(doc: Dict[str, Any], centroids: np.ndarray) -> ClusterModel:
    container.check_format(doc, FORMAT, SCHEMA_VERSION)
    k = _int(doc, "k", "", 2, MAX_CLUSTERS)
    backbone = read_backbone(_get(doc, "backbone", dict, ""))
    features = _get(doc, "features", dict, "")
    if _get(features, "normalisation", str, "features.") != FEATURE_NORMALISATION:
        raise _FieldError(f"'features.normalisation' is not {FEATURE_NORMALISATION!r}")
    dim = _int(features, "dim", "features.", 1)
    if centroids.dtype != np.float32 or centroids.shape != (k, dim) or dim != backbone.embed_dim:
        raise _FieldError(f"the centroids are {centroids.dtype} {list(centroids.shape)}, not float32 [{k}, {dim}] "
                          f"with {backbone.embed_dim} = the backbone's embedding")
    if not np.isfinite(centroids).all():
        raise _FieldError("the centroids hold NaN or infinite values")
    wcss = _k_table(doc, "wcss", False)
    drop = _k_table(doc, "wcss_drop_percent", True)
    if k not in wcss or any(v < 0 for v in wcss.values()) or not set(drop) <= set(wcss):
        raise _FieldError("'wcss' must hold the chosen K and values >= 0, 'wcss_drop_percent' only its K")
    return ClusterModel(centroids, wcss, drop, backbone, read_input(_get(doc, "input", dict, "")),
                        read_legend(_get(doc, "labels", dict, ""), k), _fit(_get(doc, "fit", dict, "")))


def load_cluster_model(path: str) -> ClusterModel:
    """Read and check the model at ``path``; :class:`EngineError` names what is wrong."""
    if not os.path.isfile(path):
        raise EngineError(f"The cluster model '{path}' does not exist. Choose a .tscm file written by Fit Cluster "
                          "Model or by Segment Trees' cluster model output.")
    try:
        document, sha256, tensors = container.load(path, METADATA_KEY, [TENSOR], MAX_FILE_BYTES, "cluster model")
        return dataclasses.replace(_model(document, tensors[TENSOR]), sha256=sha256)
    except OSError as exc:
        raise EngineError(f"Cannot read the cluster model '{path}': {exc}. Check that the file is readable.") \
            from exc
    except ValueError as exc:  # _FieldError, and JSON errors
        raise EngineError(f"The cluster model '{path}' cannot be used: {exc}. Use the file as TreeSeg wrote it, or "
                          "fit the model again.") from exc
