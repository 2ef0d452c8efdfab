"""Reading the input raster in windows: band choice, validity masks, percentile stretch, reflection.

Decisions:

* Bands: ``bands`` of one band is repeated to RGB; three bands are used as given. By default the
  non-alpha bands are used: the first three (a warning names them when there are more), a single
  band repeated, or the first of two bands repeated (with a warning).
* Invalid pixels: a band's declared NoData value (NaN-aware), non-finite floats, an alpha band
  (GCI_AlphaBand) value of 0 and a GDAL mask band (per band or per dataset, from GetMaskFlags) value
  of 0. They are excluded from the fit and written as 0.
* Values: Byte bands are divided by 255. Other real types are stretched per band to 0..1 between the
  2nd and 98th percentiles of a strided sample of the working window (the extent, or the whole raster;
  about 1024 x 1024 pixels, read in strips of decimated rows so memory stays small), then clipped. The
  window, not the whole raster: a small extent of a huge mosaic reads only that part of the file, and
  its own value range is what its clusters are fitted on.
* Opening: a path that cannot be read as a raster is refused with the reason (no such file, a folder,
  a vector dataset, a container of subdatasets, a format GDAL does not recognise) before anything else
  happens; a read that fails later (a damaged or truncated file) names the band and the pixels. A raster
  without a CRS is read, with a warning: areas are then in unknown map units.
* Beyond the raster's edges pixels are mirrored (half-sample symmetric, period 2n), which works for
  any raster size, even a single pixel.
* GDAL's block cache is emptied for this dataset after each strip/tile row (:meth:`flush`), so
  memory does not grow with the raster.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from .errors import EngineError
from .progress import Progress, check_canceled

gdal.UseExceptions()

SAMPLE_SIDE = 1024
STRETCH_PERCENTILES = (2.0, 98.0)
_MASKS_HANDLED_ELSEWHERE = gdal.GMF_ALL_VALID | gdal.GMF_NODATA | gdal.GMF_ALPHA


@dataclass(frozen=True)
class Stretch:
    """Linear map of one band's values to 0..1: ``(v - low) / (high - low)``, clipped."""

    low: float
    high: float


def reflect_indices(start: int, count: int, size: int) -> np.ndarray:
    """Indices ``start .. start+count-1`` mirrored into ``0 .. size-1`` (half-sample symmetric)."""
    idx = np.mod(np.arange(start, start + count), 2 * size)
    return np.where(idx >= size, 2 * size - 1 - idx, idx)


def _looks_local(path: str) -> bool:
    """True for a plain file path (not /vsi..., a URL or a DRIVER:... connection string)."""
    if path.startswith("/vsi") or "://" in path:
        return False
    prefix = path.split(":", 1)[0]
    driver_prefix = ":" in path and len(prefix) > 1 and prefix.replace("_", "").isalnum()  # GPKG:, NETCDF:...
    return not driver_prefix or os.path.exists(path)


def _vector_driver(path: str) -> Optional[str]:
    """The OGR driver name when ``path`` opens as a vector dataset with layers, else None."""
    try:
        ds = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_READONLY)
    except RuntimeError:
        return None
    if ds is None or ds.GetLayerCount() == 0:
        return None
    return ds.GetDriver().ShortName


def open_failure(path: str, reason: str = "") -> str:
    """Why ``path`` cannot be opened as a raster, and what to do; ``reason`` is GDAL's own message."""
    head = f"Cannot open '{path}' as a raster:"
    if not path:
        return "No input raster given. Choose an input raster layer or file."
    if _looks_local(path) and not os.path.exists(path):
        return (f"{head} the file does not exist. Check the path, and that its drive or network share is "
                "available.")
    if os.path.isdir(path):
        return f"{head} it is a folder. Choose the raster file itself."
    driver = _vector_driver(path)
    if driver:
        return (f"{head} it is a vector dataset ({driver}), not an image. Choose the orthophoto raster "
                "(GeoTIFF, VRT, JPEG2000...).")
    detail = f" ({reason.strip().rstrip('.')})" if reason.strip() else ""
    return (f"{head} GDAL does not recognise it or cannot read it{detail}. It is not a raster format GDAL "
            "knows, or the file is damaged or incomplete (e.g. an interrupted download or copy): check it "
            "with gdalinfo, or copy or export it again as a GeoTIFF.")


