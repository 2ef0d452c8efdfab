"""Polygons from a raster, and the optional vector output of the labels.

:func:`polygonize_then_copy` is the one way TreeSeg turns a raster into polygons: GDAL Polygonize
(4-connected, value 0 left out) writes into a scratch GeoPackage first (some drivers, e.g. GeoJSON, cannot
read back or update what they write), then a caller's copy function writes the output features (driver from
the extension: .gpkg, .shp, .geojson), streaming, so memory stays flat. The scratch folder
(:func:`scratch_folder`) lives next to the output and is always removed, after every dataset is released
(also on an error: the locals of the frames in its traceback, the copy function's included, are cleared,
as they would hold the files open). Its users: :func:`polygonize` (fields
``cluster``, the integer label, and ``area``, the polygon area in map units²) and the crowns
(engine/trees/crowns.py); with class names, Classify from Examples' polygons: ``class_id``, ``class`` (the
name) and ``area``. OGR's global exception mode is left as QGIS set it: OGR results are checked explicitly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import traceback
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, Tuple

from osgeo import gdal, ogr

from ..errors import Canceled, write_error
from ..jobs.segmentation import polygon_driver
from ..progress import Progress, check_canceled

_BATCH = 10000
Copy = Callable[[ogr.DataSource, ogr.Layer, ogr.DataSource, ogr.Layer], int]
"""(scratch data source, its polygon layer, output data source, output layer) -> features written."""


class Layout(NamedTuple):
    """An output layer: geometry type, fields (name, OGR type), and its name when the file name gives none."""

    geometry: int
    fields: Sequence[Tuple[str, int]]
    default_name: str


_CLUSTERS = Layout(ogr.wkbPolygon, (("cluster", ogr.OFTInteger), ("area", ogr.OFTReal)), "clusters")
_CLASSES = Layout(ogr.wkbPolygon, (("class_id", ogr.OFTInteger), ("class", ogr.OFTString), ("area", ogr.OFTReal)),
                  "classes")


def _check(ok: object, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} failed: {gdal.GetLastErrorMsg() or 'unknown OGR error'}")


def _new_layer(path: str, srs: object, layout: Layout) -> Tuple[ogr.DataSource, ogr.Layer]:
    vector = ogr.GetDriverByName(polygon_driver(path)).CreateDataSource(path)
    _check(vector is not None, f"Creating {path}")
    name = os.path.splitext(os.path.basename(path))[0] or layout.default_name
    layer = vector.CreateLayer(name, srs=srs, geom_type=layout.geometry)
    _check(layer is not None, f"Creating layer {name}")
    for field, kind in layout.fields:
        _check(layer.CreateField(ogr.FieldDefn(field, kind)) == ogr.OGRERR_NONE, f"Creating field {field}")
    return vector, layer


@contextlib.contextmanager
def scratch_folder(beside: str, name: str) -> Iterator[str]:
    """A scratch folder ``name`` in the folder of file ``beside``, removed with all it holds on exit."""
    folder = os.path.join(os.path.dirname(os.path.abspath(beside)), name)
    os.makedirs(folder, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def polygonize_then_copy(raster_path: str, scratch: str, value_field: str, vector_path: str, layout: Layout,
                         copy: Copy, progress: Progress) -> int:
    """Polygonise band 1 of ``raster_path`` into ``scratch``/parts.gpkg (layer ``parts``, the pixel value in
    integer field ``value_field``), then ``copy`` its polygons into a new ``vector_path`` laid out as
    ``layout``; returns what ``copy`` returns. Raises RuntimeError/OSError from GDAL/OGR, Canceled."""
    raster = band = parts = parts_layer = vector = layer = None
    try:
        raster = gdal.Open(raster_path)
        band = raster.GetRasterBand(1)
        srs = raster.GetSpatialRef()
        parts, parts_layer = _new_layer(os.path.join(scratch, "parts.gpkg"), srs,
                                        Layout(ogr.wkbPolygon, ((value_field, ogr.OFTInteger),), "parts"))

        def callback(_complete: float, _message: str, _data: object) -> int:
            return 0 if progress.is_canceled() else 1

        parts.StartTransaction()
        try:
            gdal.Polygonize(band, band.GetMaskBand(), parts_layer, 0, [], callback=callback)
        except RuntimeError:  # with GDAL's exceptions on, a cancel stops Polygonize as "User terminated"
            check_canceled(progress)
            raise
        _check(parts.CommitTransaction() == ogr.OGRERR_NONE, "Committing polygons")
        check_canceled(progress)
        vector, layer = _new_layer(vector_path, srs, layout)
        count = copy(parts, parts_layer, vector, layer)
        _check(layer.SyncToDisk() == ogr.OGRERR_NONE, "Writing the polygons to disk")
        return count
    except BaseException as exc:
        traceback.clear_frames(exc.__traceback__)  # the frames of ``copy`` & co. would hold the files open
        raise
    finally:
        layer = vector = parts_layer = parts = band = raster = None  # closes the files before the scratch goes


def _copy_with_area(source: ogr.Layer, vector: ogr.DataSource, layer: ogr.Layer, progress: Progress,
                    value_field: str, names: Optional[Sequence[str]]) -> int:
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
        value = polygon.GetField(value_field)
        feature.SetField(value_field, value)
        if names is not None:
            feature.SetField("class", names[value])
        feature.SetField("area", geometry.GetArea())
        feature.SetGeometry(geometry)
        _check(layer.CreateFeature(feature) == ogr.OGRERR_NONE, "Writing a polygon")
        count += 1
    if transactions and count:
        _check(vector.CommitTransaction() == ogr.OGRERR_NONE, "Committing polygons")
    return count


def polygonize(raster_path: str, vector_path: str, progress: Progress, destination: Optional[str] = None,
               names: Optional[Sequence[str]] = None) -> int:
    """The label raster ``raster_path`` as polygons in a new ``vector_path``; returns the number of polygons.

    ``destination`` is the path named in error messages (the final path when ``vector_path`` is staged). With
    ``names`` (index = value, 0 unused) the raster holds classes: fields ``class_id``, ``class`` (its name) and
    ``area``.
    """
    value_field, layout = ("cluster", _CLUSTERS) if names is None else ("class_id", _CLASSES)

    def copy(_parts: ogr.DataSource, source: ogr.Layer, vector: ogr.DataSource, layer: ogr.Layer) -> int:
        return _copy_with_area(source, vector, layer, progress, value_field, names)

    try:
        with scratch_folder(vector_path, ".polygonize") as scratch:
            return polygonize_then_copy(raster_path, scratch, value_field, vector_path, layout, copy, progress)
    except (RuntimeError, OSError) as exc:
        if progress.is_canceled():
            raise Canceled() from exc
        shown = destination or vector_path
        raise write_error(f"the polygons '{shown}'", exc, os.path.dirname(os.path.abspath(shown))) from exc
