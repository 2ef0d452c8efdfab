"""Tests for the k-means module and the elbow rule (treeseg_plugin.engine.cluster.kmeans)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from treeseg.treeseg_plugin.engine.cluster import kmeans as clustering
from treeseg.treeseg_plugin.engine.cluster import lloyd as kmeans_lloyd
from treeseg.treeseg_plugin.engine.cluster.kmeans import (
    KMeansFit,
    assign,
    choose_k,
    fit_kmeans,
    squared_distances,
    sweep_k,
    wcss_drop_percent,
)
from treeseg.treeseg_plugin.engine.cluster.lloyd import ClusteringCanceled


def realistic_features(n: int, dim: int = 64, n_blobs: int = 12, seed: int = 0) -> np.ndarray:
    """L2-normalised rows from anisotropic Gaussian blobs of unequal sizes around a shared direction, plus noise."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n - n // 20, rng.dirichlet(np.full(n_blobs, 1.5)))
    shared = rng.standard_normal(dim) / np.sqrt(dim)
    parts = []
    for count in counts:
        center = shared + rng.standard_normal(dim) / np.sqrt(dim)
        basis = rng.standard_normal((16, dim)) / np.sqrt(dim)
        axis_scales = 0.6 * rng.uniform(0.2, 1.0, 16)
        parts.append(center + (rng.standard_normal((count, 16)) * axis_scales) @ basis
                     + rng.standard_normal((count, dim)) * 0.3 / np.sqrt(dim))
    parts.append(shared + rng.standard_normal((n - counts.sum(), dim)) * 1.5 / np.sqrt(dim))
    x = np.concatenate(parts)[rng.permutation(n)]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def separated_blobs(sizes: list[int], dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tight isotropic blobs far apart; returns (points, true blob index per point)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(sizes), dim)) * 10.0
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centers[truth] + rng.standard_normal((truth.size, dim)) * 0.1
    order = rng.permutation(truth.size)
    return x[order].astype(np.float32), truth[order]


def wcss_of(x: np.ndarray, centroids: np.ndarray) -> float:
    """WCSS from exact float64 differences to the nearest centroid (no float32 expansion, so CPU-independent)."""
    x64, c64 = x.astype(np.float64), centroids.astype(np.float64)
    return float(sum(((x64[i : i + 500, None, :] - c64[None]) ** 2).sum(axis=2).min(axis=1).sum()
                     for i in range(0, len(x64), 500)))


# -- the elbow rule -----------------------------------------------------------------------------------


def test_choose_k_sharp_elbow_at_four():
    wcss = {2: 1000.0, 3: 600.0, 4: 300.0, 5: 290.0, 6: 282.0, 7: 276.0, 8: 271.0, 9: 267.0, 10: 264.0}
    # Drops: 2 -> 40 %, 3 -> 50 %, 4 -> 3.3 %: K = 4 is the first whose step to K+1 is below 5 %.
    assert choose_k(wcss, 5.0) == 4


def test_choose_k_returns_largest_k_when_no_step_is_small():
    wcss = {k: 1000.0 * 0.5 ** k for k in range(2, 11)}  # every step drops 50 %
    assert choose_k(wcss, 5.0) == 10


def test_choose_k_returns_smallest_k_when_first_step_is_small():
    wcss = {2: 100.0, 3: 99.0, 4: 50.0, 5: 10.0}
    assert choose_k(wcss, 5.0) == 2


def test_choose_k_threshold_is_strict():
    wcss = {2: 100.0, 3: 95.0, 4: 94.0}  # drop from K=2 is exactly 5.0 %, from K=3 about 1.05 %
    assert wcss_drop_percent(wcss)[2] == 5.0
    assert choose_k(wcss, 5.0) == 3  # 5.0 is not < 5.0, so the search goes on
    assert choose_k(wcss, math.nextafter(5.0, math.inf)) == 2


def test_choose_k_stops_where_wcss_rises():
    assert choose_k({2: 100.0, 3: 50.0, 4: 60.0, 5: 10.0}, 5.0) == 3


def test_choose_k_accepts_numpy_numbers():
    assert choose_k({np.int64(2): np.float32(100.0), np.int64(3): np.float32(99.0)}, np.float32(5.0)) == 2


def test_choose_k_single_k():
    assert choose_k({7: 12.5}, 5.0) == 7


def test_wcss_drop_percent_values_and_gaps():
    drops = wcss_drop_percent({2: 200.0, 3: 150.0, 5: 100.0, 6: 75.0})
    assert drops == {2: 25.0, 5: 25.0}


