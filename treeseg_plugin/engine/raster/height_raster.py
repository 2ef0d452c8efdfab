"""The canopy height raster: a 1-band Float32 GeoTIFF of metres (engine/raster/geotiff.py's format, with
PREDICTOR=3) with NoData ``NODATA``, and a QGIS ``.qml`` style beside it (a green-to-yellow colour ramp from
0 to 40 m).
"""

from __future__ import annotations

from osgeo import gdal

from ..jobs.canopy_height import NODATA
from .geotiff import GeoTiffWriter, Grid
from .styles import ramp_style, write_style

RAMP_TOP_M = 40.0
RAMP = ((0.0, "#f7fcb9"), (5.0, "#addd8e"), (15.0, "#41ab5d"), (25.0, "#006837"), (RAMP_TOP_M, "#00341a"))


def height_writer(path: str, grid: Grid) -> GeoTiffWriter:
    """A new height raster at ``path``: float32 metres, NODATA where invalid."""
    return GeoTiffWriter(path, grid, gdal.GDT_Float32, NODATA, predictor=3, description="canopy height (m)")


def height_qml() -> str:
    """A QGIS single-band pseudocolour style: interpolated ramp 0..40 m, NoData transparent."""
    return ramp_style(RAMP, "m")


def write_height_qml(path: str) -> None:
    """Write the height style to ``path``."""
    write_style(path, height_qml())
