"""Benchmark for Performance target #5: the K sweep against scikit-learn's KMeans on all points.

Target: the K = 2..10 sweep on 200,000 x 384 L2-normalised features takes at most a fifth of the summed
time of scikit-learn ``KMeans(n_init="auto", random_state=0)`` fitted per K on all points, and for every K
its centroids give an all-points WCSS at most 1 % above scikit-learn's inertia.

Our sweep fits on a seeded subsample of DEFAULT_MAX_SAMPLES rows (the engine does the same); its time includes
drawing that subsample.  Each K is timed right after scikit-learn's fit of the same K, so a change in
machine load hits both sides alike; a single uninterrupted sweep is timed as well.

``--threads N`` runs both sides on N threads (torch.set_num_threads and threadpoolctl for scikit-learn's
OpenMP/BLAS); with other processes competing for the cores, one thread gives the steadier comparison.

Usage: .venv/bin/python scripts/bench_clustering.py [--threads N] [--max-samples N] [--n-init N]
                                                    [--datasets NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from treeseg_plugin.engine.cluster import kmeans as clustering
from treeseg_plugin.engine.jobs.segmentation import DEFAULT_MAX_SAMPLES

N_POINTS = 200_000
DIM = 384
K_VALUES = range(2, 11)
MAX_TIME_RATIO = 0.2
MAX_WCSS_EXCESS_PERCENT = 1.0
# Within-blob spread: "clustered" gives a clear WCSS elbow, "diffuse" overlapping blobs (1-2 % per K).
DATASETS = {"clustered": 0.45, "diffuse": 1.0}


def make_features(n: int, dim: int, spread: float, seed: int = 0, n_blobs: int = 12) -> np.ndarray:
    """DINO-like features: 12 anisotropic Gaussian blobs of unequal sizes around a shared direction, 5 %
    diffuse noise, every row L2-normalised."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n - n // 20, rng.dirichlet(np.full(n_blobs, 1.5)))
    shared = rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
    parts = []
    for count in counts:
        center = shared + rng.standard_normal(dim).astype(np.float32) / np.sqrt(dim)
        basis = rng.standard_normal((16, dim)).astype(np.float32) / np.sqrt(dim)
        axis_scales = spread * rng.uniform(0.2, 1.0, 16).astype(np.float32)
        along_axes = (rng.standard_normal((count, 16)).astype(np.float32) * axis_scales) @ basis
        isotropic = rng.standard_normal((count, dim)).astype(np.float32) * (0.5 * spread / np.sqrt(dim))
        parts.append(center + along_axes + isotropic)
    parts.append(shared + rng.standard_normal((n - counts.sum(), dim)).astype(np.float32) * 1.5 / np.sqrt(dim))
    x = np.concatenate(parts)[rng.permutation(n)]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def all_points_wcss(x: np.ndarray, centroids: np.ndarray, chunk: int = 50_000) -> float:
    """WCSS of every row of x against the centroids, streamed in chunks like the engine does."""
    return sum(
        float(clustering.squared_distances(x[i : i + chunk], centroids).min(axis=1).sum(dtype=np.float64))
        for i in range(0, len(x), chunk)
    )


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def bench_dataset(name: str, spread: float, max_samples: int, n_init: int) -> bool:
    x = make_features(N_POINTS, DIM, spread)
    print(f"\n## {name}: {N_POINTS} x {DIM}, spread {spread}, fit sample {max_samples}, n_init {n_init} "
          f"(pilots of {clustering.PILOT_SAMPLES} rows, <= {clustering.PILOT_MAX_ITER} iterations)")
    print("| K | sklearn s | sklearn inertia | sklearn iters | ours s | ours all-points WCSS | WCSS diff "
          "| time ratio |")
    print("|---|---|---|---|---|---|---|---|")
    sklearn_total = ours_total = 0.0
    wcss_ok = True
    for k in K_VALUES:
        start = time.perf_counter()
        reference = KMeans(k, n_init="auto", random_state=0).fit(x)
        sklearn_seconds = time.perf_counter() - start

        start = time.perf_counter()
        sample = x[np.random.default_rng(0).choice(len(x), max_samples, replace=False)]
        fit = clustering.sweep_k(sample, [k], seed=0, n_init=n_init)[k]
        ours_seconds = time.perf_counter() - start

        wcss = all_points_wcss(x, fit.centroids)
        excess = 100.0 * (wcss / reference.inertia_ - 1.0)
        wcss_ok &= excess <= MAX_WCSS_EXCESS_PERCENT
        sklearn_total += sklearn_seconds
        ours_total += ours_seconds
        print(f"| {k} | {sklearn_seconds:.2f} | {reference.inertia_:.1f} | {reference.n_iter_} | "
              f"{ours_seconds:.2f} | {wcss:.1f} | {excess:+.2f} % | {ours_seconds / sklearn_seconds:.3f} |",
              flush=True)

    start = time.perf_counter()
    sample = x[np.random.default_rng(0).choice(len(x), max_samples, replace=False)]
    clustering.sweep_k(sample, K_VALUES, seed=0, n_init=n_init)
    sweep_seconds = time.perf_counter() - start

    ratio = ours_total / sklearn_total
    time_ok = ratio <= MAX_TIME_RATIO
    print(f"| total | {sklearn_total:.2f} | | | {ours_total:.2f} | | | {ratio:.3f} |")
    print(f"\nOne uninterrupted sweep K=2..10: {sweep_seconds:.2f} s ({sweep_seconds / sklearn_total:.3f} of sklearn)")
    print(f"time   <= {MAX_TIME_RATIO:g} x sklearn: {'PASS' if time_ok else 'FAIL'} ({ratio:.3f})")
    print(f"WCSS   <= sklearn + {MAX_WCSS_EXCESS_PERCENT:g} % for every K: {'PASS' if wcss_ok else 'FAIL'}")
    return time_ok and wcss_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES)
    parser.add_argument("--n-init", type=int, default=clustering.N_INIT)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--threads", type=int, help="threads for both sides (default: the libraries' own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    print("# Clustering benchmark (Performance target #5)")
    print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"scikit-learn {sklearn.__version__}")
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    passed = [bench_dataset(name, DATASETS[name], args.max_samples, args.n_init) for name in args.datasets]
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print(f"overall: {'PASS' if all(passed) else 'FAIL'}")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