def test_wcss_drop_percent_from_zero():
    assert wcss_drop_percent({3: 0.0, 4: 0.0}) == {3: 0.0}
    assert wcss_drop_percent({3: 0.0, 4: 1.0}) == {3: -math.inf}


@pytest.mark.parametrize(
    ("wcss", "threshold", "message"),
    [
        ({}, 5.0, "empty"),
        ({2: 10.0, 4: 5.0}, 5.0, "consecutive"),
        ({2: 10.0, 3: math.nan}, 5.0, "finite"),
        ({2: math.inf, 3: 1.0}, 5.0, "finite"),
        ({2: 10.0, 3: -1.0}, 5.0, ">= 0"),
        ({2: 10.0, 3: 5.0}, 0.0, "threshold"),
        ({2: 10.0, 3: 5.0}, -1.0, "threshold"),
        ({2: 10.0, 3: 5.0}, math.nan, "threshold"),
        ({2: 10.0, 3: 5.0}, math.inf, "threshold"),
        ({2.5: 10.0}, 5.0, "integers"),
    ],
)
def test_choose_k_rejects_invalid_input(wcss, threshold, message):
    with pytest.raises(ValueError, match=message):
        choose_k(wcss, threshold)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=1e-3, max_value=100.0),
)
def test_choose_k_satisfies_the_documented_rule(values, k_min, threshold):
    wcss = {k_min + i: value for i, value in enumerate(values)}
    chosen = choose_k(wcss, threshold)
    drops = wcss_drop_percent(wcss)
    assert all(drops[k] >= threshold for k in range(k_min, chosen))
    assert chosen == max(wcss) or drops[chosen] < threshold


# -- distances ------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 40), st.just(8)), elements=st.floats(-10, 10, width=32)),
    hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.just(8)), elements=st.floats(-10, 10, width=32)),
)
def test_squared_distances_match_naive(x, centroids):
    naive = ((x[:, None, :].astype(np.float64) - centroids[None, :, :]) ** 2).sum(axis=2)
    fast = squared_distances(x, centroids)
    assert fast.dtype == np.float32 and fast.shape == naive.shape
    assert (fast >= 0).all()
    scale = (x.astype(np.float64) ** 2).sum(axis=1)[:, None] + (centroids.astype(np.float64) ** 2).sum(axis=1)
    assert np.all(np.abs(fast - naive) <= 1e-5 * scale + 1e-6)


def test_squared_distances_never_negative_for_identical_rows():
    x = realistic_features(2000, dim=384)
    distances = squared_distances(x, x[:50])
    assert (distances >= 0).all()
    assert np.all(distances[np.arange(50), np.arange(50)] < 1e-5)


