"""The tree canopy mask (TREES): the label raster's tree clusters as a Byte GeoTIFF on the same grid.

1 = tree canopy (a pixel of a tree cluster), 0 = not trees, 255 = NoData (label 0). Same tiling and
compression as the labels; a ``.qml`` beside it draws canopy green, the rest transparent grey, NoData
not at all. It is made from the finished label raster, block by block (the labels are read back, never
the input), after the tree rule has decided.
"""

from __future__ import annotations

import os
from typing import Collection, Iterator, Tuple

import numpy as np
from osgeo import gdal

from ..progress import Progress, check_canceled
from ..raster.label_raster import BLOCK, CREATION_OPTIONS, WriteError
from ..raster.styles import add_palette, style_root, style_text, write_style

CANOPY, NOT_CANOPY, MASK_NODATA = 1, 0, 255
_STYLE = ((NOT_CANOPY, "#d9d9d9", "64", "not trees"), (CANOPY, "#1b7837", "255", "tree canopy"))


def tree_lookup(tree_labels: Collection[int]) -> np.ndarray:
    """Label -> mask value, for labels 0..255."""
    lookup = np.full(256, NOT_CANOPY, np.uint8)
    lookup[0] = MASK_NODATA
    lookup[list(tree_labels)] = CANOPY
    return lookup


def blocks(width: int, height: int, side: int = BLOCK) -> Iterator[Tuple[int, int, int, int]]:
    """(left, top, w, h) of the blocks covering a width x height grid, row by row."""
    for top in range(0, height, side):
        for left in range(0, width, side):
            yield left, top, min(side, width - left), min(side, height - top)


def write_tree_mask(labels_path: str, mask_path: str, tree_labels: Collection[int], progress: Progress) -> int:
    """Write the canopy mask of ``labels_path`` to ``mask_path``; returns its canopy pixel count.

    Raises :class:`WriteError` (an OSError) when GDAL cannot write it."""
    lookup = tree_lookup(tree_labels)
    labels = gdal.Open(labels_path)
    mask = None
    canopy = 0
    try:
        mask = gdal.GetDriverByName("GTiff").Create(mask_path, labels.RasterXSize, labels.RasterYSize, 1,
                                                    gdal.GDT_Byte, options=list(CREATION_OPTIONS))
        mask.SetGeoTransform(labels.GetGeoTransform())
        if labels.GetSpatialRef() is not None:
            mask.SetSpatialRef(labels.GetSpatialRef())
        band = mask.GetRasterBand(1)
        band.SetNoDataValue(MASK_NODATA)
        source = labels.GetRasterBand(1)
        for left, top, w, h in blocks(labels.RasterXSize, labels.RasterYSize):
            check_canceled(progress)
            values = lookup[source.ReadAsArray(left, top, w, h)]
            band.WriteArray(values, xoff=left, yoff=top)
            canopy += int((values == CANOPY).sum())
        mask.FlushCache()
    except RuntimeError as exc:
        raise WriteError(str(exc).strip() or "GDAL reported a write error") from None
    finally:
        band = source = mask = labels = None
    write_style(os.path.splitext(mask_path)[0] + ".qml", mask_qml())
    return canopy


def mask_qml() -> str:
    """A QGIS paletted style for the mask: canopy green, not-trees light grey and half transparent."""
    root, pipe = style_root()
    add_palette(pipe, _STYLE)
    return style_text(root)
