"""The analyst's examples for Classify from Examples: read with OGR, reprojected, rasterised onto the patch grid.

Decisions:

* Any vector file OGR opens (GeoPackage, Shapefile, GeoJSON, ...), any CRS: the geometries are transformed to
  the raster's CRS (traditional x/y axis order on both sides). Without a CRS on either side they are taken as
  the raster's.
* Polygons and points (and their multi forms); each feature is one example, the unit of cross-validation.
  Lines are refused: they name no area.
* The class field is text or integer; a NULL or blank value is an error naming the features. Class names are
  the values as text, ordered numerically for an integer field, alphabetically otherwise; class ``i + 1`` is
  ``names[i]``.
* On the patch grid (cell ``(r, c)``: the pixels nearer to patch centre ``(r*s + 8, c*s + 8)`` than to any
  other) a polygon takes the cells whose centre it contains; a polygon that contains no cell centre takes the
  cell under a point on its surface, and a point the cell under it. Where examples overlap, the later feature
  wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from ..errors import EngineError
from ..jobs.classify import MAX_CLASSES
from .georef import GeoTransform

_POLYGONS = (ogr.wkbPolygon, ogr.wkbMultiPolygon, ogr.wkbCurvePolygon, ogr.wkbMultiSurface)
_POINTS = (ogr.wkbPoint, ogr.wkbMultiPoint)


@dataclass(frozen=True)
class Examples:
    """Examples on the patch grid: ``cells`` [rows, cols] holds the example (1-based, 0: none) each cell takes;
    example ``e`` is of class ``classes[e - 1]`` (0-based into ``names``)."""

    cells: np.ndarray
    classes: np.ndarray
    names: Tuple[str, ...]

    def per_class(self) -> Dict[str, int]:
        """Examples that reach at least one cell, per class name."""
        present = np.unique(self.cells[self.cells > 0])
        counts = np.bincount(self.classes[present - 1], minlength=len(self.names))
        return {name: int(counts[i]) for i, name in enumerate(self.names)}

    def masked(self, valid: np.ndarray) -> Examples:
        """These examples without the cells where ``valid`` [rows, cols] is False."""
        return Examples(np.where(valid, self.cells, 0), self.classes, self.names)

    def compact(self) -> Tuple[Examples, List[str]]:
        """These examples without the classes no example cell holds (renumbered), and those classes' names."""
        kept = [i for i, count in enumerate(self.per_class().values()) if count]
        renumber = np.full(len(self.names), -1, dtype=np.int64)
        renumber[kept] = np.arange(len(kept))
        dropped = [name for i, name in enumerate(self.names) if i not in kept]
        return Examples(self.cells, renumber[self.classes], tuple(self.names[i] for i in kept)), dropped


def _layer(data: Any, path: str, name: Optional[str]) -> Any:
    layer = data.GetLayerByName(name) if name else data.GetLayer(0)
    if layer is None:
        names = [data.GetLayer(i).GetName() for i in range(data.GetLayerCount())]
        raise EngineError(f"The examples file '{path}' has no layer {name!r}: its layers are {names}. Choose one "
                          "of them.")
    return layer


def _class_value(feature: Any, index: int, numeric: bool) -> Optional[str]:
    if not feature.IsFieldSetAndNotNull(index):
        return None
    text = str(feature.GetFieldAsInteger64(index)) if numeric else feature.GetFieldAsString(index).strip()
    return text or None


def _transform(layer: Any, srs: Optional[osr.SpatialReference]) -> Optional[osr.CoordinateTransformation]:
    source = layer.GetSpatialRef()
    if source is None or srs is None or source.IsSame(srs):
        return None
    source, target = source.Clone(), srs.Clone()
    for ref in (source, target):
        ref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(source, target)