def input_problem(path: str) -> str:
    """Empty when ``path`` opens as a raster with bands; otherwise the message :func:`open_dataset` raises."""
    try:
        open_dataset(path)
    except EngineError as exc:
        return str(exc)
    return ""


def open_dataset(path: str) -> gdal.Dataset:
    """Open ``path`` read-only as a GDAL raster or raise :class:`EngineError` saying why not."""
    reason = ""
    ds = None
    try:
        ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY) if path else None
    except RuntimeError as exc:
        reason = str(exc)
    if ds is not None and ds.RasterCount >= 1:
        return ds
    if ds is not None:
        subdatasets = [v for k, v in (ds.GetMetadata("SUBDATASETS") or {}).items() if k.endswith("_NAME")]
        if subdatasets:
            raise EngineError(f"Cannot open '{path}' as a raster: it holds {len(subdatasets)} rasters "
                              f"(subdatasets). Choose one of them as the input, e.g. '{subdatasets[0]}'.")
        raise EngineError(f"Cannot open '{path}' as a raster: it has no raster bands. Choose the orthophoto "
                          "raster (GeoTIFF, VRT, JPEG2000...).")
    raise EngineError(open_failure(path, reason))


class RasterSource:
    """An open input raster with its chosen RGB bands, masks and value scaling."""

    def __init__(self, path: str, bands: Optional[Sequence[int]], log: Progress) -> None:
        self.path = path
        self.ds = open_dataset(path)
        self.width = self.ds.RasterXSize
        self.height = self.ds.RasterYSize
        gt = self.ds.GetGeoTransform(can_return_null=True)
        if gt is None:
            log.warning("The raster has no geotransform; the output uses pixel coordinates and areas are in pixels.")
            gt = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        self.geotransform = tuple(gt)
        srs = self.ds.GetSpatialRef()
        self.srs: Optional[osr.SpatialReference] = srs.Clone() if srs is not None else None
        if self.srs is None:
            log.warning("The raster has no CRS: the labels are written without one and areas are in the raster's "
                        "unknown map units (no hectares). To get them, assign the CRS to the file first (e.g. "
                        "gdal_edit.py -a_srs EPSG:xxxx, or Raster > Projections > Assign Projection).")
        self.alpha_band = self._find_alpha()
        self.bands = self._choose_bands(bands, log)
        self._unique = sorted(set(self.bands))
        self._check_types()
        self._mask_bands = self._find_masks()
        self._nodata = {i: self.ds.GetRasterBand(i).GetNoDataValue() for i in self._unique}
        self.stretch: Dict[int, Stretch] = {}

    # -- set-up -------------------------------------------------------------------------------

    def _find_alpha(self) -> Optional[int]:
        for i in range(1, self.ds.RasterCount + 1):
            if self.ds.GetRasterBand(i).GetColorInterpretation() == gdal.GCI_AlphaBand:
                return i
        return None

    def _choose_bands(self, bands: Optional[Sequence[int]], log: Progress) -> Tuple[int, int, int]:
        count = self.ds.RasterCount
        if bands is not None:
            chosen = [int(b) for b in bands]
            bad = [b for b in chosen if not 1 <= b <= count]
            if bad:
                raise EngineError(f"Band {bad[0]} does not exist: this raster has bands 1 to {count}. "
                                  "Choose band numbers in that range.")
        else:
            data = [i for i in range(1, count + 1) if i != self.alpha_band]
            if not data:
                raise EngineError("The raster has only an alpha band. Choose a raster with image bands.")
            if len(data) > 3:
                log.warning(f"The raster has {len(data)} image bands; using bands {data[0]}, {data[1]}, "
                            f"{data[2]} as RGB. Choose the bands to use others.")
            elif len(data) == 2:
                log.warning(f"The raster has 2 image bands; using band {data[0]} as grey. "
                            "Choose the bands to use another combination.")
            chosen = data[:3] if len(data) >= 3 else data[:1]
        if len(chosen) == 1:
            log.info(f"Using band {chosen[0]} as grey (repeated to RGB).")
            chosen = chosen * 3
        else:
            log.info(f"Using bands {chosen[0]}, {chosen[1]}, {chosen[2]} as RGB.")
        return chosen[0], chosen[1], chosen[2]

    def _check_types(self) -> None:
        for i in self._unique:
            dtype = self.ds.GetRasterBand(i).DataType
            if gdal.DataTypeIsComplex(dtype):
                raise EngineError(f"Band {i} has complex values ({gdal.GetDataTypeName(dtype)}). "
                                  "Convert the raster to real values first.")

    def _find_masks(self) -> List[Tuple[str, gdal.Band]]:
        masks: List[Tuple[str, gdal.Band]] = []
        dataset_mask = False
        for i in self._unique:
            band = self.ds.GetRasterBand(i)
            flags = band.GetMaskFlags()
            if flags & gdal.GMF_ALPHA and self.alpha_band is None:
                flags = gdal.GMF_PER_DATASET  # an alpha GDAL found that is not labelled as one: use its mask
            if flags & _MASKS_HANDLED_ELSEWHERE:
                continue
            if flags & gdal.GMF_PER_DATASET:
                if not dataset_mask:
                    masks.append(("dataset mask", band.GetMaskBand()))
                    dataset_mask = True
            else:
                masks.append((f"band {i} mask", band.GetMaskBand()))
        if self.alpha_band is not None:
            masks.append((f"alpha band {self.alpha_band}", self.ds.GetRasterBand(self.alpha_band)))
        return masks

    def describe_masks(self) -> str:
        """One line saying which pixels count as invalid."""
        parts = [f"NoData {v:g} on band {i}" for i, v in self._nodata.items() if v is not None]
        parts += [name for name, _ in self._mask_bands]
        return "Invalid pixels: " + (", ".join(parts) if parts else "none declared") + "."

    def needs_stretch(self, band: int) -> bool:
        """True when ``band`` is not Byte and is stretched by percentiles."""
        return self.ds.GetRasterBand(band).DataType != gdal.GDT_Byte

    # -- reading inside the raster ------------------------------------------------------------

    def _read_array(self, band: gdal.Band, what: str, x0: int, y0: int, w: int, h: int,
                    buf: Optional[Tuple[int, int]] = None) -> np.ndarray:
        try:
            if buf is None:
                data = band.ReadAsArray(x0, y0, w, h)
            else:
                data = band.ReadAsArray(x0, y0, w, h, buf_xsize=buf[0], buf_ysize=buf[1])
        except RuntimeError as exc:
            raise EngineError(f"Cannot read {what} of '{self.path}' at pixels x {x0}..{x0 + w}, y {y0}..{y0 + h} "
                              f"({str(exc).strip().rstrip('.')}). The file is damaged or incomplete (e.g. an "
                              "interrupted download or copy): check it with 'gdalinfo -checksum', then copy or "
                              "export it again.") from exc
        if data is None:
            raise EngineError(f"Cannot read {what} of '{self.path}' at pixels x {x0}..{x0 + w}, y {y0}..{y0 + h} "
                              f"({gdal.GetLastErrorMsg() or 'GDAL returned no data'}). Check the file with "
                              "'gdalinfo -checksum', then copy or export it again.")
        return data

    def _band_values(self, index: int, x0: int, y0: int, w: int, h: int,
                     buf: Optional[Tuple[int, int]] = None) -> np.ndarray:
        return self._read_array(self.ds.GetRasterBand(index), f"band {index}", x0, y0, w, h, buf)

    def _valid(self, values: Dict[int, np.ndarray], x0: int, y0: int, w: int, h: int,
               buf: Optional[Tuple[int, int]] = None) -> np.ndarray:
        shape = next(iter(values.values())).shape
        valid = np.ones(shape, dtype=bool)
        for i, data in values.items():
            nodata = self._nodata[i]
            if data.dtype.kind == "f":
                valid &= np.isfinite(data)
            if nodata is None:
                continue
            if math.isnan(nodata):
                continue
            if data.dtype.kind in "iu":
                info = np.iinfo(data.dtype)
                if not (info.min <= nodata <= info.max and float(nodata).is_integer()):
                    continue
            valid &= data != np.asarray(nodata).astype(data.dtype)
        for name, mask_band in self._mask_bands:
            valid &= self._read_array(mask_band, f"the {name}", x0, y0, w, h, buf) != 0
        return valid

    def _scaled(self, index: int, data: np.ndarray) -> np.ndarray:
        if index not in self.stretch:
            return data.astype(np.float32) / np.float32(255.0)
        s = self.stretch[index]
        span = s.high - s.low if s.high > s.low else 1.0
        out = (data.astype(np.float64) - s.low) / span
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def read_inside(self, x0: int, y0: int, w: int, h: int) -> Tuple[np.ndarray, np.ndarray]:
        """RGB in 0..1 as float32 [3, h, w] and validity [h, w] of a window inside the raster."""
        values = {i: self._band_values(i, x0, y0, w, h) for i in self._unique}
        valid = self._valid(values, x0, y0, w, h)
        scaled = {i: self._scaled(i, v) for i, v in values.items()}
        rgb = np.stack([scaled[i] for i in self.bands])
        return rgb, valid

    def read_with_raw(self, x0: int, y0: int, w: int, h: int, extra: Sequence[int] = ()) \
            -> Tuple[np.ndarray, np.ndarray, Dict[int, np.ndarray]]:
        """Like :meth:`read_inside`, plus the unscaled values of the RGB bands and of ``extra`` bands (one
        read per band: the labelling pass gets the evidence bands from the same read)."""
        raw = {i: self._band_values(i, x0, y0, w, h) for i in sorted(set(self._unique) | set(extra))}
        valid = self._valid({i: raw[i] for i in self._unique}, x0, y0, w, h)
        rgb = np.stack([self._scaled(i, raw[i]) for i in self.bands])
        return rgb, valid, raw

    def read(self, x0: int, y0: int, w: int, h: int) -> Tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read_inside` for any window; pixels beyond the raster edges are mirrored."""
        if x0 >= 0 and y0 >= 0 and x0 + w <= self.width and y0 + h <= self.height:
            return self.read_inside(x0, y0, w, h)
        rows = reflect_indices(y0, h, self.height)
        cols = reflect_indices(x0, w, self.width)
        r0, c0 = int(rows.min()), int(cols.min())
        rgb, valid = self.read_inside(c0, r0, int(cols.max()) - c0 + 1, int(rows.max()) - r0 + 1)
        ix = np.ix_(rows - r0, cols - c0)
        return rgb[(slice(None), *ix)], valid[ix]

    def flush(self) -> None:
        """Empty GDAL's block cache for this dataset."""
        self.ds.FlushCache()

    # -- percentile stretch -------------------------------------------------------------------

    def compute_stretch(self, progress: Progress, report: Callable[[float], None],
                        window: Optional[Tuple[int, int, int, int]] = None) -> None:
        """Sample ``window`` (x0, y0, width, height; default the whole raster) and set the 2-98 % stretch
        of every non-Byte band."""
        todo = [i for i in self._unique if self.needs_stretch(i)]
        if not todo:
            return
        x0, y0, width, height = window if window is not None else (0, 0, self.width, self.height)
        step = max(1, math.ceil(max(width, height) / SAMPLE_SIDE))
        buf_w = math.ceil(width / step)
        block_h = max(1, self.ds.GetRasterBand(todo[0]).GetBlockSize()[1])
        rows_per_strip = max(1, block_h // step)
        n_rows = math.ceil(height / step)
        samples: Dict[int, List[np.ndarray]] = {i: [] for i in todo}
        for first in range(0, n_rows, rows_per_strip):
            check_canceled(progress)
            n = min(rows_per_strip, n_rows - first)
            top = y0 + first * step
            h = min(y0 + height, y0 + (first + n) * step) - top
            buf = (buf_w, n)
            values = {i: self._band_values(i, x0, top, width, h, buf) for i in self._unique}
            valid = self._valid(values, x0, top, width, h, buf)
            for i in todo:
                samples[i].append(values[i][valid].astype(np.float64))
            self.flush()
            report((first + n) / n_rows)
        for i in todo:
            data = np.concatenate(samples[i])
            if data.size == 0:
                where = "the raster" if window is None or tuple(window) == (0, 0, self.width, self.height) \
                    else "the chosen extent"
                raise EngineError(f"No valid pixels in {where} (all NoData or masked): there is nothing to "
                                  "segment. Check the NoData value, the alpha band or the mask, or choose "
                                  "another extent or raster.")
            low, high = (float(v) for v in np.percentile(data, STRETCH_PERCENTILES))
            self.stretch[i] = Stretch(low, high)
            dtype = gdal.GetDataTypeName(self.ds.GetRasterBand(i).DataType)
            note = "" if high > low else " (constant band)"
            progress.info(f"Band {i} ({dtype}) stretched to 0..1 between its 2-98 % percentiles "
                          f"{low:.6g} and {high:.6g} ({data.size} sampled pixels){note}.")

    def close(self) -> None:
        """Release the dataset."""
        self._mask_bands = []
        self.ds = None
