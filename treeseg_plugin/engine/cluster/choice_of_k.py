"""Fitting the clusters: K from the settings or the elbow of the WCSS curve, with the WCSS table in the log.

Shared by Segment Trees (one raster's feature store) and Fit Cluster Model (samples of many rasters), so
both choose K and report the sweep the same way. Decisions:

* The fit uses at most ``max_samples`` valid patches drawn uniformly at random (seeded). When fewer
  distinct valid patch features than ``k_max`` exist, ``k_max`` is lowered to that number with a
  warning; when fewer than ``k_min`` (or a fixed ``k``) exist, the run fails.
* With a fixed ``k`` only that K is fitted: the WCSS table has one row and no drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List

import numpy as np

from ..encode.features import FeatureStore
from ..errors import Canceled, EngineError
from ..jobs.segmentation import FitSettings
from ..progress import Progress
from . import kmeans
from .lloyd import ClusteringCanceled


@dataclass
class Fit:
    """The chosen clustering: label ``i + 1`` is ``centroids[i]`` (biggest cluster on the fit sample first)."""

    k: int
    centroids: np.ndarray  # [K, D] float32
    wcss: Dict[int, float]
    drop: Dict[int, float]
    samples: int  # rows of the fit sample
    valid_patches: int  # valid patches the sample was drawn from


def no_valid_pixels(where: str) -> EngineError:
    """The error for a window (or set of rasters) with no valid patch at all."""
    return EngineError(f"No valid pixels in {where} (all NoData or masked): there is nothing to segment. "
                       "Check the NoData value, the alpha band or the mask, or choose another extent or raster.")


def fit_store(store: FeatureStore, settings: FitSettings, where: str, progress: Progress,
              report: Callable[[float], None]) -> Fit:
    """Sample ``store``'s valid patches and fit them (:func:`fit_samples`); ``where`` names the window."""
    valid = store.count_valid()
    if valid == 0:
        raise no_valid_pixels(where)
    return fit_samples(store.sample(settings.max_samples, settings.seed), valid, settings, progress, report)


def _k_values(x: np.ndarray, settings: FitSettings, progress: Progress) -> List[int]:
    n = kmeans.count_distinct_rows(x, settings.k or settings.k_max)
    if settings.k:
        if settings.k > n:
            raise EngineError(f"K = {settings.k} but only {n} distinct valid patches exist. Lower K, use a "
                              "smaller stride or a larger extent.")
        return [settings.k]
    if settings.k_min > n:
        raise EngineError(f"Minimum K = {settings.k_min} but only {n} distinct valid patches exist. Lower "
                          "the minimum K, use a smaller stride or a larger extent.")
    k_max = min(settings.k_max, n)
    if k_max < settings.k_max:
        progress.warning(f"Only {n} distinct valid patches: maximum K lowered from {settings.k_max} to {k_max}.")
    return list(range(settings.k_min, k_max + 1))


def fit_samples(x: np.ndarray, valid: int, settings: FitSettings, progress: Progress,
                report: Callable[[float], None]) -> Fit:
    """Fit k-means to the sample ``x`` ``[N, D]`` (drawn from ``valid`` patches) for the K of ``settings``,
    choose K, and log the WCSS table; ``report`` gets the share of the sweep done."""
    progress.info(f"Fitting on {len(x)} of {valid} valid patches (seed {settings.seed}).")
    k_values = _k_values(x, settings, progress)
    done: List[int] = []

    def on_fit(fit: kmeans.KMeansFit) -> None:
        done.append(fit.k)
        report(len(done) / len(k_values))

    try:
        fits = kmeans.sweep_k(x, k_values, seed=settings.seed, on_fit=on_fit, is_canceled=progress.is_canceled)
    except ClusteringCanceled as exc:
        raise Canceled() from exc
    wcss = {k: float(fits[k].wcss) for k in k_values}
    drop = {int(k): float(v) for k, v in kmeans.wcss_drop_percent(wcss).items()}
    chosen = settings.k or int(kmeans.choose_k(wcss, settings.elbow_threshold))
    progress.info(wcss_table(wcss, drop, chosen))
    how = "fixed" if settings.k else f"elbow, threshold {settings.elbow_threshold:g} %"
    progress.info(f"Chosen K = {chosen} ({how}).")
    centroids = np.ascontiguousarray(fits[chosen].centroids, dtype=np.float32)
    return Fit(chosen, centroids, wcss, drop, len(x), valid)


def wcss_table(wcss: Dict[int, float], drop: Dict[int, float], chosen: int) -> str:
    """The log's WCSS table: one line per K with its drop to K+1 and the chosen K marked."""
    lines = ["K   WCSS          drop to K+1"]
    for k in sorted(wcss):
        pct = f"{drop[k]:.2f} %" if k in drop else "-"
        lines.append(f"{k:<3} {wcss[k]:<13.6g} {pct}{'   <- chosen' if k == chosen else ''}")
    return "\n".join(lines)
