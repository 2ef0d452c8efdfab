"""Vegetation evidence per cluster, gathered in the labelling pass (no second read of the input).

Per cluster, over its labelled pixels:

* mean R, G, B: the band values scaled to 0..1 as the encoder sees them before ImageNet normalisation
  (Byte / 255, other types by the 2-98 % stretch: see raster_io).
* ExG = 2g - r - b on chromatic coordinates (r = R / (R + G + B), ...), averaged over the pixels (Woebbecke
  et al. 1995); a black pixel has no chromaticity and counts as 0, like grey.
* VARI = (G - R) / (G + R - B) of the cluster's mean R, G, B (Gitelson et al. 2002). Per pixel the
  denominator crosses 0 on dark and bluish pixels and single pixels would dominate the mean; on the means
  it is stable. Undefined (None) when ``|G + R - B| < VARI_MIN_DENOMINATOR``.
* NDVI = (NIR - R) / (NIR + R) per pixel on the *unscaled* values of the near-infrared band and the red
  band (the ratio is scale-free but not offset-free, so the stretch is not applied), averaged over the
  pixels where NIR + R > 0 and the NIR band is not NoData.
* canopy height (metres, from a canopy height raster resampled to the label grid, see :class:`HeightGrid`):
  mean and maximum exactly; median and 90th percentile from a per-cluster histogram of
  :data:`HEIGHT_BIN_M` (0.1 m) bins over 0..:data:`HEIGHT_TOP_M` m, so they are the centres of their bins
  (0.05 m resolution); heights below 0 count in the first bin and above the top in the last. Pixels
  without a height (the raster's NoData, outside its coverage) are left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import EngineError
from ..raster.georef import Window, raster_bounds
from ..raster.input import open_dataset

HEIGHT_BIN_M = 0.1
HEIGHT_TOP_M = 100.0
VARI_MIN_DENOMINATOR = 0.01
_BINS = round(HEIGHT_TOP_M / HEIGHT_BIN_M)


@dataclass(frozen=True)
class ClusterEvidence:
    """What one cluster looks like; None where the evidence is not available."""

    label: int
    pixels: int
    mean_r: Optional[float]
    mean_g: Optional[float]
    mean_b: Optional[float]
    exg: Optional[float]
    vari: Optional[float]
    ndvi: Optional[float] = None
    ndvi_pixels: int = 0
    height_pixels: int = 0
    height_mean: Optional[float] = None
    height_median: Optional[float] = None
    height_p90: Optional[float] = None
    height_max: Optional[float] = None

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


class HeightGrid:
    """A canopy height raster (metres, band 1) resampled on the fly to the label grid.

    GDAL warps it into an in-memory VRT with the label raster's geotransform, size and CRS (bilinear,
    its NoData and mask honoured, NaN where there is no height), read block by block like the input. The
    label grid must be north-up (the usual case; a rotated orthophoto is refused with the fix).
    Both rasters need a CRS (it may differ: the heights are reprojected), or neither has one (then their
    geotransforms are taken as the same coordinates).
    """

    def __init__(self, path: str, window: Window, geotransform: Any, srs: Optional[osr.SpatialReference]) -> None:
        self.path = path
        source = open_dataset(path)
        source_srs = source.GetSpatialRef()
        if (source_srs is None) != (srs is None):
            which = "the canopy height raster" if source_srs is None else "the orthophoto"
            raise EngineError(f"The canopy height raster '{path}' cannot be placed on the orthophoto: {which} has "
                              "no CRS. Assign the CRS (e.g. gdal_edit.py -a_srs EPSG:xxxx) so both have one.")
        if gdal.DataTypeIsComplex(source.GetRasterBand(1).DataType):
            raise EngineError(f"The canopy height raster '{path}' has complex values: give heights in metres.")
        gt = geotransform
        if gt[2] or gt[4] or gt[5] >= 0:
            raise EngineError("Canopy heights need a north-up orthophoto (no rotation, rows going south); this "
                              "one's geotransform is rotated or flipped. Warp it north-up first (gdalwarp).")
        bounds = raster_bounds(gt, window.width, window.height)
        _check_overlap(path, source, source_srs, srs, bounds)
        options = gdal.WarpOptions(format="VRT", outputBounds=bounds, width=window.width, height=window.height,
                                   dstSRS=srs.ExportToWkt() if srs is not None else None,
                                   resampleAlg="bilinear", outputType=gdal.GDT_Float32, dstNodata=float("nan"))
        try:
            if source.RasterCount > 1:
                source = gdal.Translate("", source, format="VRT", bandList=[1])
            self.ds = gdal.Warp("", source, options=options)
        except RuntimeError as exc:
            raise EngineError(f"Cannot resample the canopy height raster '{path}' to the orthophoto's grid "
                              f"({str(exc).strip()}). Check its CRS with gdalinfo.") from exc
        self._source = source
        self.band = self.ds.GetRasterBand(1)

    def read(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """Heights [h, w] (float32, NaN = none) of the label-grid window at (x0, y0)."""
        try:
            data = self.band.ReadAsArray(x0, y0, w, h).astype(np.float32)
        except RuntimeError as exc:
            raise EngineError(f"Cannot read the canopy height raster '{self.path}' ({str(exc).strip()}). Check "
                              "it with 'gdalinfo -checksum'.") from exc
        nodata = self.band.GetNoDataValue()
        if nodata is not None and not math.isnan(nodata):
            data[data == nodata] = np.nan
        return data

    def flush(self) -> None:
        self.ds.FlushCache()

    def close(self) -> None:
        self.band = self.ds = self._source = None


def _check_overlap(path: str, source: gdal.Dataset, source_srs: Optional[osr.SpatialReference],
                   srs: Optional[osr.SpatialReference], bounds: Tuple[float, float, float, float]) -> None:
    """Refuse a canopy height raster that lies wholly outside the label grid (a wrong CRS or file)."""
    box = raster_bounds(source.GetGeoTransform(), source.RasterXSize, source.RasterYSize)
    if source_srs is not None and srs is not None and not source_srs.IsSame(srs):
        pair = (source_srs.Clone(), srs.Clone())  # x, y order without touching the run's own CRS objects
        for crs in pair:
            crs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        box = osr.CoordinateTransformation(*pair).TransformBounds(*box, 21)
    if box[0] >= bounds[2] or box[2] <= bounds[0] or box[1] >= bounds[3] or box[3] <= bounds[1]:
        raise EngineError(f"The canopy height raster '{path}' does not overlap the orthophoto (or the extent). "
                          "Check that it covers the same area and that its CRS is right (gdalinfo).")


@dataclass
class EvidenceBlock:
    """One block of the labelling pass: validity, scaled RGB, and the evidence bands read with it."""

    valid: np.ndarray
    rgb: np.ndarray
    red_raw: np.ndarray
    nir_raw: Optional[np.ndarray] = None
    nir_valid: Optional[np.ndarray] = None
    heights: Optional[np.ndarray] = None


class EvidenceAccumulator:
    """Sums per cluster 0..k (0 = NoData, ignored) from the blocks of the labelling pass."""

    def __init__(self, k: int, nir: bool, heights: bool) -> None:
        n = k + 1
        self.k = k
        self.count = np.zeros(n, np.int64)
        self.rgb = np.zeros((3, n))
        self.exg = np.zeros(n)
        self.ndvi = np.zeros(n) if nir else None
        self.ndvi_count = np.zeros(n, np.int64)
        self.height_sum = np.zeros(n) if heights else None
        self.height_max = np.full(n, -np.inf)
        self.height_hist = np.zeros((n, _BINS), np.int64) if heights else None

    def add(self, labels: np.ndarray, block: EvidenceBlock) -> None:
        """One block: its labels [h, w] and what was read for it."""
        n = self.k + 1
        flat = labels.ravel().astype(np.int64)  # label x bin indices overflow uint8 (numpy 2 refuses)
        self.count += np.bincount(flat, minlength=n)
        rgb = block.rgb.reshape(3, -1).astype(np.float64)
        for c in range(3):
            self.rgb[c] += np.bincount(flat, weights=rgb[c], minlength=n)
        total = rgb.sum(axis=0)
        exg = np.divide(2 * rgb[1] - rgb[0] - rgb[2], total, out=np.zeros_like(total), where=total > 0)
        self.exg += np.bincount(flat, weights=exg, minlength=n)
        if self.ndvi is not None and block.nir_raw is not None:
            nir, red = block.nir_raw.ravel().astype(np.float64), block.red_raw.ravel().astype(np.float64)
            ok = (nir + red > 0) & block.nir_valid.ravel() & (flat > 0)
            ndvi = (nir[ok] - red[ok]) / (nir[ok] + red[ok])
            self.ndvi += np.bincount(flat[ok], weights=ndvi, minlength=n)
            self.ndvi_count += np.bincount(flat[ok], minlength=n)
        if self.height_sum is not None and block.heights is not None:
            h = block.heights.ravel()
            ok = np.isfinite(h) & (flat > 0)
            lab, h = flat[ok], h[ok].astype(np.float64)
            self.height_sum += np.bincount(lab, weights=h, minlength=n)
            np.maximum(self.height_max, group_max(lab, h, n), out=self.height_max)
            bins = np.clip((h / HEIGHT_BIN_M).astype(np.int64), 0, _BINS - 1)
            self.height_hist += np.bincount(lab * _BINS + bins, minlength=n * _BINS).reshape(n, _BINS)

    def clusters(self) -> List[ClusterEvidence]:
        """The evidence of clusters 1..k."""
        return [self._cluster(label) for label in range(1, self.k + 1)]

    def _cluster(self, label: int) -> ClusterEvidence:
        count = int(self.count[label])
        if count == 0:
            return ClusterEvidence(label, 0, None, None, None, None, None)
        r, g, b = (float(self.rgb[c, label] / count) for c in range(3))
        denominator = g + r - b
        vari = (g - r) / denominator if abs(denominator) >= VARI_MIN_DENOMINATOR else None
        ndvi_pixels = int(self.ndvi_count[label])
        ndvi = float(self.ndvi[label] / ndvi_pixels) if self.ndvi is not None and ndvi_pixels else None
        heights: Dict[str, Any] = {}
        if self.height_hist is not None:
            hist = self.height_hist[label]
            n = int(hist.sum())
            if n:
                heights = {"height_pixels": n, "height_mean": float(self.height_sum[label] / n),
                           "height_median": _hist_quantile(hist, 0.5), "height_p90": _hist_quantile(hist, 0.9),
                           "height_max": float(self.height_max[label])}
        return ClusterEvidence(label, count, r, g, b, float(self.exg[label] / count), vari, ndvi, ndvi_pixels,
                               **heights)


def group_max(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The maximum of ``values`` per group 0..n-1 (-inf for an empty group); faster than ufunc.at."""
    out = np.full(n, -np.inf)
    if groups.size:
        order = np.argsort(groups, kind="stable")
        sorted_groups = groups[order]
        starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
        out[sorted_groups[starts]] = np.maximum.reduceat(values[order], starts)
    return out


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """The centre of the height bin where the cumulative count first reaches ``q`` of the total."""
    cumulative = np.cumsum(hist)
    index = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return round((index + 0.5) * HEIGHT_BIN_M, 6)


