"""Optional vector output: the label raster polygonised (GDAL Polygonize, 4-connected, label 0 left out)
into an OGR file whose driver follows the extension (.gpkg, .shp, .geojson), with fields ``cluster``
(integer label) and ``area`` (polygon area in map units²).

GDAL polygonises into a scratch GeoPackage first (some drivers, e.g. GeoJSON, cannot read back or
update what they write); the features are then copied with their area, streaming, so memory stays
flat. The scratch file lives in a sub-folder next to the output and is always removed. OGR's global
exception mode is left as QGIS set it: OGR results are checked explicitly.
"""

from __future__ import annotations

import os
import shutil
from typing import Optional, Tuple

from osgeo import gdal, ogr

from ..errors import Canceled, write_error
from ..jobs.segmentation import polygon_driver
from ..progress import Progress

_BATCH = 10000


def _check(ok: object, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} failed: {gdal.GetLastErrorMsg() or 'unknown OGR error'}")


def _new_layer(path: str, driver_name: str, srs: object) -> Tuple[ogr.DataSource, ogr.Layer]:
    vector = ogr.GetDriverByName(driver_name).CreateDataSource(path)
    _check(vector is not None, f"Creating {path}")
    name = os.path.splitext(os.path.basename(path))[0] or "clusters"
    layer = vector.CreateLayer(name, srs=srs, geom_type=ogr.wkbPolygon)
    _check(layer is not None, f"Creating layer {name}")
    for field, kind in (("cluster", ogr.OFTInteger), ("area", ogr.OFTReal)):
        _check(layer.CreateField(ogr.FieldDefn(field, kind)) == ogr.OGRERR_NONE, f"Creating field {field}")
    return vector, layer


def _copy_with_area(source: ogr.Layer, vector: ogr.DataSource, layer: ogr.Layer, progress: Progress) -> int:
    transactions = bool(vector.TestCapability(ogr.ODsCTransactions))
    defn = layer.GetLayerDefn()
    count = 0
    source.ResetReading()
    for polygon in source:
        if count % _BATCH == 0:
            if progress.is_canceled():
                raise Canceled()
            if transactions:
                if count:
                    _check(vector.CommitTransaction() == ogr.OGRERR_NONE, "Committing polygons")
                _check(vector.StartTransaction() == ogr.OGRERR_NONE, "Starting a transaction")
        geometry = polygon.GetGeometryRef()
        feature = ogr.Feature(defn)
        feature.SetField("cluster", polygon.GetField("cluster"))
        feature.SetField("area", geometry.GetArea())
        feature.SetGeometry(geometry)
        _check(layer.CreateFeature(feature) == ogr.OGRERR_NONE, "Writing a polygon")
        count += 1
    if transactions and count:
        _check(vector.CommitTransaction() == ogr.OGRERR_NONE, "Committing polygons")
    return count


def polygonize(raster_path: str, vector_path: str, progress: Progress, destination: Optional[str] = None) -> int:
    """Polygonise ``raster_path`` into a new ``vector_path``; returns the number of polygons.

    ``destination`` is the path named in error messages (the final path when ``vector_path`` is staged).
    """
    scratch_dir = os.path.join(os.path.dirname(os.path.abspath(vector_path)), ".polygonize")
    raster = band = scratch = scratch_layer = vector = layer = None
    try:
        raster = gdal.Open(raster_path)
        band = raster.GetRasterBand(1)
        os.makedirs(scratch_dir, exist_ok=True)
        scratch, scratch_layer = _new_layer(os.path.join(scratch_dir, "polygons.gpkg"), "GPKG",
                                            raster.GetSpatialRef())

        def callback(_complete: float, _message: str, _data: object) -> int:
            return 0 if progress.is_canceled() else 1

        scratch.StartTransaction()
        gdal.Polygonize(band, band.GetMaskBand(), scratch_layer, 0, [], callback=callback)
        _check(scratch.CommitTransaction() == ogr.OGRERR_NONE, "Committing polygons")
        vector, layer = _new_layer(vector_path, polygon_driver(vector_path), raster.GetSpatialRef())
        count = _copy_with_area(scratch_layer, vector, layer, progress)
        _check(layer.SyncToDisk() == ogr.OGRERR_NONE, "Writing the polygons to disk")
    except (RuntimeError, OSError) as exc:
        if progress.is_canceled():
            raise Canceled() from exc
        shown = destination or vector_path
        raise write_error(f"the polygons '{shown}'", exc, os.path.dirname(os.path.abspath(shown))) from exc
    finally:
        layer = vector = scratch_layer = scratch = band = raster = None
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return count
