"""The canopy height raster: a 1-band Float32 GeoTIFF of metres (engine/raster/geotiff.py's format, with
PREDICTOR=3) with NoData ``NODATA``, and a QGIS ``.qml`` style beside it (a green-to-yellow colour ramp from
0 to 40 m).
"""

from __future__ import annotations

from osgeo import gdal

from ..jobs.canopy_height import NODATA
from .geotiff import GeoTiffWriter, Grid
from .styles import add_renderer, style_root, style_text, write_style

RAMP_TOP_M = 40.0
RAMP = ((0.0, "#f7fcb9"), (5.0, "#addd8e"), (15.0, "#41ab5d"), (25.0, "#006837"), (RAMP_TOP_M, "#00341a"))


def height_writer(path: str, grid: Grid) -> GeoTiffWriter:
    """A new height raster at ``path``: float32 metres, NODATA where invalid."""
    return GeoTiffWriter(path, grid, gdal.GDT_Float32, NODATA, predictor=3, description="canopy height (m)")


def height_qml() -> str:
    """A QGIS single-band pseudocolour style: interpolated ramp 0..40 m, NoData transparent."""
    root, pipe = style_root()
    top = f"{RAMP_TOP_M:g}"
    renderer = add_renderer(pipe, "singlebandpseudocolor", {"classificationMin": "0", "classificationMax": top})
    shader = renderer.add("rastershader").add("colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0", "minimumValue": "0",
        "maximumValue": top})
    for value, colour in RAMP:
        shader.add("item", {"value": f"{value:g}", "color": colour, "alpha": "255", "label": f"{value:g} m"})
    pipe.add("brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    pipe.add("rasterresampler", {"maxOversampling": "2"})
    return style_text(root)


def write_height_qml(path: str) -> None:
    """Write the height style to ``path``."""
    write_style(path, height_qml())
