"""Labels on the pixel grid: squared distances at patch centres, bilinear to pixel centres, arg-min; on a
working grid other than the input's, each input pixel takes the label of the working pixel nearest to it.

Pixel ``i`` (centre ``i + 0.5``) sits at patch coordinate ``t = (i + 0.5 - 8) / stride``; its
distances are interpolated linearly between patches ``floor(t)`` and ``floor(t) + 1`` along each
axis, clamped to the first/last patch at the window edges. Labels are ``1 + argmin`` (1 = biggest
cluster, as ordered by the fit; ties go to the lower label) and 0 where the pixel is invalid.
Interpolating distances is the same as interpolating features and measuring the distance, up to
a term common to all clusters, so the arg-min is smooth and free of patch blocks.
"""

from __future__ import annotations

from typing import Callable, Iterator, Tuple

import numpy as np

from ..encode.features import FeatureStore
from ..encode.tiling import HALF_PATCH

DistanceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def axis_weights(start: int, count: int, stride: int, length: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower patch, upper patch and upper weight for pixels ``start .. start+count-1`` along an axis."""
    t = (np.arange(start, start + count) + 0.5 - HALF_PATCH) / stride
    lower = np.floor(t)
    weight = (t - lower).astype(np.float32)
    lo = np.clip(lower.astype(np.int64), 0, length - 1)
    hi = np.clip(lower.astype(np.int64) + 1, 0, length - 1)
    return lo, hi, weight


def planes(store: FeatureStore, centroids: np.ndarray, distances: DistanceFn, stride: int, top: int, left: int,
           height: int, width: int) -> Iterator[np.ndarray]:
    """Each centroid's distances (``distances(features, centroids)`` [N, K]) interpolated to the window pixels
    ``[top, top+height) x [left, left+width)``: one plane [height, width] per centroid, in order."""
    r_lo, r_hi, r_wt = axis_weights(top, height, stride, store.rows)
    c_lo, c_hi, c_wt = axis_weights(left, width, stride, store.cols)
    r0, r1 = int(r_lo.min()), int(r_hi.max()) + 1
    c0, c1 = int(c_lo.min()), int(c_hi.max()) + 1
    feats = store.read(r0, r1, c0, c1)
    k = centroids.shape[0]
    d = distances(feats.reshape(-1, feats.shape[-1]), centroids).T.reshape(k, r1 - r0, c1 - c0)  # [K, rows, cols]
    rows = d[:, r_lo - r0] * (1 - r_wt)[None, :, None] + d[:, r_hi - r0] * r_wt[None, :, None]  # [K, h, cols]
    c_lo_wt, c_hi_wt = (1 - c_wt)[None, :], c_wt[None, :]
    for cluster in range(k):  # one plane at a time keeps the caller's running results in cache
        plane = rows[cluster][:, c_lo - c0] * c_lo_wt
        plane += rows[cluster][:, c_hi - c0] * c_hi_wt
        yield plane


def block_labels(store: FeatureStore, centroids: np.ndarray, distances: DistanceFn, stride: int,
                 top: int, left: int, valid: np.ndarray) -> np.ndarray:
    """Labels (uint8) of the window pixels ``[top, top+h) x [left, left+w)`` given their validity."""
    h, w = valid.shape
    labels = np.ones((h, w), dtype=np.uint8)
    nearest = None  # [h, w] smallest interpolated distance so far
    for cluster, plane in enumerate(planes(store, centroids, distances, stride, top, left, h, w)):
        if nearest is None:
            nearest = plane
            continue
        closer = plane < nearest  # strict: ties keep the lower label
        np.minimum(nearest, plane, out=nearest)
        labels[closer] = cluster + 1
    labels[~valid] = 0
    return labels


def nearest_labels(store: FeatureStore, centroids: np.ndarray, distances: DistanceFn, stride: int,
                   valid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Labels (uint8) of a block of pixels ``valid`` [h, w] that take those of the store's pixel grid at
    ``rows`` [h] x ``cols`` [w] (a coarser or finer working grid: nearest neighbour), 0 where invalid."""
    r0, c0 = int(rows.min()), int(cols.min())
    span = np.ones((int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1), dtype=bool)
    labels = block_labels(store, centroids, distances, stride, r0, c0, span)[np.ix_(rows - r0, cols - c0)]
    labels[~valid] = 0
    return labels