def read_examples(path: str, layer_name: Optional[str], field: str, srs: Optional[osr.SpatialReference]) \
        -> Tuple[List[ogr.Geometry], List[str], bool]:
    """The examples' geometries in ``srs`` and their class names, in feature order, and whether the class field
    is an integer field; EngineError when the file, layer, field, a geometry or a class value is not usable."""
    data = ogr.Open(path)
    if data is None:
        raise EngineError(f"Cannot open the examples '{path}' as a vector file. Choose a GeoPackage, Shapefile or "
                          "GeoJSON file of polygons or points.")
    layer = _layer(data, path, layer_name)
    definition = layer.GetLayerDefn()
    index = definition.GetFieldIndex(field)
    if index < 0:
        fields = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
        raise EngineError(f"The examples have no field '{field}': their fields are {fields}. Choose the field that "
                          "names each example's class.")
    numeric = definition.GetFieldDefn(index).GetType() in (ogr.OFTInteger, ogr.OFTInteger64)
    transform = _transform(layer, srs)
    geometries, values, empty = [], [], []
    for feature in layer:
        value = _class_value(feature, index, numeric)
        geometry = feature.GetGeometryRef()
        if value is None:
            empty.append(feature.GetFID())
            continue
        if geometry is None or geometry.IsEmpty():
            continue
        kind = ogr.GT_Flatten(geometry.GetGeometryType())
        if kind not in _POLYGONS + _POINTS:
            raise EngineError(f"Example {feature.GetFID()} is a {geometry.GetGeometryName().lower()}: examples must "
                              "be polygons or points. Draw the examples as polygons (or points).")
        geometry = geometry.GetLinearGeometry() if kind in _POLYGONS else geometry.Clone()
        if transform is not None:
            geometry.Transform(transform)
        geometries.append(geometry)
        values.append(value)
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise EngineError(f"{len(empty)} example(s) have no class in field '{field}' (feature ids {shown}). Fill in "
                          "their class, or delete them.")
    return geometries, values, numeric


def class_order(values: Sequence[str], numeric: bool) -> Tuple[str, ...]:
    """The distinct class names, numerically ordered when ``numeric``, else alphabetically."""
    distinct = set(values)
    return tuple(sorted(distinct, key=int) if numeric else sorted(distinct))


def rasterise(geometries: Sequence[ogr.Geometry], patch_gt: GeoTransform, rows: int, cols: int,
              srs: Optional[osr.SpatialReference]) -> np.ndarray:
    """The example (1-based) each patch cell takes (0: none), on the grid ``patch_gt`` of ``rows`` x ``cols``."""
    target = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Int32)
    target.SetGeoTransform(patch_gt)
    memory = ogr.GetDriverByName("Memory").CreateDataSource("examples")
    layer = memory.CreateLayer("examples", srs=srs, geom_type=ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("example", ogr.OFTInteger))
    for number, geometry in enumerate(geometries, start=1):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("example", number)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    gdal.RasterizeLayer(target, [1], layer, options=["ATTRIBUTE=example"])
    cells = target.GetRasterBand(1).ReadAsArray().astype(np.int32)
    inverse = gdal.InvGeoTransform(patch_gt)
    present = set(np.unique(cells).tolist())
    for number, geometry in enumerate(geometries, start=1):
        if number in present:
            continue
        point = geometry.PointOnSurface() if geometry.GetDimension() == 2 else geometry.Centroid()
        col, row = (int(np.floor(v)) for v in gdal.ApplyGeoTransform(inverse, point.GetX(), point.GetY()))
        if 0 <= row < rows and 0 <= col < cols and cells[row, col] == 0:
            cells[row, col] = number
    return cells


def patch_geotransform(gt: GeoTransform, stride: int, half_patch: int) -> GeoTransform:
    """The geotransform of the patch-cell grid of a window whose geotransform is ``gt``: cell ``(r, c)`` is
    ``stride`` pixels wide, centred on pixel ``(r*stride + half_patch, c*stride + half_patch)``."""
    offset = half_patch - stride / 2
    return (gt[0] + offset * (gt[1] + gt[2]), stride * gt[1], stride * gt[2],
            gt[3] + offset * (gt[4] + gt[5]), stride * gt[4], stride * gt[5])


def examples_on_grid(path: str, layer_name: Optional[str], field: str, srs: Optional[osr.SpatialReference],
                     patch_gt: GeoTransform, rows: int, cols: int) -> Examples:
    """The examples at ``path`` on the patch grid; EngineError for no example inside the raster or more than
    :data:`MAX_CLASSES` classes."""
    geometries, values, numeric = read_examples(path, layer_name, field, srs)
    names = class_order(values, numeric)
    if len(names) > MAX_CLASSES:
        raise EngineError(f"The examples name {len(names)} classes in field '{field}'; at most {MAX_CLASSES} are "
                          "supported. Merge classes, or choose another class field.")
    cells = rasterise(geometries, patch_gt, rows, cols, srs)
    if not cells.any():
        raise EngineError(f"None of the {len(geometries)} examples lies inside the raster (or the chosen extent). "
                          "Draw the examples on the raster, or check the layer's CRS.")
    index = {name: i for i, name in enumerate(names)}
    return Examples(cells, np.array([index[v] for v in values], dtype=np.int64), names)
