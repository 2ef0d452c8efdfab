"""Lloyd iterations of k-means on the fit sample: batched pilot runs, the bounded refinement, exact sums.

Distances are torch CPU matmuls of the ``|x|^2 - 2 x.c + |c|^2`` expansion. The expansion only ranks
centres (which is nearest); its float32 cancellation error depends on the CPU's GEMM kernels (AVX2 and
AVX-512/AMX round differently) and is never reported.  Every WCSS (the one reported, the one the elbow rule
reads and the one that picks the best initialisation) is a float64 sum of exact squared differences
``(x - c[label])**2``, and the refinement's centroids are float64 means, so exact duplicates give their own
points as centroids and a WCSS of exactly 0 on any CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch


class ClusteringCanceled(Exception):  # noqa: N818 (name fixed by the engine API)
    """Raised when the caller's ``is_canceled`` callback asks a sweep to stop."""


@dataclass(frozen=True)
class Sample:
    """The fit sample as torch tensors plus the statistics every K of a sweep shares."""

    points: torch.Tensor  # [N, D] float32
    squared_norms: torch.Tensor  # [N] float32
    mean_variance: float  # mean per-feature variance; Lloyd's tolerance is relative to it


class LloydResult(NamedTuple):
    centers: torch.Tensor  # [B, K, D] one row per centre set
    wcss: torch.Tensor  # [B] float64
    n_iter: torch.Tensor  # [B] int64
    labels: torch.Tensor  # [B, N] int64


