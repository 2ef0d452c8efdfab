"""QGIS-free segmentation engine: DINOv3 patch features -> k-means -> a styled label raster.

Pure GDAL/numpy/torch (never imports qgis), so it runs inside QGIS, from scripts and headless::

    from treeseg_plugin.engine import SegmentationConfig, run_segmentation
    result = run_segmentation(SegmentationConfig("ortho.tif", "labels.tif"))

One cluster model for many rasters (docs/cluster-model.md)::

    run_fit_cluster_model(ClusterFitConfig(["a.tif", "b.tif"], "forest.tscm"))
    run_segmentation(SegmentationConfig("c.tif", "c-labels.tif", cluster_model="forest.tscm"))

Classify from Examples (docs/classify.md)::

    run_classify(ClassifyConfig("ortho.tif", "classes.tif", examples_path="examples.gpkg", class_field="kind"))

Inside QGIS the engine runs in a worker process (:mod:`treeseg_plugin.worker`). The settings, the
errors, the progress interface, the results and the job interface import without torch; the pipeline
(torch, GDAL) is imported on first use of ``run_segmentation``, ``run_fit_cluster_model`` or
``run_classify``, the cluster model file functions (GDAL, safetensors) on first use of
``load_cluster_model``/``save_cluster_model``.
"""

from __future__ import annotations

from typing import Any

from .errors import Canceled, EngineError
from .jobs.classify import ClassifyConfig
from .jobs.fit import ClusterFitConfig, ClusterFitResult
from .jobs.results import ClassifyResult, SegmentationResult
from .jobs.segmentation import SegmentationConfig, validate_config
from .progress import Progress

__all__ = ["Canceled", "ClassifyConfig", "ClassifyResult", "ClusterFitConfig", "ClusterFitResult", "EngineError",
           "Progress", "SegmentationConfig", "SegmentationResult", "load_cluster_model", "run_classify",
           "run_fit_cluster_model", "run_segmentation", "save_cluster_model", "validate_config"]


def __getattr__(name: str) -> Any:
    """Import the torch-backed names on first use (PEP 562)."""
    if name == "run_segmentation":
        from .runs.segmentation import run_segmentation

        return run_segmentation
    if name == "run_classify":
        from .runs.classify import run_classify

        return run_classify
    if name == "run_fit_cluster_model":
        from .runs.fit import run_fit_cluster_model

        return run_fit_cluster_model
    if name in ("load_cluster_model", "save_cluster_model"):
        from .cluster import model_file

        return getattr(model_file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
