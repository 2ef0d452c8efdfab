"""The ``.tscc`` classifier file: TreeSeg's model container (engine/cluster/container.py), no pickle.

Two float32 tensors, ``weights`` ``[C, D]`` and ``bias`` ``[C]``, and the document under the header key
``treeseg_classifier``: ``format``, ``schema_version``, ``mode`` ("classes" or "similarity"), ``features``
(normalisation, dim), ``backbone`` and ``input`` (as in a ``.tscm``), ``labels`` (colours, and names with NoData
first), ``fit`` (regularisation, examples per class, the cross-validated accuracy or null, the TreeSeg version
and the encoding). Loading checks the checksum first, so a truncated, damaged or edited file is refused, then
every field (docs/classify.md).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict

import numpy as np

from ..cluster import container
from ..cluster.container import FieldError, get, get_int
from ..cluster.model import FEATURE_NORMALISATION
from ..cluster.model_file import (
    backbone_document,
    encoding_document,
    input_document,
    read_backbone,
    read_encoding,
    read_input,
    read_legend,
)
from ..errors import EngineError
from ..jobs.classify import MAX_CLASSES
from .linear import Linear
from .model import CLASSES, SIMILARITY, Classifier

FORMAT = "treeseg-classifier"
SCHEMA_VERSION = 1
METADATA_KEY = "treeseg_classifier"
TENSORS = ("weights", "bias")
MAX_FILE_BYTES = 64 * 1024 * 1024  # 255 classes of a ViT-7B (D = 4096) take 4 MiB


def _document(model: Classifier) -> Dict[str, Any]:
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "mode": model.mode,
        "features": {"normalisation": FEATURE_NORMALISATION, "dim": int(model.linear.weights.shape[1])},
        "backbone": backbone_document(model.backbone), "input": input_document(model.input),
        "labels": {"colors": list(model.legend.colors), "names": list(model.legend.names)},
        "fit": {"regularisation": model.regularisation, "examples": dict(model.examples),
                "accuracy": model.accuracy, "treeseg_version": model.treeseg_version,
                **({} if model.encoding is None else {"encoding": encoding_document(model.encoding)})},
    }


def save_classifier(model: Classifier, path: str) -> None:
    """Write ``model`` to ``path`` (a ``.tscc`` file; raises OSError when it cannot be written)."""
    tensors = {"weights": np.ascontiguousarray(model.linear.weights, dtype=np.float32),
               "bias": np.ascontiguousarray(model.linear.bias, dtype=np.float32)}
    container.save(path, METADATA_KEY, _document(model), tensors)


def _classifier(doc: Dict[str, Any], tensors: Dict[str, np.ndarray]) -> Classifier:
    container.check_format(doc, FORMAT, SCHEMA_VERSION)
    mode = get(doc, "mode", str, "")
    if mode not in (CLASSES, SIMILARITY):
        raise FieldError(f"'mode' is {mode!r}, not {CLASSES!r} or {SIMILARITY!r}")
    backbone = read_backbone(get(doc, "backbone", dict, ""))
    features = get(doc, "features", dict, "")
    if get(features, "normalisation", str, "features.") != FEATURE_NORMALISATION:
        raise FieldError(f"'features.normalisation' is not {FEATURE_NORMALISATION!r}")
    dim = get_int(features, "dim", "features.", 1)
    weights, bias = tensors["weights"], tensors["bias"]
    count = weights.shape[0] if weights.ndim == 2 else 0
    low, high = (1, 1) if mode == SIMILARITY else (2, MAX_CLASSES)
    shapes = low <= count <= high and weights.shape == (count, dim) and bias.shape == (count,)
    if not shapes or dim != backbone.embed_dim or weights.dtype != np.float32 or bias.dtype != np.float32:
        raise FieldError(f"the weights are {weights.dtype} {list(weights.shape)} and the bias {bias.dtype} "
                         f"{list(bias.shape)}, not float32 [C, {dim}] and [C] with {dim} = the backbone's embedding "
                         f"and C classes ({low} to {high})")
    if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
        raise FieldError("the weights hold NaN or infinite values")
    fit = get(doc, "fit", dict, "")
    examples = {name: get_int(get(fit, "examples", dict, "fit."), name, "fit.examples.", 0)
                for name in get(fit, "examples", dict, "fit.")}
    accuracy = None if fit.get("accuracy") is None else get(fit, "accuracy", float, "fit.")
    return Classifier(mode, Linear(weights, bias), read_legend(get(doc, "labels", dict, ""), count), backbone,
                      read_input(get(doc, "input", dict, "")), read_encoding(fit["encoding"]) if "encoding" in fit
                      else None, get(fit, "regularisation", float, "fit."), examples, accuracy,
                      get(fit, "treeseg_version", str, "fit."))


def load_classifier(path: str) -> Classifier:
    """Read and check the classifier at ``path``; :class:`EngineError` names what is wrong."""
    if not os.path.isfile(path):
        raise EngineError(f"The classifier '{path}' does not exist. Choose a .tscc file saved by Classify from "
                          "Examples.")
    try:
        document, sha256, tensors = container.load(path, METADATA_KEY, TENSORS, MAX_FILE_BYTES, "classifier")
        return dataclasses.replace(_classifier(document, tensors), sha256=sha256)
    except OSError as exc:
        raise EngineError(f"Cannot read the classifier '{path}': {exc}. Check that the file is readable.") from exc
    except ValueError as exc:  # FieldError, and JSON errors
        raise EngineError(f"The classifier '{path}' cannot be used: {exc}. Use the file as TreeSeg wrote it, or fit "
                          "the classifier again.") from exc
