"""The working window's RGB values in 0..1: the percentile stretch fitted on the window, mirrored reads.

Decisions:

* Values: Byte bands are divided by 255. Other real types are stretched per band to 0..1 between the
  2nd and 98th percentiles of a strided sample of the working window (the extent, or the whole raster;
  about 1024 x 1024 pixels, read in strips of decimated rows so memory stays small), then clipped. The
  window, not the whole raster: a small extent of a huge mosaic reads only that part of the file, and
  its own value range is what its clusters are fitted on.
* The stretch is fitted when a :class:`RasterSource` is made for a window, so no value can be read
  before it exists (there is no order of calls to get wrong).
* Beyond the raster's edges pixels are mirrored (half-sample symmetric, period 2n), which works for
  any raster size, even a single pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import EngineError
from ..progress import Progress, check_canceled
from .georef import Window
from .input import InputRaster

SAMPLE_SIDE = 1024
STRETCH_PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class Stretch:
    """Linear map of one band's values to 0..1: ``(v - low) / (high - low)``, clipped."""

    low: float
    high: float


def reflect_indices(start: int, count: int, size: int) -> np.ndarray:
    """Indices ``start .. start+count-1`` mirrored into ``0 .. size-1`` (half-sample symmetric)."""
    idx = np.mod(np.arange(start, start + count), 2 * size)
    return np.where(idx >= size, 2 * size - 1 - idx, idx)


