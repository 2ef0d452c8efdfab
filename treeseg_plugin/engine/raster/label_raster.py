"""The label raster: a 1-band Byte GeoTIFF (engine/raster/geotiff.py's format) with NoData 0, a colour table
and category names, plus a QGIS ``.qml`` paletted style next to it.

Decisions: no PREDICTOR (labels are categories; PREDICTOR=2 made a 4096² label raster 29 % larger). The
.qml uses QGIS's paletted renderer format (valid for QGIS 3.22 and later); values not in the palette
(0) are drawn transparent.
"""

from __future__ import annotations

from typing import Optional

from osgeo import gdal

from .geotiff import Classes, GeoTiffWriter, Grid
from .palette import Legend, default_legend
from .styles import add_palette, style_root, style_text, write_style


def label_classes(legend: Legend) -> Classes:
    """The colour table and category names of labels 0..k: 0 transparent, the legend's colours opaque."""
    colors = {0: (0, 0, 0, 0)}
    colors.update({label: (*legend.rgb(label), 255) for label in range(1, legend.k + 1)})
    return Classes(colors, legend.names)


def label_writer(path: str, grid: Grid, k: int, legend: Optional[Legend] = None) -> GeoTiffWriter:
    """A new label raster at ``path`` (a staged temporary path) for labels 1..k, coloured by ``legend`` (the
    fixed palette unless given); its legend may change after the pixels (``set_classes``)."""
    return GeoTiffWriter(path, grid, gdal.GDT_Byte, 0, classes=label_classes(legend or default_legend(k)))


def qml_text(k: int, legend: Optional[Legend] = None) -> str:
    """A QGIS paletted-renderer style for labels 1..k (0 stays transparent), the fixed palette by default."""
    legend = legend or default_legend(k)
    root, pipe = style_root()
    add_palette(pipe, [(label, legend.colors[label - 1], "255", legend.names[label]) for label in range(1, k + 1)])
    pipe.add("brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    pipe.add("huesaturation", {"saturation": "0", "grayscaleMode": "0", "invertColors": "0",
                               "colorizeOn": "0", "colorizeRed": "255", "colorizeGreen": "128",
                               "colorizeBlue": "128", "colorizeStrength": "100"})
    pipe.add("rasterresampler", {"maxOversampling": "2"})
    blend = root.add("blendMode")
    blend.text = "0"
    return style_text(root)


def write_qml(path: str, k: int, legend: Optional[Legend] = None) -> None:
    """Write the paletted style for labels 1..k to ``path``."""
    write_style(path, qml_text(k, legend))
