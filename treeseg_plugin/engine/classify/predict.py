"""The classifier on the pixel grid: scores at patch centres, bilinear to pixel centres (engine/cluster/labels.py:
the scores are linear in the features, so this is the score of the interpolated feature), then per pixel the
class with the highest score and its softmax probability, or (one class) the similarity.

Values: the class raster holds classes 1..C (0: NoData); the similarity raster ``round(100·max(0, cosine))``
and the confidence raster ``round(100·probability)`` hold 0..100 (engine/raster/percent_raster.py: NoData 255).
The softmax is accumulated one class plane at a time (running maximum and sum), so memory does not grow with the
classes.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..cluster.labels import planes
from ..encode.features import FeatureStore
from ..raster.percent_raster import NODATA
from .model import SIMILARITY, Classifier


def _percent(values: np.ndarray) -> np.ndarray:
    return np.round(100 * np.clip(values, 0, 1)).astype(np.uint8)


def block_classes(store: FeatureStore, model: Classifier, stride: int, top: int, left: int,
                  valid: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(classes or similarity, confidence), uint8, of the window pixels ``[top, top+h) x [left, left+w)`` given
    their validity; with one class the confidence is all NoData."""
    h, w = valid.shape
    linear = model.linear
    best = total = None
    classes = np.ones((h, w), dtype=np.uint8)
    for index, plane in enumerate(planes(store, linear.weights, lambda x, _: -linear.scores(x), stride, top, left,
                                         h, w)):
        score = -plane
        if best is None:
            best, total = score, np.ones_like(score)
            continue
        higher = score > best  # strict: ties keep the lower class
        new_best = np.maximum(best, score)
        total = total * np.exp(best - new_best) + np.exp(score - new_best)
        classes[higher] = index + 1
        best = new_best
    if model.mode == SIMILARITY:
        values, confidence = _percent(best), np.full((h, w), NODATA, dtype=np.uint8)
        values[~valid] = NODATA
        return values, confidence
    confidence = _percent(1 / total)
    classes[~valid] = 0
    confidence[~valid] = NODATA
    return classes, confidence


def nearest_classes(store: FeatureStore, model: Classifier, stride: int, valid: np.ndarray, rows: np.ndarray,
                    cols: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """As :func:`block_classes` for pixels that take the values of the store's pixel grid at ``rows`` [h] x
    ``cols`` [w] (another working grid: nearest neighbour, as engine/cluster/labels.nearest_labels)."""
    r0, c0 = int(rows.min()), int(cols.min())
    span = np.ones((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), dtype=bool)
    pick = np.ix_(rows - r0, cols - c0)
    values, confidence = (a[pick] for a in block_classes(store, model, stride, r0, c0, span))
    values[~valid] = NODATA if model.mode == SIMILARITY else 0
    confidence[~valid] = NODATA
    return values, confidence
