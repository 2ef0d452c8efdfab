"""Opening the input raster: band choice, validity masks, raw reads (values in 0..1: :mod:`.pixels`).

Decisions:

* Bands: ``bands`` of one band is repeated to RGB; three bands are used as given. By default the
  non-alpha bands are used: the first three (a warning names them when there are more), a single
  band repeated, or the first of two bands repeated (with a warning).
* Invalid pixels: a band's declared NoData value (NaN-aware), non-finite floats, an alpha band
  (GCI_AlphaBand) value of 0 and a GDAL mask band (per band or per dataset, from GetMaskFlags) value
  of 0. They are excluded from the fit and written as 0.
* Opening: a path that cannot be read as a raster is refused with the reason (no such file, a folder,
  a vector dataset, a container of subdatasets, a format GDAL does not recognise) before anything else
  happens; a read that fails later (a damaged or truncated file) names the band and the pixels. A raster
  without a CRS is read, with a warning: areas are then in unknown map units.
* GDAL's block cache is emptied for this dataset after each strip/tile row (:meth:`flush`), so
  memory does not grow with the raster.
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from ..errors import EngineError
from ..progress import Progress
from .gdal_mode import raising_gdal_errors
from .georef import input_geotransform

_MASKS_HANDLED_ELSEWHERE = gdal.GMF_ALL_VALID | gdal.GMF_NODATA | gdal.GMF_ALPHA


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


@raising_gdal_errors
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


class InputRaster:
    """An open input raster with its chosen RGB bands and masks; raw values and validity, no scaling."""

    def __init__(self, path: str, bands: Optional[Sequence[int]], log: Progress) -> None:
        self.path = path
        self.ds = open_dataset(path)
        self.width = self.ds.RasterXSize
        self.height = self.ds.RasterYSize
        self.geotransform = input_geotransform(self.ds, log)
        srs = self.ds.GetSpatialRef()
        self.srs: Optional[osr.SpatialReference] = srs.Clone() if srs is not None else None
        if self.srs is None:
            log.warning("The raster has no CRS: the labels are written without one and areas are in the raster's "
                        "unknown map units (no hectares). To get them, assign the CRS to the file first (e.g. "
                        "gdal_edit.py -a_srs EPSG:xxxx, or Raster > Projections > Assign Projection).")
        self.alpha_band = self._find_alpha()
        self.bands = self._choose_bands(bands, log)
        self.used_bands = sorted(set(self.bands))
        self._check_types()
        self._mask_bands = self._find_masks()
        self._nodata = {i: self.ds.GetRasterBand(i).GetNoDataValue() for i in self.used_bands}

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
        for i in self.used_bands:
            dtype = self.ds.GetRasterBand(i).DataType
            if gdal.DataTypeIsComplex(dtype):
                raise EngineError(f"Band {i} has complex values ({gdal.GetDataTypeName(dtype)}). "
                                  "Convert the raster to real values first.")

    def _find_masks(self) -> List[Tuple[str, gdal.Band]]:
        masks: List[Tuple[str, gdal.Band]] = []
        dataset_mask = False
        for i in self.used_bands:
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

    # -- reading ------------------------------------------------------------------------------

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
                     buf: Optional[Tuple[int, int]]) -> np.ndarray:
        return self._read_array(self.ds.GetRasterBand(index), f"band {index}", x0, y0, w, h, buf)

    def _valid(self, values: Dict[int, np.ndarray], x0: int, y0: int, w: int, h: int,
               buf: Optional[Tuple[int, int]]) -> np.ndarray:
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

    def read_values(self, x0: int, y0: int, w: int, h: int, buf: Optional[Tuple[int, int]] = None,
                    extra: Sequence[int] = ()) -> Tuple[Dict[int, np.ndarray], np.ndarray]:
        """Raw values {band: [h, w]} of the used bands (and of ``extra`` bands, e.g. a NIR band read in the
        same pass) and validity [h, w] of the used bands in a window inside the raster (``buf``: decimated
        to that (width, height))."""
        values = {i: self._band_values(i, x0, y0, w, h, buf) for i in sorted({*self.used_bands, *extra})}
        return values, self._valid({i: values[i] for i in self.used_bands}, x0, y0, w, h, buf)

    def read_valid(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """Validity [h, w] of a window inside the raster."""
        return self.read_values(x0, y0, w, h)[1]

    def flush(self) -> None:
        """Empty GDAL's block cache for this dataset."""
        self.ds.FlushCache()

    def close(self) -> None:
        """Release the dataset."""
        self._mask_bands = []
        self.ds = None
