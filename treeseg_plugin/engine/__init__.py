"""QGIS-free segmentation engine: DINOv3 patch features -> k-means -> a styled label raster.

Pure GDAL/numpy/torch (never imports qgis), so it runs inside QGIS, from scripts and headless::

    from treeseg_plugin.engine import SegmentationConfig, run_segmentation
    result = run_segmentation(SegmentationConfig("ortho.tif", "labels.tif"))

One cluster model for many rasters (docs/cluster-model.md)::

    run_fit_cluster_model(ClusterFitConfig(["a.tif", "b.tif"], "forest.tscm"))
    run_segmentation(SegmentationConfig("c.tif", "c-labels.tif", cluster_model="forest.tscm"))

Inside QGIS the engine runs in a worker process (:mod:`.job`, :mod:`.worker`). The settings, the
errors, the progress interface, the results and the job interface import without torch; the pipeline
(torch, GDAL) is imported on first use of ``run_segmentation`` or ``run_fit_cluster_model``, the cluster
model file functions (GDAL, safetensors) on first use of ``load_cluster_model``/``save_cluster_model``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .config import SegmentationConfig, validate_config
from .errors import Canceled, EngineError
from .fit_job import ClusterFitConfig, ClusterFitResult
from .progress import Progress
from .result import SegmentationResult

_TORCH_BACKED = {"run_segmentation": ".pipeline", "run_fit_cluster_model": ".model_fit",
                 "load_cluster_model": ".cluster_model_file", "save_cluster_model": ".cluster_model_file"}

__all__ = ["Canceled", "ClusterFitConfig", "ClusterFitResult", "EngineError", "Progress", "SegmentationConfig",
           "SegmentationResult", "load_cluster_model", "run_fit_cluster_model", "run_segmentation",
           "save_cluster_model", "validate_config"]


def __getattr__(name: str) -> Any:
    """Import the torch-backed names lazily (PEP 562)."""
    if name in _TORCH_BACKED:
        return getattr(import_module(_TORCH_BACKED[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