def check_nir_band(source: Any, nir_band: Optional[int]) -> None:
    """Refuse a NIR band the input does not have, or one of its RGB bands."""
    if nir_band is None:
        return
    count = source.ds.RasterCount
    if not 1 <= nir_band <= count:
        raise EngineError(f"NIR band {nir_band} does not exist: this raster has bands 1 to {count}. Give the "
                          "near-infrared band's number (4 for RGBN imagery), or none.")
    if nir_band in source.bands:
        raise EngineError(f"NIR band {nir_band} is also one of the RGB bands {list(source.bands)}. Choose the "
                          "red, green and blue bands and a different near-infrared band.")


def read_block(source: Any, x0: int, y0: int, w: int, h: int, nir_band: Optional[int],
               heights: Optional[HeightGrid], grid_x: int, grid_y: int) -> EvidenceBlock:
    """Read the input window (x0, y0, w, h) once, with the NIR band, and the heights at (grid_x, grid_y)."""
    rgb, valid, raw = source.read_with_raw(x0, y0, w, h, () if nir_band is None else (nir_band,))
    block = EvidenceBlock(valid, rgb, raw[source.bands[0]])
    if nir_band is not None:
        nir = raw[nir_band]
        nodata = source.raster.ds.GetRasterBand(nir_band).GetNoDataValue()
        nir_valid = np.isfinite(nir) if nir.dtype.kind == "f" else np.ones(nir.shape, bool)
        if nodata is not None and not math.isnan(nodata):
            nir_valid &= nir != nodata
        block.nir_raw, block.nir_valid = nir, nir_valid
    if heights is not None:
        block.heights = heights.read(grid_x, grid_y, w, h)
    return block
