"""Any QGIS raster layer as the input of Segment Trees, Fit Cluster Model and Canopy Height.

A layer of QGIS's 'gdal' provider is a file (or anything else GDAL opens): the worker reads its source, as it
always did. Any other layer (XYZ, WMS, WMTS, WCS, ArcGIS services, PostGIS rasters: whatever a QGIS raster provider
serves) is fetched here, in QGIS, through a copy of the layer's own provider, so the layer's authentication
configuration, QGIS's proxy and its network cache apply. Decisions:

* The grid fetched is the EXTENT (in the layer's CRS) at the working resolution, in ground metres by the rule of
  ``engine/raster/working_grid.py`` (the extent's central ground size on the CRS's ellipsoid), so 0.1 is 10 cm on
  the ground in Web Mercator too. A layer without an extent of its own (web services) needs EXTENT; one without a
  pixel size of its own needs a working resolution; either missing is an error that names the fix.
* At most :data:`MAX_FETCH_PIXELS` pixels: a larger grid is refused with its size and the coarsest-needed
  resolution that fits, before anything is requested.
* Blocks of :data:`BLOCK_PX` px, one request each, progress after each, the Cancel button honoured between
  blocks and inside a request; written with the engine's one GeoTIFF writer into a temporary folder that is
  removed after the run, also after a failure or a cancel (so a cancelled fetch leaves nothing).
* Image services (ARGB32: XYZ, WMS, WMTS) become red, green and blue bands and a mask (GDAL's per-dataset
  mask band) that makes transparent pixels invalid, so a cluster model fitted on a web layer applies to RGB
  files and back; data services (WCS, PostGIS) keep their bands, data type and NoData value.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
from osgeo import gdal, gdal_array, osr
from qgis.core import (
    Qgis,
    QgsProcessingFeedback,
    QgsProcessingUtils,
    QgsRasterBlockFeedback,
    QgsRasterDataProvider,
    QgsRasterLayer,
    QgsRectangle,
    QgsReferencedRectangle,
)
from qgis.PyQt.QtCore import QCoreApplication, Qt, QThread

from ..treeseg_plugin.engine.errors import Canceled, EngineError, write_error
from ..treeseg_plugin.engine.raster.georef import Window
from ..treeseg_plugin.engine.raster.geotiff import Block, GeoTiffWriter, Grid, blocks
from ..treeseg_plugin.engine.raster.working_grid import ground_pixel_size, resampled_size
from ..treeseg_plugin.i18n import format_number, tr

MAX_FETCH_PIXELS = 100_000_000
"""The largest grid fetched from a layer that is not a file (10,000 x 10,000 px: 400 MB as RGB and mask)."""
BLOCK_PX = 1024
ARGB = (Qgis.DataType.ARGB32, Qgis.DataType.ARGB32_Premultiplied)


def is_file_layer(layer: QgsRasterLayer) -> bool:
    """True for a layer the worker opens itself with GDAL (QGIS's 'gdal' provider)."""
    return layer.providerType() == "gdal"


def fetched_band_count(layer: QgsRasterLayer) -> int:
    """The bands the worker sees of ``layer``: 3 (red, green, blue) for an image service, else its own."""
    if not is_file_layer(layer) and layer.dataProvider().dataType(1) in ARGB:
        return 3
    return layer.bandCount()


@dataclass(frozen=True)
class FetchGrid:
    """What is fetched: ``extent`` in the layer's CRS, ``width`` x ``height`` pixels."""

    extent: QgsRectangle
    width: int
    height: int

    @property
    def geotransform(self) -> Tuple[float, ...]:
        extent = self.extent
        return (extent.xMinimum(), extent.width() / self.width, 0.0, extent.yMaximum(), 0.0,
                -extent.height() / self.height)


def layer_srs(layer: QgsRasterLayer) -> Optional[osr.SpatialReference]:
    """The layer's CRS for GDAL (None when it has none)."""
    if not layer.crs().isValid():
        return None
    srs = osr.SpatialReference()
    srs.ImportFromWkt(layer.crs().toWkt())
    return srs


def _has_grid(layer: QgsRasterLayer) -> bool:
    """True when the provider has a size of its own (a native extent and pixel size)."""
    provider = layer.dataProvider()
    return bool(provider.capabilities() & QgsRasterDataProvider.Capability.Size) and provider.xSize() > 0


def native_ground_size(layer: QgsRasterLayer) -> Optional[Tuple[float, float]]:
    """``layer``'s own (column, row) pixel size in ground metres at its centre; None when it has no pixel size of
    its own (web services) or its CRS does not tell metres."""
    if not _has_grid(layer):
        return None
    extent, provider = layer.extent(), layer.dataProvider()
    geotransform = (extent.xMinimum(), layer.rasterUnitsPerPixelX(), 0.0, extent.yMaximum(), 0.0,
                    -layer.rasterUnitsPerPixelY())
    return ground_pixel_size(geotransform, layer_srs(layer), Window(0, 0, provider.xSize(), provider.ySize()))


def fetch_grid(layer: QgsRasterLayer, extent: Optional[QgsRectangle], resolution: float,
               resolution_name: str) -> FetchGrid:
    """The grid to fetch ``layer`` on: ``extent`` (in its CRS; None: the layer's own) at ``resolution`` ground
    metres per pixel (0: the layer's own pixel size). EngineError naming the fix when either is missing or the
    grid is larger than :data:`MAX_FETCH_PIXELS`."""
    name, provider = layer.name(), layer.providerType()
    if extent is None or extent.isEmpty():
        if not _has_grid(layer):
            raise EngineError(tr("The layer '{layer}' ('{provider}' provider) has no extent of its own: give the "
                                 "EXTENT to fetch (in the dialog: Extent > Use Map Canvas Extent; in qgis_process: "
                                 "EXTENT='xmin,xmax,ymin,ymax [EPSG:code]').").format(layer=name, provider=provider))
        extent = layer.extent()
    probe = Window(0, 0, 1000, 1000)  # a fine grid over the extent: its central pixel's ground size
    ground = ground_pixel_size(FetchGrid(extent, probe.width, probe.height).geotransform, layer_srs(layer), probe)
    if resolution == 0:
        if not _has_grid(layer):
            raise EngineError(tr("The layer '{layer}' ('{provider}' provider) has no pixel size of its own: give "
                                 "{parameter} in metres per pixel (e.g. 0.1 for 10 cm aerial imagery).").format(
                                     layer=name, provider=provider, parameter=resolution_name))
        width = max(1, round(extent.width() / layer.rasterUnitsPerPixelX()))
        height = max(1, round(extent.height() / layer.rasterUnitsPerPixelY()))
    elif ground is None:
        raise EngineError(tr("The CRS of layer '{layer}' ({crs}) does not tell its size in metres, so "
                             "{parameter}={resolution} m cannot be fetched. Give the layer a CRS.").format(
                                 layer=name, crs=layer.crs().authid() or tr("none"), parameter=resolution_name,
                                 resolution=f"{resolution:g}"))
    else:
        width, height = resampled_size(probe, ground, resolution)
    grid = FetchGrid(extent, width, height)
    _check_size(grid, ground, name, resolution_name)
    return grid


def _check_size(grid: FetchGrid, probe_m: Optional[Tuple[float, float]], name: str, resolution_name: str) -> None:
    """EngineError with the size and a resolution that fits when ``grid`` has over MAX_FETCH_PIXELS pixels."""
    pixels = grid.width * grid.height
    if pixels <= MAX_FETCH_PIXELS:
        return
    fix = tr("a smaller extent")
    if probe_m is not None:  # the grid's ground pixel size, from the 1000 px probe's
        pixel_m = math.sqrt(probe_m[0] * 1000 / grid.width * probe_m[1] * 1000 / grid.height)
        needed = pixel_m * math.sqrt(pixels / MAX_FETCH_PIXELS)
        digits = 10 ** (math.floor(math.log10(needed)) - 1)
        fix = tr("{parameter} of at least {resolution} m, or {fix}").format(
            parameter=resolution_name, resolution=format_number(math.ceil(needed / digits) * digits, ".3g"), fix=fix)
    raise EngineError(tr("Fetching '{layer}' over this extent is {width} x {height} = {pixels} px, more than the "
                         "{limit} px a layer that is not a file may be fetched at. Choose {fix}.").format(
                             layer=name, width=format_number(grid.width), height=format_number(grid.height),
                             pixels=format_number(pixels), limit=format_number(MAX_FETCH_PIXELS), fix=fix))


def _argb_bands(raw: bytes, block: Block, premultiplied: bool) -> Iterator[Tuple[int, np.ndarray]]:
    """Red, green, blue (bands 1 to 3) and validity (0: the mask) of a block of 0xAARRGGBB pixels."""
    pixels = np.frombuffer(raw, np.uint8).reshape(block.height, block.width, 4)
    order = (2, 1, 0, 3) if sys.byteorder == "little" else (1, 2, 3, 0)
    alpha = pixels[..., order[3]]
    for band, index in enumerate(order[:3], start=1):
        values = pixels[..., index]
        if premultiplied:
            values = np.where(alpha > 0, np.minimum(255, values * 255.0 / np.maximum(alpha, 1)), 0)
        yield band, values
    yield 0, np.where(alpha > 0, 255, 0).astype(np.uint8)


def _read_block(provider: QgsRasterDataProvider, rect: QgsRectangle, block: Block,
                feedback: QgsRasterBlockFeedback) -> Iterator[Tuple[int, np.ndarray]]:
    """(band, values) of one block, fetched from ``provider``."""
    kind = provider.dataType(1)
    for band in (1,) if kind in ARGB else range(1, provider.bandCount() + 1):
        raster = provider.block(band, rect, block.width, block.height, feedback)
        if feedback.isCanceled():
            raise Canceled()
        if not raster.isValid():
            raise EngineError(tr("The '{provider}' provider returned no block for {rect}: {reason}.").format(
                provider=provider.name(), rect=rect.toString(3),
                reason=provider.error().summary() or tr("no reason given")))
        raw = bytes(raster.data())
        if kind in ARGB:
            yield from _argb_bands(raw, block, kind == Qgis.DataType.ARGB32_Premultiplied)
        else:
            yield band, np.frombuffer(raw, gdal_array.flip_code(int(kind))).reshape(block.height, block.width)


def _writer(layer: QgsRasterLayer, grid: FetchGrid, path: str) -> GeoTiffWriter:
    """The GeoTIFF the fetched blocks go into: RGB bytes and a mask for an image service, else the layer's
    bands."""
    provider = layer.dataProvider()
    where = Grid(grid.width, grid.height, grid.geotransform, layer_srs(layer))
    if provider.dataType(1) in ARGB:
        return GeoTiffWriter(path, where, gdal.GDT_Byte, None, band_count=3, mask=True)
    nodata = provider.sourceNoDataValue(1) if provider.sourceHasNoDataValue(1) else None
    return GeoTiffWriter(path, where, int(provider.dataType(1)), nodata, band_count=provider.bandCount())


def fetch(layer: QgsRasterLayer, grid: FetchGrid, path: str, feedback: QgsProcessingFeedback) -> None:
    """``layer`` on ``grid`` into a new GeoTIFF at ``path``, block by block (nothing left on failure or cancel)."""
    provider = layer.dataProvider().clone()  # its own copy: this may run outside the layer's thread
    todo = list(blocks(grid.width, grid.height, BLOCK_PX))
    size_x, size_y = grid.extent.width() / grid.width, grid.extent.height() / grid.height
    left, top = grid.extent.xMinimum(), grid.extent.yMaximum()
    cancel = QgsRasterBlockFeedback()
    feedback.canceled.connect(cancel.cancel, Qt.ConnectionType.DirectConnection)
    seen = provider.dataType(1) not in ARGB  # an image service: some pixel not transparent
    try:
        with _writer(layer, grid, path) as writer:
            for done, block in enumerate(todo, start=1):
                if feedback.isCanceled():
                    raise Canceled()
                rect = QgsRectangle(left + block.left * size_x, top - (block.top + block.height) * size_y,
                                    left + (block.left + block.width) * size_x, top - block.top * size_y)
                for band, values in _read_block(provider, rect, block, cancel):
                    writer.write(block.top, block.left, values, band)
                    seen = seen or (band == 0 and bool(values.any()))
                feedback.setProgress(100.0 * done / len(todo))
            if not seen:
                raise EngineError(tr("The layer '{layer}' returned only transparent pixels over {extent}: the extent "
                                     "is outside its data or the service failed (see its tab in the Log Messages "
                                     "panel). Check the extent and the layer.").format(
                                         layer=layer.name(), extent=grid.extent.toString(3)))
            writer.finish()
    except OSError as error:
        raise write_error(f"the fetched layer '{layer.name()}'", error, os.path.dirname(path)) from None
    finally:
        feedback.canceled.disconnect(cancel.cancel)


def canvas_extent() -> Optional[QgsReferencedRectangle]:
    """The map canvas's extent in the desktop, read in the main thread; None elsewhere (and in a model's step,
    prepared in the model's thread)."""
    from qgis.utils import iface

    application = QCoreApplication.instance()
    if iface is None or application is None or QThread.currentThread() is not application.thread() or \
            iface.mapCanvas() is None:
        return None
    canvas = iface.mapCanvas()
    return QgsReferencedRectangle(canvas.extent(), canvas.mapSettings().destinationCrs())


class LayerInputs:
    """The paths the worker reads for raster layers; a context manager whose exit removes every fetched file."""

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        self.feedback = feedback
        self.folder: Optional[str] = None

    def path(self, layer: QgsRasterLayer, extent: Optional[QgsRectangle], resolution: float,
             resolution_name: str) -> str:
        """``layer``'s source when it is a file; else the GeoTIFF it was fetched into (see the module's doc)."""
        if is_file_layer(layer):
            return layer.source()
        grid = fetch_grid(layer, extent, resolution, resolution_name)
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="treeseg-fetch-", dir=QgsProcessingUtils.tempFolder())
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", layer.name()).strip("._") or "layer"  # results are named after it
        path, copy = os.path.join(self.folder, f"{stem}.tif"), 1
        while os.path.exists(path):  # two layers of one name (Fit Cluster Model)
            copy += 1
            path = os.path.join(self.folder, f"{stem}-{copy}.tif")
        how = tr("at {resolution} m per pixel").format(resolution=format_number(resolution, "g")) if resolution else \
            tr("at its own pixel size")
        self.feedback.pushInfo(tr("Fetching '{layer}' through QGIS's '{provider}' provider {how}: {width} x {height} "
                                  "px over {extent} ({crs}), into a temporary GeoTIFF.").format(
                                      layer=layer.name(), provider=layer.providerType(), how=how,
                                      width=format_number(grid.width), height=format_number(grid.height),
                                      extent=grid.extent.toString(3), crs=layer.crs().authid()))
        self.feedback.setProgressText(tr("Fetching {layer}").format(layer=layer.name()))
        fetch(layer, grid, path, self.feedback)
        return path

    def __enter__(self) -> LayerInputs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
