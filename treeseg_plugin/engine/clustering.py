"""K-means clustering of patch features and the elbow rule that picks K.

Everything here works on float32 feature matrices ``[N, D]`` (rows are the L2-normalised DINOv3 patch
features) and depends only on numpy and torch.  k-means is fitted on the engine's sample (at most
``SegmentationConfig.max_samples`` rows): N_INIT greedy k-means++ initialisations are compared on a
smaller pilot subset (their Lloyd iterations run together, one matmul for all of them) and the best one
is refined by Lloyd iterations on the whole sample, which measure again only the points whose cluster
may have changed (docs/benchmarks-clustering.md has the measurements behind these defaults).  Distances
are torch CPU matmuls of the ``|x|^2 - 2 x.c + |c|^2`` expansion, deterministic for a given machine and
thread count: the same input and seed give bit-identical centroids on every run.

The expansion only ranks centres (which is nearest); its float32 cancellation error depends on the CPU's
GEMM kernels (AVX2 and AVX-512/AMX round differently) and is never reported.  Every WCSS (the one reported,
the one the elbow rule reads and the one that picks the best initialisation) is a float64 sum of exact
squared differences ``(x - c[label])**2``, and the refinement's centroids are float64 means, so exact
duplicates give their own points as centroids and a WCSS of exactly 0 on any CPU.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch

N_INIT = 8
"""Default number of k-means++ initialisations per K; only the best one is refined on the whole sample."""

PILOT_SAMPLES = 5_000
"""Each initialisation is tried on this many random rows of the fit sample (all rows if fewer)..."""

PILOT_MAX_ITER = 15
"""...with at most this many Lloyd iterations: enough to tell the local optima apart."""

MAX_ITER = 100
"""Most Lloyd iterations of the refinement on the whole fit sample."""

TOL = 1e-4
"""Lloyd stops once the summed squared centroid shift is at most TOL x the mean per-feature variance."""


class ClusteringCanceled(Exception):  # noqa: N818 (name fixed by the engine API)
    """Raised when the caller's ``is_canceled`` callback asks a sweep to stop."""


@dataclass(frozen=True)
class KMeansFit:
    """One k-means solution; label ``i + 1`` in the output raster is ``centroids[i]``."""

    k: int
    centroids: np.ndarray  # [K, D] float32, biggest cluster on the fit sample first
    wcss: float  # sum of squared distances of the fit sample to its nearest centroid
    n_iter: int  # Lloyd iterations of the refinement on the whole fit sample
    cluster_sizes: np.ndarray  # [K] int64 fit-sample counts, in centroid order


@dataclass(frozen=True)
class _Sample:
    """The fit sample as torch tensors plus the statistics every K of a sweep shares."""

    points: torch.Tensor  # [N, D] float32
    squared_norms: torch.Tensor  # [N] float32
    mean_variance: float  # mean per-feature variance; Lloyd's tolerance is relative to it


class _LloydResult(NamedTuple):
    centers: torch.Tensor  # [B, K, D] one row per centre set
    wcss: torch.Tensor  # [B] float64
    n_iter: torch.Tensor  # [B] int64
    labels: torch.Tensor  # [B, N] int64


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``[N, K]`` (float32, >= 0) from each row of x to each centroid.

    Uses ``||x||^2 - 2 x.c + ||c||^2`` as one matmul, so it is cheap to call chunk by chunk; rounding
    negatives are clamped to 0.
    """
    points = torch.from_numpy(_as_float32_matrix(x, "x"))
    centers = torch.from_numpy(_as_float32_matrix(centroids, "centroids"))
    if points.shape[1] != centers.shape[1]:
        raise ValueError(f"x has {points.shape[1]} features per row but the centroids have {centers.shape[1]}")
    distances = torch.addmm((centers * centers).sum(dim=1), points, centers.T, alpha=-2.0)
    distances += (points * points).sum(dim=1, keepdim=True)
    return distances.clamp_(min=0.0).numpy()


def assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index (0..K-1) of the nearest centroid for each row of x; ties go to the lower index."""
    return squared_distances(x, centroids).argmin(axis=1)