def test_assign_is_argmin_and_accepts_float16():
    x = realistic_features(1000).astype(np.float16)
    centroids = realistic_features(5, seed=1)
    naive = ((x.astype(np.float64)[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    labels = assign(x, centroids)
    assert labels.shape == (1000,)
    assert np.array_equal(labels, naive.argmin(axis=1))


def test_read_only_input_is_accepted_without_warnings(features):
    read_only = features.copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_kmeans(read_only[:500], 3, seed=0)
        assert squared_distances(read_only, fit.centroids).shape == (len(features), 3)


def test_squared_distances_rejects_mismatched_dimensions():
    with pytest.raises(ValueError, match="features"):
        squared_distances(np.zeros((3, 4), np.float32), np.zeros((2, 5), np.float32))


# -- k-means ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    """More rows than PILOT_SAMPLES, so the initialisations run on a pilot subset."""
    assert clustering.PILOT_SAMPLES < 6000
    return realistic_features(6000)


@pytest.mark.parametrize("k", [2, 4, 7, 10])
def test_wcss_within_one_percent_of_scikit_learn(features, k):
    ours = fit_kmeans(features, k, seed=0)
    reference = KMeans(k, n_init=10, random_state=0).fit(features).inertia_
    assert abs(ours.wcss / reference - 1) < 0.01
    assert ours.wcss == pytest.approx(wcss_of(features, ours.centroids), rel=1e-5)


def test_fit_result_shapes_and_types(features):
    fit = fit_kmeans(features, 5, seed=3)
    assert isinstance(fit, KMeansFit) and fit.k == 5
    assert fit.centroids.shape == (5, features.shape[1]) and fit.centroids.dtype == np.float32
    assert fit.cluster_sizes.dtype == np.int64 and fit.cluster_sizes.sum() == len(features)
    assert 1 <= fit.n_iter <= 100
    assert np.isfinite(fit.centroids).all() and math.isfinite(fit.wcss)


def test_sweep_recovers_known_number_of_blobs():
    x, truth = separated_blobs([400, 300, 250, 200, 150])
    fits = sweep_k(x, range(2, 11), seed=0)
    chosen = choose_k({k: fit.wcss for k, fit in fits.items()}, 10.0)
    assert chosen == 5
    assert adjusted_rand_score(truth, assign(x, fits[5].centroids)) == 1.0


def test_clusters_are_ordered_by_size():
    x, truth = separated_blobs([100, 500, 300], seed=1)
    fit = fit_kmeans(x, 3, seed=0)
    assert fit.cluster_sizes.tolist() == [500, 300, 100]
    labels = assign(x, fit.centroids)
    for label, blob in enumerate([1, 2, 0]):
        assert np.all(labels[truth == blob] == label)


def test_equal_sizes_are_ordered_by_centroid():
    x, _ = separated_blobs([200, 200, 200, 200], seed=2)
    fit = fit_kmeans(x, 4, seed=5)
    assert fit.cluster_sizes.tolist() == [200] * 4
    order = np.lexsort(fit.centroids.T[::-1])
    assert order.tolist() == [0, 1, 2, 3]


def test_runs_are_bit_identical(features):
    first = fit_kmeans(features, 6, seed=11)
    second = fit_kmeans(features, 6, seed=11)
    assert first.centroids.tobytes() == second.centroids.tobytes()
    assert first.wcss == second.wcss and first.n_iter == second.n_iter
    assert np.array_equal(first.cluster_sizes, second.cluster_sizes)


def test_sweep_matches_single_fits(features):
    fits = sweep_k(features, [3, 6], seed=4)
    for k in (3, 6):
        assert fits[k].centroids.tobytes() == fit_kmeans(features, k, seed=4).centroids.tobytes()


def test_seed_changes_the_initialisation(features):
    a = fit_kmeans(features, 8, seed=0, n_init=1)
    b = fit_kmeans(features, 8, seed=1, n_init=1)
    assert a.centroids.tobytes() != b.centroids.tobytes()


def test_wcss_decreases_with_k_on_realistic_features(features):
    fits = sweep_k(features, range(2, 11), seed=0)
    wcss = [fits[k].wcss for k in range(2, 11)]
    assert all(later < earlier for earlier, later in zip(wcss, wcss[1:]))


def test_different_data_give_different_wcss(features):
    other = realistic_features(6000, seed=1)
    assert fit_kmeans(features, 4, seed=0).wcss != fit_kmeans(other, 4, seed=0).wcss


def test_duplicates_give_the_distinct_points_as_centroids():
    rng = np.random.default_rng(0)
    distinct = rng.standard_normal((4, 8)).astype(np.float32)
    x = np.repeat(distinct, [1000, 500, 20, 1], axis=0)[rng.permutation(1521)]
    fit = fit_kmeans(x, 4, seed=0)
    assert np.isfinite(fit.centroids).all()
    assert fit.cluster_sizes.tolist() == [1000, 500, 20, 1]
    np.testing.assert_array_equal(fit.centroids, distinct)  # float64 means of equal rows are the rows
    assert fit.wcss == 0.0  # exact differences: no float32 cancellation, on any CPU


def test_duplicates_far_from_the_origin_give_zero_wcss():
    """|x|^2 ~ 1e4: the float32 expansion's cancellation would report about 1e-3 per point."""
    rng = np.random.default_rng(1)
    distinct = (rng.standard_normal((3, 64)) * 10.0 + 20.0).astype(np.float32)
    x = np.repeat(distinct, [400, 300, 200], axis=0)[rng.permutation(900)]
    fits = sweep_k(x, [1, 2, 3], seed=0)
    assert fits[3].wcss == 0.0
    for k in (1, 2):
        assert fits[k].wcss == pytest.approx(wcss_of(x, fits[k].centroids), rel=1e-12)


def test_reported_wcss_is_the_exact_float64_sum(features):
    fit = fit_kmeans(features, 6, seed=2)
    assert fit.wcss == pytest.approx(wcss_of(features, fit.centroids), rel=1e-12)


def test_empty_cluster_is_reseeded_at_farthest_point():
    x, _ = separated_blobs([300, 200, 100], seed=3)
    sample = kmeans_lloyd.prepare_sample(x)
    duplicated_start = sample.points[[0, 0, 1]].clone()  # the second centre starts with an empty cluster
    centers, wcss, _, labels = kmeans_lloyd.lloyd(sample, duplicated_start[None], 100, 0.0, None)
    assert np.isfinite(centers.numpy()).all()
    assert sorted(np.bincount(labels[0].numpy(), minlength=3).tolist()) == [100, 200, 300]
    assert float(wcss[0]) == pytest.approx(wcss_of(x, centers[0].numpy()), rel=1e-5)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_refinement_with_bounds_matches_plain_lloyd(k):
    sample = kmeans_lloyd.prepare_sample(realistic_features(6000, dim=48, seed=2))
    start = sample.points[torch.randperm(6000, generator=torch.Generator().manual_seed(k))[:k]].clone()
    plain = kmeans_lloyd.lloyd(sample, start[None], 100, 0.0, None)
    bounded = kmeans_lloyd.refine(sample, start, 100, 0.0, None)
    # The same iterations in exact arithmetic; in float32 a near-tie may fall the other way once the BLAS
    # differs (MKL here; Debian 13's torch 2.6 on OpenBLAS took 37 iterations against 35 at K = 7).
    assert abs(int(bounded.n_iter[0]) - int(plain.n_iter[0])) <= 3
    assert min(int(bounded.n_iter[0]), int(plain.n_iter[0])) > (1 if k > 1 else 0)
    assert float((bounded.labels == plain.labels).double().mean()) >= 0.995  # 8 of 6000 differed there
    torch.testing.assert_close(bounded.centers, plain.centers, rtol=0, atol=5e-3)  # 1.5e-3 there
    assert float(bounded.wcss[0]) == pytest.approx(float(plain.wcss[0]), rel=1e-5)


def test_refinement_reseeds_an_empty_cluster_at_the_farthest_point():
    x, _ = separated_blobs([300, 200, 100], seed=3)
    sample = kmeans_lloyd.prepare_sample(x)
    duplicated_start = sample.points[[0, 0, 1]].clone()  # the second centre starts with an empty cluster
    centers, wcss, _, labels = kmeans_lloyd.refine(sample, duplicated_start, 100, 0.0, None)
    assert sorted(np.bincount(labels[0].numpy(), minlength=3).tolist()) == [100, 200, 300]
    assert float(wcss[0]) == pytest.approx(wcss_of(x, centers[0].numpy()), rel=1e-5)


def test_too_few_distinct_points_is_a_clear_error():
    x = np.repeat(np.eye(3, 8, dtype=np.float32), 50, axis=0)
    with pytest.raises(ValueError, match=r"cannot make 4 clusters from only 3 distinct.*K_MAX.*larger area"):
        fit_kmeans(x, 4, seed=0)
    with pytest.raises(ValueError, match=r"4 clusters from only 3 distinct"):
        sweep_k(x, range(2, 5), seed=0)


@pytest.mark.parametrize(
    ("x", "k", "message"),
    [
        (np.zeros((0, 4), np.float32), 2, "empty"),
        (np.zeros(8, np.float32), 2, "2-D"),
        (np.full((10, 4), np.nan, np.float32), 2, "NaN"),
        (np.eye(10, 4, dtype=np.float32), 0, "K must be"),
    ],
)
def test_fit_rejects_invalid_input(x, k, message):
    with pytest.raises(ValueError, match=message):
        fit_kmeans(x, k, seed=0)


def test_on_fit_reports_every_k_in_order(features):
    seen = []
    sweep_k(features[:1000], [2, 3, 4], seed=0, on_fit=lambda fit: seen.append(fit.k))
    assert seen == [2, 3, 4]


def test_cancel_before_first_fit():
    seen = []
    with pytest.raises(ClusteringCanceled):
        sweep_k(realistic_features(500), [2, 3], seed=0, on_fit=seen.append, is_canceled=lambda: True)
    assert seen == []


def test_cancel_is_honoured_promptly():
    """Cancel is polled at least once per Lloyd iteration, and the sweep stops at the first poll that sees it:
    no poll and no finished K after it, wherever in the sweep it comes (work counted, not wall-clock time)."""
    x = realistic_features(2000, dim=32)
    k_values = [2, 3, 4]
    polls = []
    fits = sweep_k(x, k_values, seed=0, is_canceled=lambda: polls.append(1) is None and False)
    assert len(polls) >= sum(fits[k].n_iter + 1 for k in k_values)  # refinement + at least one pilot iteration
    for cancel_at in sorted({1, 2, len(polls) // 3, len(polls) // 2, len(polls) - 1, len(polls)}):
        seen, done = [], []

        def is_canceled(seen=seen, done=done, cancel_at=cancel_at) -> bool:
            seen.append(len(done))
            return len(seen) >= cancel_at

        with pytest.raises(ClusteringCanceled):
            sweep_k(x, k_values, seed=0, on_fit=lambda fit, done=done: done.append(fit.k), is_canceled=is_canceled)
        assert len(seen) == cancel_at, cancel_at  # no poll after the one that saw the cancel
        assert len(done) == seen[-1], cancel_at  # and no K finished after it
