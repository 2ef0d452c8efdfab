"""K-means clustering of patch features and the elbow rule that picks K.

Everything here works on float32 feature matrices ``[N, D]`` (rows are the L2-normalised DINOv3 patch
features) and depends only on numpy and torch.  k-means is fitted on the engine's sample (at most
``SegmentationConfig.max_samples`` rows): N_INIT greedy k-means++ initialisations are compared on a
smaller pilot subset (their Lloyd iterations run together, one matmul for all of them) and the best one
is refined by Lloyd iterations on the whole sample, which measure again only the points whose cluster
may have changed (docs/benchmarks-clustering.md has the measurements behind these defaults).  Distances
are torch CPU matmuls of the ``|x|^2 - 2 x.c + |c|^2`` expansion, deterministic for a given machine and
thread count: the same input and seed give bit-identical centroids on every run.

The Lloyd iterations and the exact sums are in :mod:`.kmeans_lloyd`; this module has the API, the k-means++
seeding, the choice of the best initialisation and the elbow rule.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from .lloyd import (
    Sample,
    as_float32_matrix,
    lloyd,
    point_to_rows,
    prepare_sample,
    raise_if_canceled,
    random_rows,
    refine,
)

N_INIT = 8
"""Default number of k-means++ initialisations per K; only the best one is refined on the whole sample."""

PILOT_SAMPLES = 5_000
"""Each initialisation is tried on this many random rows of the fit sample (all rows if fewer)..."""

PILOT_MAX_ITER = 15
"""...with at most this many Lloyd iterations: enough to tell the local optima apart."""

SEED_TRIALS = 4
"""Candidates per new k-means++ centre: scikit-learn's ``2 + int(ln K)`` at K = 10, the default maximum K."""

MAX_ITER = 100
"""Most Lloyd iterations of the refinement on the whole fit sample."""

TOL = 1e-4
"""Lloyd stops once the summed squared centroid shift is at most TOL x the mean per-feature variance."""


@dataclass(frozen=True)
class KMeansFit:
    """One k-means solution; label ``i + 1`` in the output raster is ``centroids[i]``."""

    k: int
    centroids: np.ndarray  # [K, D] float32, biggest cluster on the fit sample first
    wcss: float  # sum of squared distances of the fit sample to its nearest centroid
    n_iter: int  # Lloyd iterations of the refinement on the whole fit sample
    cluster_sizes: np.ndarray  # [K] int64 fit-sample counts, in centroid order


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``[N, K]`` (float32, >= 0) from each row of x to each centroid.

    Uses ``||x||^2 - 2 x.c + ||c||^2`` as one matmul, so it is cheap to call chunk by chunk; rounding
    negatives are clamped to 0.
    """
    points = torch.from_numpy(as_float32_matrix(x, "x"))
    centers = torch.from_numpy(as_float32_matrix(centroids, "centroids"))
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
    sample = prepare_sample(x)
    _check_enough_distinct_rows(sample.points, k)
    pilot, seeds = _pilot_and_seeds(sample, k, seed, n_init, None)
    return _fit(sample, pilot, seeds, max_iter=max_iter, tol=tol, is_canceled=None)


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
    second apart for the default 20,000 rows); when it returns True the sweep raises lloyd.ClusteringCanceled.
    """
    if len(k_values) == 0:
        raise ValueError("k_values is empty: give at least one K to fit")
    for k in k_values:
        _check_settings(k, n_init)
    sample = prepare_sample(x)
    _check_enough_distinct_rows(sample.points, max(k_values))
    pilot, seeds = _pilot_and_seeds(sample, max(k_values), seed, n_init, is_canceled)  # [B, K_max, D]
    fits = {}
    for k in k_values:
        fit = _fit(sample, pilot, seeds[:, :k].contiguous(), max_iter=MAX_ITER, tol=TOL, is_canceled=is_canceled)
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


def _pilot_and_seeds(
    sample: Sample, k: int, seed: int, n_init: int, is_canceled: Optional[Callable[[], bool]]
) -> tuple[Sample, torch.Tensor]:
    """The pilot rows and the n_init seedings [B, k, D] on them; the first K' of a seeding for k are the
    seeding for any K' < k, so a sweep seeds once, at its largest K."""
    pilot = random_rows(sample, PILOT_SAMPLES, np.random.default_rng(seed))
    generators = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(n_init)]
    return pilot, _kmeans_plusplus(pilot, k, generators, is_canceled)


def _fit(
    sample: Sample,
    pilot: Sample,
    seeds: torch.Tensor,
    *,
    max_iter: int,
    tol: float,
    is_canceled: Optional[Callable[[], bool]],
) -> KMeansFit:
    """The best of the seedings [B, K, D] after the pilot iterations, refined on the whole sample."""
    k = seeds.shape[1]
    shift_tolerance = tol * sample.mean_variance
    pilots = lloyd(pilot, seeds, min(max_iter, PILOT_MAX_ITER), shift_tolerance, is_canceled)
    best = int(torch.argmin(pilots.wcss))  # first of equals (exact sums), as a loop keeping strict improvements would
    result = refine(sample, pilots.centers[best], max_iter, shift_tolerance, is_canceled)
    labels = result.labels[0].numpy()
    sizes = np.bincount(labels, minlength=k).astype(np.int64)
    centroids = result.centers[0].numpy()
    order = np.lexsort((*centroids.T[::-1], -sizes))  # biggest first, ties by lexicographic centroid
    return KMeansFit(k, np.ascontiguousarray(centroids[order]), float(result.wcss[0]), int(result.n_iter[0]),
                     sizes[order])


def _kmeans_plusplus(
    sample: Sample, k: int, generators: Sequence[np.random.Generator], is_canceled: Optional[Callable[[], bool]]
) -> torch.Tensor:
    """Greedy k-means++ seedings [B, k, D], one per generator, all B computed together.

    As scikit-learn's, each new centre is the best of SEED_TRIALS D^2-sampled candidates (a fixed number,
    not one that depends on k, so that a seeding's first centres do not depend on how many follow).
    """
    points = sample.points
    n_points, dim = points.shape
    n_sets = len(generators)
    centers = torch.empty((n_sets, k, dim), dtype=points.dtype)
    firsts = torch.tensor([int(g.integers(n_points)) for g in generators])
    centers[:, 0] = points[firsts]
    closest = point_to_rows(sample, points[firsts])  # [B, N]
    sets = torch.arange(n_sets)
    for index in range(1, k):
        raise_if_canceled(is_canceled)
        n_trials = SEED_TRIALS
        cumulative = np.cumsum(closest.numpy(), axis=1, dtype=np.float64)  # [B, N]
        candidates = torch.from_numpy(np.stack([
            np.minimum(np.searchsorted(c, g.random(n_trials) * c[-1]), n_points - 1)
            for g, c in zip(generators, cumulative)]))  # [B, T]
        trial_closest = point_to_rows(sample, points[candidates.reshape(-1)]).view(n_sets, n_trials, n_points)
        trial_closest = torch.minimum(trial_closest, closest[:, None])  # [B, T, N]
        best = trial_closest.double().sum(dim=2).argmin(dim=1)  # [B]
        closest = trial_closest[sets, best]
        centers[:, index] = points[candidates[sets, best]]
    return centers
