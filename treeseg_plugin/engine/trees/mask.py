"""The tree canopy mask (TREES): the label raster's tree clusters as a Byte GeoTIFF on the same grid.

1 = tree canopy (a pixel of a tree cluster), 0 = not trees, 255 = NoData (label 0). Same tiling and
compression as the labels; a ``.qml`` beside it draws canopy green, the rest transparent grey, NoData
not at all, the layer half transparent over the orthophoto. It is made from the finished label raster, block
by block (the labels are read back, never the input), after the tree rule has decided.
"""

from __future__ import annotations

import os
from typing import Collection

import numpy as np
from osgeo import gdal

from ..progress import Progress, check_canceled
from ..raster.geotiff import GeoTiffWriter, Grid, blocks
from ..raster.styles import add_palette, style_root, style_text, write_style

CANOPY, NOT_CANOPY, MASK_NODATA = 1, 0, 255
_STYLE = ((NOT_CANOPY, "#d9d9d9", "64", "not trees"), (CANOPY, "#1b7837", "255", "tree canopy"))
OPACITY = 0.5
"""The mask layer's opacity: the orthophoto shows through the canopy green."""


def tree_lookup(tree_labels: Collection[int]) -> np.ndarray:
    """Label -> mask value, for labels 0..255."""
    lookup = np.full(256, NOT_CANOPY, np.uint8)
    lookup[0] = MASK_NODATA
    lookup[list(tree_labels)] = CANOPY
    return lookup


def write_tree_mask(labels_path: str, mask_path: str, tree_labels: Collection[int], progress: Progress) -> int:
    """Write the canopy mask of ``labels_path`` to ``mask_path``; returns its canopy pixel count.

    Raises :class:`~..raster.geotiff.WriteError` (an OSError) when GDAL cannot write it."""
    lookup = tree_lookup(tree_labels)
    labels = gdal.Open(labels_path)
    source, canopy = labels.GetRasterBand(1), 0
    try:
        with GeoTiffWriter(mask_path, Grid.of(labels), gdal.GDT_Byte, MASK_NODATA) as mask:
            for block in blocks(labels.RasterXSize, labels.RasterYSize):
                check_canceled(progress)
                values = lookup[source.ReadAsArray(block.left, block.top, block.width, block.height)]
                mask.write(block.top, block.left, values)
                canopy += int((values == CANOPY).sum())
            mask.finish()
    finally:
        source = labels = None
    write_style(os.path.splitext(mask_path)[0] + ".qml", mask_qml())
    return canopy


def mask_qml() -> str:
    """A QGIS paletted style for the mask: canopy green, not-trees light grey and more transparent, the whole
    layer at ``OPACITY``."""
    root, pipe = style_root()
    add_palette(pipe, _STYLE, OPACITY)
    return style_text(root)