def fit_kmeans(
    x: np.ndarray, k: int, *, seed: int, n_init: int = N_INIT, max_iter: int = MAX_ITER, tol: float = TOL
) -> KMeansFit:
    """Fit k-means to the rows of x (the fit sample) from the best of n_init initialisations.

    Each initialisation is a greedy k-means++ seeding followed by at most PILOT_MAX_ITER Lloyd iterations
    on PILOT_SAMPLES random rows of x; the one with the lowest WCSS there is refined by Lloyd iterations on
    all of x, which give the returned centroids, ``wcss`` (on x) and ``n_iter``.  ``tol`` is relative like
    scikit-learn's: Lloyd stops when no label changes or the summed squared centroid shift is at most
    ``tol`` times the mean per-feature variance of x.
    """
    _check_settings(k, n_init)
    if max_iter < 1 or not tol >= 0:
        raise ValueError(f"max_iter must be >= 1 and tol >= 0, got max_iter={max_iter}, tol={tol}")
    sample = _prepare_sample(x)
    _check_enough_distinct_rows(sample.points, k)
    return _fit(sample, k, seed=seed, n_init=n_init, max_iter=max_iter, tol=tol, is_canceled=None)


def sweep_k(
    x: np.ndarray,
    k_values: Sequence[int],
    *,
    seed: int,
    n_init: int = N_INIT,
    on_fit: Optional[Callable[[KMeansFit], None]] = None,
    is_canceled: Optional[Callable[[], bool]] = None,
) -> dict[int, KMeansFit]:
    """Fit k-means for every K in k_values; ``result[k]`` equals ``fit_kmeans(x, k, seed=seed, ...)``.

    ``on_fit`` is called after each K.  ``is_canceled`` is polled between Lloyd iterations (well under a
    second apart for the default 20,000 rows); when it returns True the sweep raises ClusteringCanceled.
    """
    if len(k_values) == 0:
        raise ValueError("k_values is empty: give at least one K to fit")
    for k in k_values:
        _check_settings(k, n_init)
    sample = _prepare_sample(x)
    _check_enough_distinct_rows(sample.points, max(k_values))
    fits = {}
    for k in k_values:
        fit = _fit(sample, k, seed=seed, n_init=n_init, max_iter=MAX_ITER, tol=TOL, is_canceled=is_canceled)
        fits[k] = fit
        if on_fit is not None:
            on_fit(fit)
    return fits


def wcss_drop_percent(wcss: Mapping[int, float]) -> dict[int, float]:
    """``{K: 100 * (W[K] - W[K+1]) / W[K]}`` for every K whose successor K+1 is also in wcss.

    A step from W[K] == 0 counts as a 0 % drop if W[K+1] is 0 too and as -inf (an increase) otherwise.
    """
    _check_wcss_values(wcss)
    drops = {}
    for k in sorted(wcss):
        if k + 1 not in wcss:
            continue
        current, following = float(wcss[k]), float(wcss[k + 1])
        if current > 0.0:
            drops[k] = 100.0 * (current - following) / current
        else:
            drops[k] = 0.0 if following == 0.0 else -math.inf
    return drops


def choose_k(wcss: Mapping[int, float], threshold_percent: float) -> int:
    """Pick K at the elbow of the WCSS curve.

    The rule: going up from the smallest K, return the first K whose step to K+1 lowers the WCSS by
    strictly less than ``threshold_percent`` percent of WCSS(K), i.e. the smallest K with
    ``100 * (WCSS(K) - WCSS(K+1)) / WCSS(K) < threshold_percent``.  A drop exactly equal to the
    threshold does not stop the search; a step that raises the WCSS is a negative drop and does.  If no
    step is that small, return the largest K.

    The keys must be consecutive integers, the values finite and >= 0, and the threshold finite and > 0;
    anything else raises ValueError.
    """
    if isinstance(threshold_percent, bool) or not isinstance(threshold_percent, numbers.Real):
        raise ValueError(f"threshold_percent must be a number, got {threshold_percent!r}")
    if not math.isfinite(threshold_percent) or threshold_percent <= 0:
        raise ValueError(f"threshold_percent must be a finite number > 0, got {threshold_percent!r}")
    _check_wcss_values(wcss)
    ks = sorted(wcss)
    if ks != list(range(ks[0], ks[-1] + 1)):
        raise ValueError(f"the WCSS curve needs consecutive K values, got {ks}")
    drops = wcss_drop_percent(wcss)
    for k in ks[:-1]:
        if drops[k] < threshold_percent:
            return k
    return ks[-1]


def _check_wcss_values(wcss: Mapping[int, float]) -> None:
    if len(wcss) == 0:
        raise ValueError("the WCSS curve is empty: fit at least one K")
    for k, value in wcss.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"K values must be integers, got {k!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"WCSS must be finite and >= 0, got {value!r} for K={k}")


def _as_float32_matrix(array: np.ndarray, name: str) -> np.ndarray:
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    if not matrix.flags.writeable:  # torch.from_numpy warns about read-only arrays (e.g. memory maps)
        matrix = matrix.copy()
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [rows, features], got shape {matrix.shape}")
    return matrix


