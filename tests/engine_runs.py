"""Segmentation runs with small test settings, reading back what they wrote (labels, legend), and a disk that
fills up as the outputs are moved into place."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from osgeo import gdal
from recording_progress import Log
from treeseg.treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation
from treeseg.treeseg_plugin.engine.jobs.results import SegmentationResult

Run = Callable[..., SegmentationResult]


def segmenter(**defaults: Any) -> Run:
    """``run(raster, out, model, progress=None, **settings)``: run_segmentation with ``defaults`` for the
    settings not given (a :class:`Log` when no progress is)."""
    def run(raster: Path | str, out: Path | str, model: str, progress: Optional[Progress] = None,
            **settings: Any) -> SegmentationResult:
        config = SegmentationConfig(input_path=str(raster), output_path=str(out), model=model,
                                    **{**defaults, **settings})
        return run_segmentation(config, progress or Log())

    return run


def band_values(path: Path | str) -> np.ndarray:
    """Band 1 of the raster at ``path``."""
    ds = gdal.Open(str(path))
    data = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    return data


def legend(path: Path | str) -> tuple:
    """(category names, colour table entries) of band 1 of a label raster."""
    ds = gdal.Open(str(path))
    ds.GetFileList()  # loads the .aux.xml (GDAL 3.6 reads a GeoTIFF band's PAM lazily)
    band = ds.GetRasterBand(1)
    table = band.GetColorTable()
    found = band.GetCategoryNames(), [table.GetColorEntry(i) for i in range(table.GetCount())]
    band = ds = None
    return found


def full_disk_on_replace(monkeypatch: Any, suffix: str) -> None:
    """``os.replace`` fails with ENOSPC for destinations ending in ``suffix`` (as a full disk on commit)."""
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
