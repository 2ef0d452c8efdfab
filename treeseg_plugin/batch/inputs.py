"""Which rasters a batch run reads, and where each one's labels go.

An input is a raster file, a folder (its rasters, not recursive), a glob pattern, a ``.txt`` list (one
path per line, relative to the list's folder; blank lines and ``#`` comments ignored) or a VRT, which
stands for the rasters it mosaics. Order is kept and repeats are dropped, so a run is reproducible.
Each raster's labels go to ``<output folder>/<name>_labels.tif``; two inputs with the same name in
different folders are refused, since their outputs would overwrite each other.
"""

from __future__ import annotations

import glob
import os
from typing import Dict, List, Sequence

from osgeo import gdal

from ..engine.errors import EngineError

RASTER_EXTENSIONS = (".tif", ".tiff", ".jp2", ".img", ".png", ".jpg", ".jpeg", ".vrt")
LABEL_SUFFIX = "_labels.tif"


def _vrt_sources(path: str) -> List[str]:
    try:
        dataset = gdal.Open(path)
    except RuntimeError:  # GDAL in exceptions mode
        dataset = None
    if dataset is None:
        raise EngineError(f"Cannot open the VRT '{path}'. Check that it is a GDAL VRT file.")
    files = [os.path.abspath(name) for name in (dataset.GetFileList() or [])[1:]]
    if not files:
        raise EngineError(f"The VRT '{path}' lists no raster files. Give the rasters or a folder instead.")
    return files


def _folder_rasters(folder: str) -> List[str]:
    names = sorted(name for name in os.listdir(folder)
                   if name.lower().endswith(RASTER_EXTENSIONS) and not name.endswith(LABEL_SUFFIX))
    return [os.path.join(folder, name) for name in names if os.path.isfile(os.path.join(folder, name))]


def _list_file(path: str) -> List[str]:
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    return [os.path.join(base, line) for line in lines if line and not line.startswith("#")]


def _expand(item: str) -> List[str]:
    if any(char in item for char in "*?["):
        matches = sorted(glob.glob(item))
        if not matches:
            raise EngineError(f"No file matches '{item}'. Check the pattern (quote it so the shell does not "
                              "expand it).")
        return [path for match in matches for path in _expand(match)]
    if os.path.isdir(item):
        rasters = _folder_rasters(item)
        if not rasters:
            raise EngineError(f"The folder '{item}' holds no rasters ({', '.join(RASTER_EXTENSIONS)}).")
        return rasters
    if not os.path.exists(item):
        raise EngineError(f"Input '{item}' does not exist. Give raster files, folders, glob patterns, "
                          ".txt lists or VRTs.")
    if item.lower().endswith(".txt"):
        return [path for line in _list_file(item) for path in _expand(line)]
    if item.lower().endswith(".vrt"):
        return _vrt_sources(item)
    return [item]


def expand_inputs(items: Sequence[str]) -> List[str]:
    """The rasters named by ``items``, as absolute paths, in order, without repeats."""
    rasters = [os.path.abspath(path) for item in items for path in _expand(item)]
    if not rasters:
        raise EngineError("No input rasters given.")
    return list(dict.fromkeys(rasters))


def label_paths(rasters: Sequence[str], output_folder: str) -> Dict[str, str]:
    """Each raster's label raster in ``output_folder``; refuses two inputs that would share one."""
    outputs: Dict[str, str] = {}
    owners: Dict[str, str] = {}
    for raster in rasters:
        output = os.path.join(os.path.abspath(output_folder),
                              os.path.splitext(os.path.basename(raster))[0] + LABEL_SUFFIX)
        if output in owners:
            raise EngineError(f"'{owners[output]}' and '{raster}' have the same name, so their labels would both "
                              f"go to '{output}'. Rename one, or run them into different output folders.")
        owners[output] = raster
        outputs[raster] = output
    return outputs
