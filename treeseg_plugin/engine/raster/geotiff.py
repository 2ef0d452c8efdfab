"""The one GeoTIFF writer: a new tiled (256 px), DEFLATE-compressed GeoTIFF (1 band, or several: a web layer
fetched as red, green, blue and a validity mask) on a given grid, written block by block, and the block iterator
that walks such a grid.

Every output raster TreeSeg writes goes through :class:`GeoTiffWriter`: the label raster (Byte, NoData 0, a
colour table and category names), the tree mask (Byte, NoData 255), the canopy heights (Float32, PREDICTOR=3)
and the crown ids (UInt32, NoData 0). No overviews or statistics are computed. GDAL writes no timestamp into
GeoTIFFs, so equal values give byte-identical files; GeoTIFF cannot hold category names, so GDAL keeps them
in a ``.tif.aux.xml`` sidecar.

Failures: every GDAL error while creating, writing or closing the file becomes one :class:`WriteError` (an
OSError carrying GDAL's reason, e.g. "No space left on device" or "Permission denied"; the runs turn it into
the user's message with engine/errors.py's ``write_error``). A file that failed must never look finished:
GDAL raises on a failed block or directory write only from an explicit ``FlushCache``, and a failure while
closing (GDAL 3.6 has no ``Dataset.Close``) would be an "Exception ignored" traceback on stderr. So
:meth:`GeoTiffWriter.finish` flushes explicitly, closes with GDAL's exceptions off for that moment and the
close-time errors collected by an error handler of this thread (and raised), then re-opens the file and
reads its last pixel. Used as a context manager, a writer left by an exception closes quietly and deletes
its file (and sidecar).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar

import numpy as np
from osgeo import gdal, gdal_array, osr

from .gdal_mode import gdal_exceptions

T = TypeVar("T")
BLOCK = 256
RGBA = Tuple[int, int, int, int]


class WriteError(OSError):
    """GDAL could not create or write a GeoTIFF (GDAL raises RuntimeError; this names it a write)."""


@dataclass(frozen=True)
class Grid:
    """Where a raster lies: its size in pixels, geotransform and CRS (None: none)."""

    width: int
    height: int
    geotransform: Sequence[float]
    srs: Optional[osr.SpatialReference]

    @classmethod
    def of(cls, ds: gdal.Dataset) -> Grid:
        """The grid of an open dataset."""
        return cls(ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform(), ds.GetSpatialRef())


@dataclass(frozen=True)
class Classes:
    """A colour table (value -> RGBA) and category names (index = value) for a paletted raster."""

    colors: Dict[int, RGBA]
    names: Sequence[str]


class Block(NamedTuple):
    """One block of a grid: pixel offset, size, and whether it is the last of its row."""

    left: int
    top: int
    width: int
    height: int
    ends_row: bool


def blocks(width: int, height: int, side: int = BLOCK) -> Iterator[Block]:
    """The blocks covering a width x height grid, row by row (edge blocks cut to the grid)."""
    for top in range(0, height, side):
        for left in range(0, width, side):
            yield Block(left, top, min(side, width - left), min(side, height - top), left + side >= width)


def _gdal_write(method: Callable[..., T]) -> Callable[..., T]:
    """Run ``method`` with GDAL's exceptions on (whatever the caller's mode) and turn GDAL's RuntimeError into
    :class:`WriteError`, raised outside the handler.

    So GDAL's exception and its traceback (whose frames hold the dataset open) are freed at once, and a
    later close really closes the dataset, quietly, instead of whenever the garbage collector runs.
    """
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            with gdal_exceptions():
                return method(*args, **kwargs)
        except RuntimeError as exc:
            message = str(exc).strip() or gdal.GetLastErrorMsg() or "GDAL reported a write error"
        raise WriteError(message)

    return wrapper


class GeoTiffWriter:
    """Writes blocks into a new GeoTIFF at ``path`` on ``grid``: ``data_type`` (a GDT_*), ``nodata`` (None: none),
    and where given a ``predictor`` (creation option), a band ``description``, ``classes`` (then paletted), a
    ``band_count`` other than 1 and a ``mask`` (GDAL's per-dataset mask band: 0 invalid, 255 valid).

    Every failure to create or write the file raises :class:`WriteError` (an OSError).
    """

    def __init__(self, path: str, grid: Grid, data_type: int, nodata: Optional[float], *,
                 predictor: Optional[int] = None, description: Optional[str] = None, classes: Optional[Classes] = None,
                 band_count: int = 1, mask: bool = False) -> None:
        self.path, self.grid = path, grid
        self._numpy_type = gdal_array.flip_code(data_type)
        self.ds = self.band = None
        self._create(data_type, nodata, predictor, description, classes, (band_count, mask))

    @_gdal_write
    def _create(self, data_type: int, nodata: Optional[float], predictor: Optional[int], description: Optional[str],
                classes: Optional[Classes], bands: Tuple[int, bool]) -> None:
        """The file with its grid, NoData and (band count, mask or not), and its classes before any pixel is
        written (GDAL 3.10 refuses a photometric change once writing began)."""
        band_count, mask = bands
        predictors = [f"PREDICTOR={predictor}"] if predictor else []
        interleave = ["INTERLEAVE=PIXEL"] if band_count > 1 else []
        options = ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "COMPRESS=DEFLATE", *predictors,
                   *interleave, "BIGTIFF=IF_SAFER"]
        grid = self.grid
        self.ds = gdal.GetDriverByName("GTiff").Create(self.path, grid.width, grid.height, band_count, data_type,
                                                       options=options)
        self.ds.SetGeoTransform(list(grid.geotransform))
        if grid.srs is not None:
            self.ds.SetSpatialRef(grid.srs)
        self.band = self.ds.GetRasterBand(1)
        for index in range(1, band_count + 1) if nodata is not None else ():
            self.ds.GetRasterBand(index).SetNoDataValue(nodata)
        if mask:
            self.ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        if description is not None:
            self.band.SetDescription(description)
        if classes is not None:
            self._set_classes(classes)
            self.band.SetColorInterpretation(gdal.GCI_PaletteIndex)

    def _set_classes(self, classes: Classes) -> None:
        table = gdal.ColorTable()
        for value, rgba in classes.colors.items():
            table.SetColorEntry(value, rgba)
        self.band.SetColorTable(table)
        self.band.SetCategoryNames(list(classes.names))

    @_gdal_write
    def set_classes(self, classes: Classes) -> None:
        """New colours and names of a paletted file, also after its pixels (only the TIFF colour map changes;
        GDAL's GTiff driver rewrites it in update mode, unlike a photometric change). Pending blocks are written
        first: with blocks still in its cache, GDAL 3.10 refuses the colour map as a photometric change."""
        self.ds.FlushCache()
        self._set_classes(classes)

    @_gdal_write
    def write(self, top: int, left: int, values: np.ndarray, band: int = 1) -> None:
        """Write a block of values (cast to the file's data type) at pixel (top, left) of ``band`` (0: the mask)."""
        target = self.band if band == 1 else self.ds.GetRasterBand(band) if band else self.band.GetMaskBand()
        target.WriteArray(values.astype(self._numpy_type, copy=False), xoff=left, yoff=top)

    @_gdal_write
    def flush(self) -> None:
        """Write GDAL's cached blocks to disk and drop them from memory."""
        self.ds.FlushCache()

    @_gdal_write
    def finish(self) -> None:
        """Write everything and close the file; raises :class:`WriteError` when any part could not be written."""
        self.ds.FlushCache()  # raises on a failed block or directory write
        errors = self._close()
        if errors:
            raise RuntimeError(errors[0])
        width, height = self.grid.width, self.grid.height
        check = gdal.Open(self.path)
        if (check.RasterXSize, check.RasterYSize) != (width, height) or \
                check.GetRasterBand(1).ReadAsArray(width - 1, height - 1, 1, 1) is None:
            raise RuntimeError(f"'{self.path}' did not read back as written")
        check = None

    def _close(self) -> List[str]:
        """Close the dataset; returns the errors GDAL raised while closing (it cannot raise them itself)."""
        self.band = None
        ds, self.ds = self.ds, None
        errors: List[str] = []
        if ds is None:
            return errors

        def collect(error_class: int, _number: int, message: str) -> None:
            if error_class >= gdal.CE_Failure:
                errors.append(message)

        with gdal_exceptions(False):  # so GDAL reports to this thread's handler instead of raising in __del__
            gdal.PushErrorHandler(collect)
            try:
                del ds
            finally:
                gdal.PopErrorHandler()
        return errors

    def close(self) -> None:
        """Close the dataset (also after a failure, when close-time write errors are discarded)."""
        self._close()

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        """Close; after an exception also delete the unfinished file and its sidecar."""
        self._close()
        if exc_type is not None:
            for path in (self.path, self.path + ".aux.xml"):
                with contextlib.suppress(OSError):
                    os.remove(path)
