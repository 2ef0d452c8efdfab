"""Rasters of percentages, 0..100 in a Byte GeoTIFF with NoData :data:`NODATA` (engine/raster/geotiff.py's
format): Classify from Examples' similarity and confidence, with a QGIS ``.qml`` ramp beside them."""

from __future__ import annotations

from osgeo import gdal

from .geotiff import GeoTiffWriter, Grid
from .styles import ramp_style, write_style

NODATA = 255
RAMP = ((0.0, "#f7f7f7"), (50.0, "#92c5de"), (100.0, "#0571b0"))


def percent_writer(path: str, grid: Grid, description: str) -> GeoTiffWriter:
    """A new percentage raster at ``path`` (a staged temporary path), its band described as ``description``."""
    return GeoTiffWriter(path, grid, gdal.GDT_Byte, NODATA, description=description)


def write_percent_qml(path: str) -> None:
    """The percentage style (a ramp from 0 to 100 %) to ``path``."""
    write_style(path, ramp_style(RAMP, "%"))