def as_float32_matrix(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as a contiguous, writable float32 matrix [rows, features]; ValueError naming it otherwise."""
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    if not matrix.flags.writeable:  # torch.from_numpy warns about read-only arrays (e.g. memory maps)
        matrix = matrix.copy()
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [rows, features], got shape {matrix.shape}")
    return matrix


def prepare_sample(x: np.ndarray) -> Sample:
    """The fit sample of a sweep; ValueError for an empty or non-finite ``x``."""
    matrix = as_float32_matrix(x, "x")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"x is empty (shape {matrix.shape}): there is nothing to cluster")
    if not np.isfinite(matrix).all():
        raise ValueError("x contains NaN or infinite values")
    points = torch.from_numpy(matrix)
    variance = float(np.mean(np.var(matrix, axis=0, dtype=np.float64)))
    return Sample(points, (points * points).sum(dim=1), variance)


def random_rows(sample: Sample, n_rows: int, rng: np.random.Generator) -> Sample:
    """A random subset of n_rows sample rows (in their original order), or the sample itself if smaller."""
    if sample.points.shape[0] <= n_rows:
        return sample
    return _rows(sample, torch.from_numpy(np.sort(rng.choice(sample.points.shape[0], n_rows, replace=False))))


def raise_if_canceled(is_canceled: Optional[Callable[[], bool]]) -> None:
    """Raise :class:`ClusteringCanceled` when ``is_canceled`` says so."""
    if is_canceled is not None and is_canceled():
        raise ClusteringCanceled("k-means sweep canceled")


def point_to_rows(sample: Sample, rows: torch.Tensor) -> torch.Tensor:
    """Squared distances [len(rows), N] from each of a few rows to every sample point, clamped at 0."""
    distances = torch.addmm(sample.squared_norms, rows, sample.points.T, alpha=-2.0)
    distances += (rows * rows).sum(dim=1, keepdim=True)
    return distances.clamp_(min=0.0)


def _nearest(sample: Sample, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-centre labels [B, N] and ``min_c (||c||^2 - 2 x.c)`` [B, N] for each of B centre sets [B, K, D].

    One matmul for all B x K centres: far cheaper than B matmuls with K columns each, which all stream x.
    """
    n_sets, k, dim = centers.shape
    flat = centers.reshape(n_sets * k, dim)
    scores = torch.addmm((flat * flat).sum(dim=1), sample.points, flat.T, alpha=-2.0)  # [N, B*K]
    partial, labels = scores.view(-1, n_sets, k).min(dim=2)  # [N, B]
    return labels.T.contiguous(), partial.T.contiguous()


def lloyd(
    sample: Sample,
    centers: torch.Tensor,
    max_iter: int,
    shift_tolerance: float,
    is_canceled: Optional[Callable[[], bool]],
) -> LloydResult:
    """Lloyd iterations of B centre sets [B, K, D] at once, each until no label changes or it barely moves.

    A set that has converged keeps its centres while the others go on.
    """
    labels, partial = _nearest(sample, centers)
    n_iter = torch.zeros(centers.shape[0], dtype=torch.int64)
    active = torch.ones(centers.shape[0], dtype=torch.bool)
    for _ in range(max_iter):
        raise_if_canceled(is_canceled)
        n_iter += active
        new_centers = torch.where(active[:, None, None], _update_centers(sample, centers, labels, partial), centers)
        shift = ((new_centers - centers) ** 2).sum(dim=(1, 2))
        centers = new_centers
        new_labels, partial = _nearest(sample, centers)
        stable = (new_labels == labels).all(dim=1)
        labels = new_labels
        active &= ~(stable | (shift <= shift_tolerance))
        if not active.any():
            break
    return LloydResult(centers, _screened_wcss(sample, centers, labels, partial), n_iter, labels)


def _screened_wcss(sample: Sample, centers: torch.Tensor, labels: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
    """WCSS [B] of B centre sets for picking the lowest: exact (:func:`_exact_wcss`) for every set that can be
    the lowest, +inf for the others.

    The float32 expansion's WCSS is within ``margin`` of the true one: a D-term dot product errs by at most
    about ``D u |x||c|`` (u = 2**-24, any summation order) and the three additions by a few u, so
    ``(4D + 8) u (|x|^2 + |c|^2)`` per point bounds it; the margin doubles that.  A set whose lower bound is
    above the smallest upper bound cannot be the lowest, so the choice is the one exact sums would make.
    """
    approximate = (partial + sample.squared_norms).clamp_(min=0.0).sum(dim=1, dtype=torch.float64)
    if centers.shape[0] == 1:
        return _exact_wcss(sample.points, centers, labels)
    center_norms = (centers.double() ** 2).sum(dim=2)  # [B, K]
    norms = float(sample.squared_norms.sum(dtype=torch.float64)) + torch.gather(center_norms, 1, labels).sum(dim=1)
    margin = 2 * (4 * centers.shape[2] + 8) * 2.0**-24 * norms
    candidates = torch.nonzero(approximate - margin <= (approximate + margin).min()).flatten()
    wcss = torch.full_like(approximate, math.inf)
    wcss[candidates] = _exact_wcss(sample.points, centers[candidates], labels[candidates])
    return wcss


def refine(
    sample: Sample,
    centers: torch.Tensor,
    max_iter: int,
    shift_tolerance: float,
    is_canceled: Optional[Callable[[], bool]],
) -> LloydResult:
    """Lloyd iterations of one centre set [K, D] on the whole sample, measuring again only the points whose
    nearest centre may have changed (Hamerly's bounds).

    Each point keeps an upper bound on the distance to its centre and a lower bound on the distance to every
    other centre; when the centres move by ``moved`` they become ``upper + moved[label]`` and
    ``lower - max(moved)``, and only points with ``upper > lower`` are measured again. Late iterations,
    where a few hundred of 20,000 points change cluster, then cost a fraction of a full pass. Cluster sums
    are updated with the points that changed (in float64). Same stopping rules as :func:`lloyd`; the
    returned labels come from one full distance pass at the end and the WCSS from :func:`_exact_wcss`.
    """
    points = sample.points
    k = centers.shape[0]
    margin = 1e-4 * math.sqrt(float(sample.squared_norms.mean()))  # covers rounding in the distances
    labels, upper, lower = _two_nearest(sample, centers)
    sums, counts = _cluster_sums(points, labels, k)
    n_iter = 0
    while n_iter < max_iter:
        raise_if_canceled(is_canceled)
        n_iter += 1
        if bool((counts == 0).any()):  # rare: re-seed as lloyd does, then measure every point again
            _, partial = _nearest(sample, centers[None])
            centers = _update_centers(sample, centers[None], labels[None], partial)[0]
            labels, upper, lower = _two_nearest(sample, centers)
            sums, counts = _cluster_sums(points, labels, k)
            continue
        new_centers = (sums / counts.unsqueeze(1)).to(points.dtype)
        moved = (new_centers - centers).norm(dim=1)  # [K]
        shift = float((moved * moved).sum())
        centers = new_centers
        upper += moved[labels]
        lower -= moved.max()
        stale = torch.nonzero(upper + margin > lower).flatten()
        changed = 0
        if stale.numel():
            new_labels, upper[stale], lower[stale] = _two_nearest(_rows(sample, stale), centers)
            old_labels = labels[stale]
            switched = new_labels != old_labels
            changed = int(switched.sum())
            if changed:
                rows = points[stale[switched]].double()
                sums.index_add_(0, new_labels[switched], rows).index_add_(0, old_labels[switched], rows, alpha=-1)
                counts += torch.bincount(new_labels[switched], minlength=k)
                counts -= torch.bincount(old_labels[switched], minlength=k)
                labels[stale] = new_labels
        if changed == 0 or shift <= shift_tolerance:
            break
    labels, _ = _nearest(sample, centers[None])
    return LloydResult(centers[None], _exact_wcss(points, centers[None], labels), torch.tensor([n_iter]), labels)


_FLOAT64_CHUNK_ROWS = 256
"""Rows per float64 block in :func:`_exact_wcss` and :func:`_cluster_sums`: small enough to stay in cache
(converting the whole sample to float64 at once costs several times more)."""


def _exact_wcss(points: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """WCSS [B] (float64) of each centre set [B, K, D] with its labels [B, N]: ``sum (x - c[label])**2``.

    The differences and squares are formed in float64 (exact for float32 inputs) and summed in float64, so
    the result does not depend on how the CPU's GEMM kernels round, unlike the distance expansion.
    """
    totals = torch.zeros(centers.shape[0], dtype=torch.float64)
    centers64 = centers.double()
    for start in range(0, points.shape[0], _FLOAT64_CHUNK_ROWS):
        stop = start + _FLOAT64_CHUNK_ROWS
        block = points[start:stop].double()  # converted once for all B sets
        for index in range(centers.shape[0]):
            difference = centers64[index].index_select(0, labels[index, start:stop]).sub_(block).view(-1)
            totals[index] += torch.dot(difference, difference)
    return totals


def _cluster_sums(points: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums [K, D] and counts [K] of labelled points, summed in float64 (the centroids are their
    quotients; float64 keeps the incremental updates exact enough and makes equal rows average to themselves)."""
    sums = torch.zeros((k, points.shape[1]), dtype=torch.float64)
    for start in range(0, points.shape[0], _FLOAT64_CHUNK_ROWS):
        stop = start + _FLOAT64_CHUNK_ROWS
        sums.index_add_(0, labels[start:stop], points[start:stop].double())
    return sums, torch.bincount(labels, minlength=k)


def _rows(sample: Sample, rows: torch.Tensor) -> Sample:
    """The sample restricted to the given row indices (a copy)."""
    return Sample(sample.points[rows], sample.squared_norms[rows], sample.mean_variance)


def _two_nearest(sample: Sample, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest centre [N], distance to it [N] and distance to the second nearest [N] (inf for K = 1)."""
    squared = point_to_rows(sample, centers)  # [K, N]
    if centers.shape[0] == 1:
        only = squared[0].sqrt()
        return torch.zeros(len(only), dtype=torch.int64), only, torch.full_like(only, math.inf)
    nearest = squared.topk(2, dim=0, largest=False)
    distances = nearest.values.sqrt_()
    return nearest.indices[0], distances[0], distances[1]


def _update_centers(
    sample: Sample, centers: torch.Tensor, labels: torch.Tensor, partial: torch.Tensor
) -> torch.Tensor:
    """Cluster means [B, K, D]; an empty cluster is re-seeded at the point of its set farthest from every centre.

    The sums are one matmul of a one-hot [B*K, N] membership matrix with x.
    """
    n_sets, k, dim = centers.shape
    rows = labels + k * torch.arange(n_sets).unsqueeze(1)  # [B, N] row of each point in the one-hot matrix
    membership = torch.zeros(n_sets * k, sample.points.shape[0], dtype=sample.points.dtype)
    membership.scatter_(0, rows, 1.0)
    counts = membership.sum(dim=1).view(n_sets, k)
    new_centers = (membership @ sample.points).view(n_sets, k, dim) / counts.clamp(min=1).unsqueeze(2)
    for index in torch.nonzero((counts == 0).any(dim=1)).flatten().tolist():
        distances = partial[index] + sample.squared_norms
        for cluster in torch.nonzero(counts[index] == 0).flatten().tolist():
            farthest = int(torch.argmax(distances))
            new_centers[index, cluster] = sample.points[farthest]
            distances = torch.minimum(distances, point_to_rows(sample, sample.points[farthest: farthest + 1])[0])
    return new_centers