def _prepare_sample(x: np.ndarray) -> _Sample:
    matrix = _as_float32_matrix(x, "x")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"x is empty (shape {matrix.shape}): there is nothing to cluster")
    if not np.isfinite(matrix).all():
        raise ValueError("x contains NaN or infinite values")
    points = torch.from_numpy(matrix)
    variance = float(np.mean(np.var(matrix, axis=0, dtype=np.float64)))
    return _Sample(points, (points * points).sum(dim=1), variance)


def _check_settings(k: int, n_init: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"K must be an integer >= 1, got {k!r}")
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, got {n_init}")


def _check_enough_distinct_rows(points: torch.Tensor, k: int) -> None:
    n_distinct = count_distinct_rows(points.numpy(), at_least=k)
    if k > n_distinct:
        raise ValueError(
            f"cannot make {k} clusters from only {n_distinct} distinct feature vectors: "
            f"lower K_MAX to {n_distinct} or less, or choose a larger area"
        )


def count_distinct_rows(matrix: np.ndarray, at_least: int) -> int:
    """Number of distinct rows, or any number >= at_least once that many are certain to exist."""
    distinct_first_column = np.unique(matrix[:, 0]).size  # rows that differ here are distinct rows
    if distinct_first_column >= at_least:
        return distinct_first_column
    canonical = np.ascontiguousarray(matrix + np.float32(0.0))  # -0.0 -> 0.0 so equal values share bytes
    rows_as_bytes = canonical.view(np.dtype((np.void, canonical.dtype.itemsize * canonical.shape[1])))
    return int(np.unique(rows_as_bytes).size)


def _fit(
    sample: _Sample,
    k: int,
    *,
    seed: int,
    n_init: int,
    max_iter: int,
    tol: float,
    is_canceled: Optional[Callable[[], bool]],
) -> KMeansFit:
    rng = np.random.default_rng(seed)
    pilot = _random_rows(sample, PILOT_SAMPLES, rng)
    shift_tolerance = tol * sample.mean_variance
    seeds = torch.stack([_kmeans_plusplus(pilot, k, rng, is_canceled) for _ in range(n_init)])  # [B, K, D]
    pilots = _lloyd(pilot, seeds, min(max_iter, PILOT_MAX_ITER), shift_tolerance, is_canceled)
    best = int(torch.argmin(pilots.wcss))  # first of equals (exact sums), as a loop keeping strict improvements would
    result = _refine(sample, pilots.centers[best], max_iter, shift_tolerance, is_canceled)
    labels = result.labels[0].numpy()
    sizes = np.bincount(labels, minlength=k).astype(np.int64)
    centroids = result.centers[0].numpy()
    order = np.lexsort((*centroids.T[::-1], -sizes))  # biggest first, ties by lexicographic centroid
    return KMeansFit(k, np.ascontiguousarray(centroids[order]), float(result.wcss[0]), int(result.n_iter[0]),
                     sizes[order])


def _random_rows(sample: _Sample, n_rows: int, rng: np.random.Generator) -> _Sample:
    """A random subset of n_rows sample rows (in their original order), or the sample itself if smaller."""
    if sample.points.shape[0] <= n_rows:
        return sample
    return _rows(sample, torch.from_numpy(np.sort(rng.choice(sample.points.shape[0], n_rows, replace=False))))


def _raise_if_canceled(is_canceled: Optional[Callable[[], bool]]) -> None:
    if is_canceled is not None and is_canceled():
        raise ClusteringCanceled("k-means sweep canceled")


def _kmeans_plusplus(
    sample: _Sample, k: int, rng: np.random.Generator, is_canceled: Optional[Callable[[], bool]]
) -> torch.Tensor:
    """Greedy k-means++ (as scikit-learn): each new centre is the best of a few D^2-sampled candidates."""
    points = sample.points
    n_trials = 2 + int(math.log(k))
    centers = torch.empty((k, points.shape[1]), dtype=points.dtype)
    first = int(rng.integers(points.shape[0]))
    centers[0] = points[first]
    closest = _point_to_rows(sample, points[first : first + 1])[0]
    for index in range(1, k):
        _raise_if_canceled(is_canceled)
        cumulative = np.cumsum(closest.numpy(), dtype=np.float64)
        targets = rng.random(n_trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, targets), points.shape[0] - 1)
        trial_closest = torch.minimum(_point_to_rows(sample, points[candidates]), closest)
        potentials = trial_closest.double().sum(dim=1)
        best = int(torch.argmin(potentials))
        closest = trial_closest[best]
        centers[index] = points[candidates[best]]
    return centers


