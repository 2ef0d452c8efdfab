"""QGIS-free segmentation engine: DINOv3 patch features -> k-means -> a styled label raster.

Pure GDAL/numpy/torch (never imports qgis), so it runs inside QGIS, from scripts and headless::

    from treeseg_plugin.engine import SegmentationConfig, run_segmentation
    result = run_segmentation(SegmentationConfig("ortho.tif", "labels.tif"))
"""

from __future__ import annotations

from .config import SegmentationConfig
from .errors import Canceled, EngineError
from .pipeline import SegmentationResult, run_segmentation
from .progress import Progress

__all__ = ["Canceled", "EngineError", "Progress", "SegmentationConfig", "SegmentationResult", "run_segmentation"]
