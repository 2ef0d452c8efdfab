"""The canopy height raster: a tiled, DEFLATE-compressed, 1-band Float32 GeoTIFF of metres with NoData
``NODATA``, and a QGIS ``.qml`` style beside it (a green-to-yellow colour ramp from 0 to 40 m).

Write failures must not leave a file that looks finished: :meth:`HeightWriter.finish` flushes explicitly
(GDAL raises on a failed block write only there), closes, and reads the last pixel back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from ..jobs.canopy_height import NODATA
from .label_raster import BLOCK, WriteError
from .styles import add_renderer, style_root, style_text, write_style

CREATION_OPTIONS = ("TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "COMPRESS=DEFLATE", "PREDICTOR=3",
                    "BIGTIFF=IF_SAFER")
RAMP_TOP_M = 40.0
RAMP = ((0.0, "#f7fcb9"), (5.0, "#addd8e"), (15.0, "#41ab5d"), (25.0, "#006837"), (RAMP_TOP_M, "#00341a"))


class HeightWriter:
    """Writes height blocks (float32 metres, NODATA where invalid) into a new GeoTIFF at ``path``.

    Every failure to create or write the file raises :class:`WriteError` (an OSError).
    """

    def __init__(self, path: str, width: int, height: int, geotransform: Sequence[float],
                 srs: Optional[osr.SpatialReference]) -> None:
        self.path, self.width, self.height = path, width, height
        try:
            self.ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Float32,
                                                           options=list(CREATION_OPTIONS))
            self.ds.SetGeoTransform(list(geotransform))
            if srs is not None:
                self.ds.SetSpatialRef(srs)
            self.band = self.ds.GetRasterBand(1)
            self.band.SetNoDataValue(NODATA)
            self.band.SetDescription("canopy height (m)")
        except RuntimeError as exc:
            message = str(exc)
        else:
            return
        raise WriteError(message)

    def write(self, top: int, left: int, heights: np.ndarray) -> None:
        try:
            self.band.WriteArray(heights.astype(np.float32, copy=False), xoff=left, yoff=top)
        except RuntimeError as exc:
            message = str(exc)
        else:
            return
        raise WriteError(message)

    def finish(self) -> None:
        """Write everything, close, and check the file reads back; raises :class:`WriteError`."""
        try:
            self.ds.FlushCache()
            self.close()
            check = gdal.Open(self.path)
            if (check.RasterXSize, check.RasterYSize) != (self.width, self.height) or \
                    check.GetRasterBand(1).ReadAsArray(self.width - 1, self.height - 1, 1, 1) is None:
                raise RuntimeError(f"'{self.path}' did not read back as written")
        except RuntimeError as exc:
            message = str(exc)
        else:
            return
        raise WriteError(message)

    def close(self) -> None:
        self.band = None
        self.ds = None


def height_qml() -> str:
    """A QGIS single-band pseudocolour style: interpolated ramp 0..40 m, NoData transparent."""
    root, pipe = style_root()
    top = f"{RAMP_TOP_M:g}"
    renderer = add_renderer(pipe, "singlebandpseudocolor", {"classificationMin": "0", "classificationMax": top})
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0", "minimumValue": "0",
        "maximumValue": top})
    for value, colour in RAMP:
        ET.SubElement(shader, "item", {"value": f"{value:g}", "color": colour, "alpha": "255",
                                       "label": f"{value:g} m"})
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    return style_text(root)


def write_height_qml(path: str) -> None:
    """Write the height style to ``path``."""
    write_style(path, height_qml())
