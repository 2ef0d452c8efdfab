"""The label raster: a tiled, DEFLATE-compressed, 1-band Byte GeoTIFF with NoData 0, a colour table
and category names, plus a QGIS ``.qml`` paletted style next to it.

Decisions: no PREDICTOR (labels are categories; PREDICTOR=2 made a 4096² label raster 29 % larger); GDAL
writes no timestamp into GeoTIFFs, so equal labels give byte-identical files. GeoTIFF cannot hold
category names, so GDAL keeps them in a ``.tif.aux.xml`` sidecar (also written by this module). The
.qml uses QGIS's paletted renderer format (valid for QGIS 3.22 and later); values not in the palette
(0) are drawn transparent.

Write failures (a full disk, a vanished folder) must never leave a truncated file that looks finished:
GDAL raises on a failed block or directory write only from an explicit ``FlushCache``, and a failure
while closing (GDAL 3.6 has no ``Dataset.Close``) would be an "Exception ignored" traceback on stderr. So
:meth:`LabelWriter.finish` flushes explicitly, closes with GDAL's exceptions off for that moment and the
close-time errors collected by an error handler of this thread (and raised), then re-opens the file and
reads its last pixel; :meth:`LabelWriter.close` after a failure discards close-time errors quietly.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from typing import Any, Callable, List, Optional, Sequence, TypeVar

import numpy as np
from osgeo import gdal, osr

from .gdal_mode import gdal_exceptions
from .palette import Legend, default_legend
from .styles import add_palette, style_root, style_text, write_style

T = TypeVar("T")
BLOCK = 256
CREATION_OPTIONS = ("TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "COMPRESS=DEFLATE",
                    "BIGTIFF=IF_SAFER")


class WriteError(OSError):
    """GDAL could not create or write the label raster (GDAL raises RuntimeError; this names it a write)."""


def _gdal_write(method: Callable[..., T]) -> Callable[..., T]:
    """Turn GDAL's RuntimeError in ``method`` into :class:`WriteError`, raised outside the handler.

    So GDAL's exception and its traceback (whose frames hold the dataset open) are freed at once, and a
    later close really closes the dataset, quietly, instead of whenever the garbage collector runs.
    """
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except RuntimeError as exc:
            message = str(exc).strip() or gdal.GetLastErrorMsg() or "GDAL reported a write error"
        raise WriteError(message)

    return wrapper


class LabelWriter:
    """Writes label blocks into a new GeoTIFF at ``path`` (a staged temporary path).

    Every failure to create or write the file raises :class:`WriteError` (an OSError).
    """

    def __init__(self, path: str, width: int, height: int, geotransform: Sequence[float],
                 srs: Optional[osr.SpatialReference], k: int, legend: Optional[Legend] = None) -> None:
        self.ds = self.band = None
        self._create(path, width, height, geotransform, srs, k, legend)

    @_gdal_write
    def _create(self, path: str, width: int, height: int, geotransform: Sequence[float],
                srs: Optional[osr.SpatialReference], k: int, legend: Optional[Legend]) -> None:
        """The file with its grid, NoData 0, and the colour table and category names of labels 0..k (the
        fixed palette unless ``legend`` is given): set
        before any pixel is written, as GDAL 3.10 refuses a photometric change once writing began."""
        self.ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Byte,
                                                       options=list(CREATION_OPTIONS))
        self.ds.SetGeoTransform(list(geotransform))
        if srs is not None:
            self.ds.SetSpatialRef(srs)
        self.band = self.ds.GetRasterBand(1)
        self.band.SetNoDataValue(0)
        self._set_classes(legend or default_legend(k))
        self.band.SetColorInterpretation(gdal.GCI_PaletteIndex)

    def _set_classes(self, legend: Legend) -> None:
        table = gdal.ColorTable()
        table.SetColorEntry(0, (0, 0, 0, 0))
        for label in range(1, legend.k + 1):
            table.SetColorEntry(label, (*legend.rgb(label), 255))
        self.band.SetColorTable(table)
        self.band.SetCategoryNames(list(legend.names))

    @_gdal_write
    def set_legend(self, legend: Legend) -> None:
        """New colours and names, e.g. saying which clusters are trees once the rule has decided (after the
        pixels: the file is already paletted, so only the TIFF colour map changes; GDAL's GTiff driver
        rewrites it in update mode, 3.6 here and in its current source, unlike a photometric change)."""
        self._set_classes(legend)

    @_gdal_write
    def write(self, top: int, left: int, labels: np.ndarray) -> None:
        """Write a block of labels at pixel (top, left)."""
        self.band.WriteArray(labels, xoff=left, yoff=top)

    @_gdal_write
    def flush(self) -> None:
        """Write GDAL's cached blocks to disk and drop them from memory."""
        self.ds.FlushCache()

    @_gdal_write
    def finish(self) -> None:
        """Write everything and close the file; raises :class:`WriteError` when any part could not be written."""
        self.ds.FlushCache()  # raises on a failed block or directory write
        path, width, height = self.ds.GetDescription(), self.ds.RasterXSize, self.ds.RasterYSize
        errors = self._close()
        if errors:
            raise RuntimeError(errors[0])
        check = gdal.Open(path)
        if (check.RasterXSize, check.RasterYSize) != (width, height) or \
                check.GetRasterBand(1).ReadAsArray(width - 1, height - 1, 1, 1) is None:
            raise RuntimeError(f"'{path}' did not read back as written")
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


def qml_text(k: int, legend: Optional[Legend] = None) -> str:
    """A QGIS paletted-renderer style for labels 1..k (0 stays transparent), the fixed palette by default."""
    legend = legend or default_legend(k)
    root, pipe = style_root()
    add_palette(pipe, [(label, legend.colors[label - 1], "255", legend.names[label]) for label in range(1, k + 1)])
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "invertColors": "0",
                                          "colorizeOn": "0", "colorizeRed": "255", "colorizeGreen": "128",
                                          "colorizeBlue": "128", "colorizeStrength": "100"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    blend = ET.SubElement(root, "blendMode")
    blend.text = "0"
    return style_text(root)


def write_qml(path: str, k: int, legend: Optional[Legend] = None) -> None:
    """Write the paletted style for labels 1..k to ``path``."""
    write_style(path, qml_text(k, legend))