def stretch_samples(raster: InputRaster, window: Window, progress: Progress,
                    report: Callable[[float], None]) -> Dict[int, np.ndarray]:
    """The valid values (float64) of every non-Byte band in a strided sample of ``window`` (about
    SAMPLE_SIDE x SAMPLE_SIDE pixels), by band number; empty when every band is Byte."""
    todo = [i for i in raster.used_bands if raster.needs_stretch(i)]
    if not todo:
        return {}
    x0, y0, width, height = window.x0, window.y0, window.width, window.height
    step = max(1, math.ceil(max(width, height) / SAMPLE_SIDE))
    buf_w = math.ceil(width / step)
    block_h = max(1, raster.ds.GetRasterBand(todo[0]).GetBlockSize()[1])
    rows_per_strip = max(1, block_h // step)
    n_rows = math.ceil(height / step)
    samples: Dict[int, List[np.ndarray]] = {i: [] for i in todo}
    for first in range(0, n_rows, rows_per_strip):
        check_canceled(progress)
        n = min(rows_per_strip, n_rows - first)
        top = y0 + first * step
        h = min(y0 + height, y0 + (first + n) * step) - top
        values, valid = raster.read_values(x0, top, width, h, (buf_w, n))
        for i in todo:
            samples[i].append(values[i][valid].astype(np.float64))
        raster.flush()
        report((first + n) / n_rows)
    return {i: np.concatenate(samples[i]) for i in todo}


def stretch_from_samples(raster: InputRaster, samples: Dict[int, np.ndarray], where: str,
                         progress: Progress) -> Dict[int, Stretch]:
    """Each sampled band's 2-98 % stretch; ``where`` names what was sampled (for the empty case)."""
    stretch = {}
    for i, data in samples.items():
        if data.size == 0:
            raise EngineError(f"No valid pixels in {where} (all NoData or masked): there is nothing to "
                              "segment. Check the NoData value, the alpha band or the mask, or choose "
                              "another extent or raster.")
        low, high = (float(v) for v in np.percentile(data, STRETCH_PERCENTILES))
        stretch[i] = Stretch(low, high)
        dtype = gdal.GetDataTypeName(raster.ds.GetRasterBand(i).DataType)
        note = "" if high > low else " (constant band)"
        progress.info(f"Band {i} ({dtype}) stretched to 0..1 between its 2-98 % percentiles "
                      f"{low:.6g} and {high:.6g} ({data.size} sampled pixels){note}.")
    return stretch


def fit_stretch(raster: InputRaster, window: Window, progress: Progress,
                report: Callable[[float], None]) -> Dict[int, Stretch]:
    """The 2-98 % stretch of every non-Byte band, from a strided sample of ``window``."""
    whole = (window.x0, window.y0, window.width, window.height) == (0, 0, raster.width, raster.height)
    return stretch_from_samples(raster, stretch_samples(raster, window, progress, report),
                                "the raster" if whole else "the chosen extent", progress)


def stretched_bands(raster: InputRaster) -> List[int]:
    """The bands of ``raster``'s choice that are stretched (not Byte)."""
    return sorted(b for b in set(raster.bands) if raster.needs_stretch(b))


class RasterSource:
    """The input raster's RGB in 0..1 for one working window, with the stretch fitted on that window."""

    def __init__(self, raster: InputRaster, window: Window, progress: Progress,
                 report: Callable[[float], None], stretch: Optional[Dict[int, Stretch]] = None) -> None:
        """``stretch``: use this one (a cluster model's, or one pooled over several rasters) instead of
        fitting it on ``window``; it must cover exactly the raster's stretched bands."""
        self.raster = raster
        if stretch is not None and sorted(stretch) != stretched_bands(raster):
            raise EngineError(f"The stretch given covers bands {sorted(stretch)}, but the raster's stretched "
                              f"bands are {stretched_bands(raster)}.")
        self.stretch: Dict[int, Stretch] = dict(stretch) if stretch is not None else \
            fit_stretch(raster, window, progress, report)
        self.bands: Tuple[int, int, int] = raster.bands
        self.geotransform = raster.geotransform
        self.srs: Optional[osr.SpatialReference] = raster.srs

    def _scaled(self, index: int, data: np.ndarray) -> np.ndarray:
        if index not in self.stretch:  # a Byte band: fit_stretch stretched every other one
            return data.astype(np.float32) / np.float32(255.0)
        s = self.stretch[index]
        span = s.high - s.low if s.high > s.low else 1.0
        out = (data.astype(np.float64) - s.low) / span
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def read_inside(self, x0: int, y0: int, w: int, h: int) -> Tuple[np.ndarray, np.ndarray]:
        """RGB in 0..1 as float32 [3, h, w] and validity [h, w] of a window inside the raster."""
        values, valid = self.raster.read_values(x0, y0, w, h)
        scaled = {i: self._scaled(i, v) for i, v in values.items()}
        return np.stack([scaled[i] for i in self.bands]), valid

    def read_with_raw(self, x0: int, y0: int, w: int, h: int, extra: Sequence[int] = ()) \
            -> Tuple[np.ndarray, np.ndarray, Dict[int, np.ndarray]]:
        """Like :meth:`read_inside`, plus the unscaled values of the RGB bands and of ``extra`` bands (one
        read per band: the labelling pass gets the evidence bands from the same read)."""
        values, valid = self.raster.read_values(x0, y0, w, h, extra=extra)
        return np.stack([self._scaled(i, values[i]) for i in self.bands]), valid, values

    def read(self, x0: int, y0: int, w: int, h: int) -> Tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read_inside` for any window; pixels beyond the raster edges are mirrored."""
        width, height = self.raster.width, self.raster.height
        if x0 >= 0 and y0 >= 0 and x0 + w <= width and y0 + h <= height:
            return self.read_inside(x0, y0, w, h)
        rows = reflect_indices(y0, h, height)
        cols = reflect_indices(x0, w, width)
        r0, c0 = int(rows.min()), int(cols.min())
        rgb, valid = self.read_inside(c0, r0, int(cols.max()) - c0 + 1, int(rows.max()) - r0 + 1)
        ix = np.ix_(rows - r0, cols - c0)
        return rgb[(slice(None), *ix)], valid[ix]

    def read_valid(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """Validity [h, w] of a window inside the raster."""
        return self.raster.read_valid(x0, y0, w, h)

    def flush(self) -> None:
        """Empty GDAL's block cache for this dataset."""
        self.raster.flush()
