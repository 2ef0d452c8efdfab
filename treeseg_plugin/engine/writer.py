"""The label raster: a tiled, DEFLATE-compressed, 1-band Byte GeoTIFF with NoData 0, a colour table
and category names, plus a QGIS ``.qml`` paletted style next to it.

Decisions: no PREDICTOR (labels are categories; PREDICTOR=2 made a 4096² label raster 29 % larger); GDAL
writes no timestamp into GeoTIFFs, so equal labels give byte-identical files. GeoTIFF cannot hold
category names, so GDAL keeps them in a ``.tif.aux.xml`` sidecar (also written by this module). The
.qml uses QGIS's paletted renderer format (valid for QGIS 3.22 and later); values not in the palette
(0) are drawn transparent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

from .errors import EngineError
from .palette import category_names, cluster_color, cluster_hex, cluster_name

gdal.UseExceptions()

BLOCK = 256
CREATION_OPTIONS = ("TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "COMPRESS=DEFLATE",
                    "BIGTIFF=IF_SAFER")


class LabelWriter:
    """Writes label blocks into a new GeoTIFF at ``path`` (a staged temporary path)."""

    def __init__(self, path: str, width: int, height: int, geotransform: Sequence[float],
                 srs: Optional[osr.SpatialReference]) -> None:
        try:
            self.ds = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_Byte,
                                                           options=list(CREATION_OPTIONS))
        except RuntimeError as exc:
            raise EngineError(f"Cannot create the output raster '{path}': {exc}. Check the folder's "
                              "permissions and free space.") from exc
        self.ds.SetGeoTransform(list(geotransform))
        if srs is not None:
            self.ds.SetSpatialRef(srs)
        self.band = self.ds.GetRasterBand(1)
        self.band.SetNoDataValue(0)

    def write(self, top: int, left: int, labels: np.ndarray) -> None:
        """Write a block of labels at pixel (top, left)."""
        self.band.WriteArray(labels, xoff=left, yoff=top)

    def flush(self) -> None:
        """Write GDAL's cached blocks to disk and drop them from memory."""
        self.ds.FlushCache()

    def finish(self, k: int) -> None:
        """Set the colour table and category names for labels 0..k and close the file."""
        table = gdal.ColorTable()
        table.SetColorEntry(0, (0, 0, 0, 0))
        for label in range(1, k + 1):
            table.SetColorEntry(label, (*cluster_color(label), 255))
        self.band.SetColorTable(table)
        self.band.SetColorInterpretation(gdal.GCI_PaletteIndex)
        self.band.SetCategoryNames(category_names(k))
        self.close()

    def close(self) -> None:
        """Close the dataset (also after a failure)."""
        self.band = None
        self.ds = None


def qml_text(k: int) -> str:
    """A QGIS paletted-renderer style for labels 1..k (0 stays transparent)."""
    root = ET.Element("qgis", {"version": "3.22.0", "styleCategories": "AllStyleCategories"})
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {"type": "paletted", "band": "1", "opacity": "1",
                                                      "alphaBand": "-1", "nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for label in range(1, k + 1):
        ET.SubElement(palette, "paletteEntry", {"value": str(label), "color": cluster_hex(label),
                                                "alpha": "255", "label": cluster_name(label)})
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "invertColors": "0",
                                          "colorizeOn": "0", "colorizeRed": "255", "colorizeGreen": "128",
                                          "colorizeBlue": "128", "colorizeStrength": "100"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    blend = ET.SubElement(root, "blendMode")
    blend.text = "0"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def write_qml(path: str, k: int) -> None:
    """Write the paletted style for labels 1..k to ``path``."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(qml_text(k))