def _point_to_rows(sample: _Sample, rows: torch.Tensor) -> torch.Tensor:
    """Squared distances [len(rows), N] from each of a few rows to every sample point, clamped at 0."""
    distances = torch.addmm(sample.squared_norms, rows, sample.points.T, alpha=-2.0)
    distances += (rows * rows).sum(dim=1, keepdim=True)
    return distances.clamp_(min=0.0)


def _nearest(sample: _Sample, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-centre labels [B, N] and ``min_c (||c||^2 - 2 x.c)`` [B, N] for each of B centre sets [B, K, D].

    One matmul for all B x K centres: far cheaper than B matmuls with K columns each, which all stream x.
    """
    n_sets, k, dim = centers.shape
    flat = centers.reshape(n_sets * k, dim)
    scores = torch.addmm((flat * flat).sum(dim=1), sample.points, flat.T, alpha=-2.0)  # [N, B*K]
    partial, labels = scores.view(-1, n_sets, k).min(dim=2)  # [N, B]
    return labels.T.contiguous(), partial.T.contiguous()


def _lloyd(
    sample: _Sample,
    centers: torch.Tensor,
    max_iter: int,
    shift_tolerance: float,
    is_canceled: Optional[Callable[[], bool]],
) -> _LloydResult:
    """Lloyd iterations of B centre sets [B, K, D] at once, each until no label changes or it barely moves.

    A set that has converged keeps its centres while the others go on.
    """
    labels, partial = _nearest(sample, centers)
    n_iter = torch.zeros(centers.shape[0], dtype=torch.int64)
    active = torch.ones(centers.shape[0], dtype=torch.bool)
    for _ in range(max_iter):
        _raise_if_canceled(is_canceled)
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
    return _LloydResult(centers, _screened_wcss(sample, centers, labels, partial), n_iter, labels)


def _screened_wcss(sample: _Sample, centers: torch.Tensor, labels: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
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


def _refine(
    sample: _Sample,
    centers: torch.Tensor,
    max_iter: int,
    shift_tolerance: float,
    is_canceled: Optional[Callable[[], bool]],
) -> _LloydResult:
    """Lloyd iterations of one centre set [K, D] on the whole sample, measuring again only the points whose
    nearest centre may have changed (Hamerly's bounds).

    Each point keeps an upper bound on the distance to its centre and a lower bound on the distance to every
    other centre; when the centres move by ``moved`` they become ``upper + moved[label]`` and
    ``lower - max(moved)``, and only points with ``upper > lower`` are measured again. Late iterations,
    where a few hundred of 20,000 points change cluster, then cost a fraction of a full pass. Cluster sums
    are updated with the points that changed (in float64). Same stopping rules as :func:`_lloyd`; the
    returned labels come from one full distance pass at the end and the WCSS from :func:`_exact_wcss`.
    """
    points = sample.points
    k = centers.shape[0]
    margin = 1e-4 * math.sqrt(float(sample.squared_norms.mean()))  # covers rounding in the distances
    labels, upper, lower = _two_nearest(sample, centers)
    sums, counts = _cluster_sums(points, labels, k)
    n_iter = 0
    while n_iter < max_iter:
        _raise_if_canceled(is_canceled)
        n_iter += 1
        if bool((counts == 0).any()):  # rare: re-seed as _lloyd does, then measure every point again
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
    return _LloydResult(centers[None], _exact_wcss(points, centers[None], labels), torch.tensor([n_iter]), labels)


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


def _rows(sample: _Sample, rows: torch.Tensor) -> _Sample:
    """The sample restricted to the given row indices (a copy)."""
    return _Sample(sample.points[rows], sample.squared_norms[rows], sample.mean_variance)


def _two_nearest(sample: _Sample, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest centre [N], distance to it [N] and distance to the second nearest [N] (inf for K = 1)."""
    squared = _point_to_rows(sample, centers)  # [K, N]
    if centers.shape[0] == 1:
        only = squared[0].sqrt()
        return torch.zeros(len(only), dtype=torch.int64), only, torch.full_like(only, math.inf)
    nearest = squared.topk(2, dim=0, largest=False)
    distances = nearest.values.sqrt_()
    return nearest.indices[0], distances[0], distances[1]


def _update_centers(
    sample: _Sample, centers: torch.Tensor, labels: torch.Tensor, partial: torch.Tensor
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
            distances = torch.minimum(distances, _point_to_rows(sample, sample.points[farthest : farthest + 1])[0])
    return new_centers
