"""The one GeoTIFF writer's contract (engine/raster/geotiff.py), the block iterator, and the one
polygonise-then-copy (engine/raster/polygons.py), with real GDAL on tmp_path."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from treeseg.treeseg_plugin.engine import Progress
from treeseg.treeseg_plugin.engine.errors import write_error
from treeseg.treeseg_plugin.engine.raster.geotiff import Classes, GeoTiffWriter, Grid, WriteError, blocks
from treeseg.treeseg_plugin.engine.raster.polygons import Layout, polygonize_then_copy, scratch_folder

REPO = Path(__file__).resolve().parent.parent
GT = (500000.0, 0.5, 0.0, 3300000.0, 0.0, -0.5)


def _grid(width: int = 300, height: int = 200) -> Grid:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32617)
    return Grid(width, height, GT, srs)


@contextlib.contextmanager
def _full_disk(nbytes: int = 4096):
    """Every file this process writes is limited to ``nbytes`` (EFBIG, as on a full disk), then restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_blocks_cover_the_grid_once_row_by_row():
    seen = np.zeros((300, 520), int)
    order = []
    for block in blocks(520, 300, 256):
        seen[block.top:block.top + block.height, block.left:block.left + block.width] += 1
        order.append((block.top, block.left, block.ends_row))
    assert (seen == 1).all()
    assert order == [(0, 0, False), (0, 256, False), (0, 512, True), (256, 0, False), (256, 256, False),
                     (256, 512, True)]


def test_the_file_has_the_grid_type_nodata_and_colour_table_given(tmp_path):
    path = str(tmp_path / "classes.tif")
    classes = Classes({0: (0, 0, 0, 0), 1: (10, 20, 30, 255), 2: (200, 100, 0, 255)}, ["", "one", "two"])
    values = (np.arange(300 * 200).reshape(200, 300) % 3).astype(np.int64)  # cast to the file's type
    with GeoTiffWriter(path, _grid(), gdal.GDT_Byte, 0, classes=classes) as writer:
        for block in blocks(300, 200):
            writer.write(block.top, block.left, values[block.top:block.top + block.height,
                                                       block.left:block.left + block.width])
        writer.set_classes(Classes({**classes.colors, 2: (0, 0, 255, 255)}, ["", "one", "trees"]))
        writer.finish()
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    assert (ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform()) == (300, 200, GT)
    assert ds.GetSpatialRef().GetAuthorityCode(None) == "32617"
    assert (band.DataType, band.GetNoDataValue()) == (gdal.GDT_Byte, 0)
    assert band.GetColorInterpretation() == gdal.GCI_PaletteIndex
    table = band.GetColorTable()
    assert [table.GetColorEntry(i) for i in range(3)] == [(0, 0, 0, 0), (10, 20, 30, 255), (0, 0, 255, 255)]
    assert band.GetCategoryNames() == ["", "one", "trees"]
    assert band.GetBlockSize() == [256, 256]
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    np.testing.assert_array_equal(band.ReadAsArray(), values)


def test_a_float_file_with_predictor_and_description(tmp_path):
    path = str(tmp_path / "heights.tif")
    values = np.linspace(0, 30, 64 * 48).reshape(48, 64)  # float64, written as float32
    with GeoTiffWriter(path, _grid(64, 48), gdal.GDT_Float32, -9999.0, predictor=3, description="m") as writer:
        writer.write(0, 0, values)
        writer.finish()
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    assert (band.DataType, band.GetNoDataValue(), band.GetDescription()) == (gdal.GDT_Float32, -9999.0, "m")
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("PREDICTOR") == "3"
    np.testing.assert_array_equal(band.ReadAsArray(), values.astype(np.float32))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics checked on Linux")
def test_a_full_disk_gives_one_write_error_and_leaves_no_file(tmp_path):
    path = tmp_path / "full.tif"
    noise = np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8)  # does not compress
    with pytest.raises(WriteError) as raised, _full_disk(), \
            GeoTiffWriter(str(path), _grid(512, 512), gdal.GDT_Byte, 0) as writer:
        writer.write(0, 0, noise)
        writer.finish()
    assert isinstance(raised.value, OSError) and "write error" in str(raised.value).lower()  # GDAL's reason
    assert list(tmp_path.iterdir()) == []
    message = str(write_error("the label raster 'x.tif'", raised.value, str(tmp_path)))
    assert message.startswith("Cannot write the label raster 'x.tif': ") and "free disk space" in message.lower()


_READ_ONLY = """
import os, sys
sys.path.insert(0, {plugins!r})
from osgeo import gdal, osr
from treeseg.treeseg_plugin.engine.errors import write_error
from treeseg.treeseg_plugin.engine.raster.geotiff import GeoTiffWriter, Grid, WriteError
root = os.geteuid() == 0
if root:
    os.seteuid(65534)  # root writes anywhere: write as nobody, for whom the folder is read-only
try:
    with GeoTiffWriter({path!r}, Grid(8, 8, (0, 1, 0, 0, 0, -1), None), gdal.GDT_Byte, 0) as writer:
        writer.finish()
except WriteError as exc:
    if root:
        os.seteuid(0)  # the run sees its own output folder
    print(write_error("the tree canopy mask 'm.tif'", exc, {folder!r}))
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_read_only_folder_gives_one_write_error_and_leaves_no_file(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    plugins = str(Path(sys.modules["treeseg"].__file__).parent.parent)
    code = _READ_ONLY.format(plugins=plugins, path=str(folder / "m.tif"), folder=str(folder))
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Cannot write the tree canopy mask 'm.tif': ")
    assert "Permission denied" in done.stdout and "You cannot write in that folder" in done.stdout
    assert list(folder.iterdir()) == []


def test_an_exception_while_writing_deletes_the_unfinished_file(tmp_path):
    path = tmp_path / "half.tif"
    with pytest.raises(ValueError, match="a bug"), GeoTiffWriter(str(path), _grid(), gdal.GDT_UInt32, 0) as writer:
        writer.write(0, 0, np.ones((10, 10), np.uint32))
        raise ValueError("a bug")
    assert list(tmp_path.iterdir()) == []


def _open_files_under(folder: Path) -> list:
    fds = Path("/proc/self/fd")
    return [link for link in (os.path.realpath(fds / fd) for fd in os.listdir(fds)) if link.startswith(str(folder))]


def _ids_raster(path: Path) -> None:
    with GeoTiffWriter(str(path), _grid(64, 64), gdal.GDT_UInt32, 0) as writer:
        ids = np.zeros((64, 64), np.uint32)
        ids[4:20, 4:20], ids[30:60, 10:40] = 1, 2
        writer.write(0, 0, ids)
        writer.finish()


def test_polygonize_then_copy_writes_the_copy_and_removes_its_scratch(tmp_path):
    raster = tmp_path / "ids.tif"
    _ids_raster(raster)
    layout = Layout(ogr.wkbPolygon, (("id", ogr.OFTInteger),), "out")

    def copy(_parts: ogr.DataSource, source: ogr.Layer, _vector: ogr.DataSource, layer: ogr.Layer) -> int:
        for polygon in source:
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("id", polygon.GetField("value"))
            feature.SetGeometry(polygon.GetGeometryRef())
            layer.CreateFeature(feature)
        return source.GetFeatureCount()

    out = tmp_path / "out.geojson"
    with scratch_folder(str(out), ".scratch") as scratch:
        count = polygonize_then_copy(str(raster), scratch, "value", str(out), layout, copy, Progress())
    assert count == 2 and not (tmp_path / ".scratch").exists()
    vector = ogr.Open(str(out))
    features = sorted((f.GetField("id"), f.GetGeometryRef().GetArea()) for f in vector.GetLayer(0))
    vector = None
    assert features == [(1, 64.0), (2, 225.0)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="open files listed in /proc")
def test_polygonize_then_copy_releases_every_dataset_on_an_error(tmp_path):
    raster = tmp_path / "ids.tif"
    _ids_raster(raster)
    scratch_dir = tmp_path / ".scratch"
    still_open = []

    def failing_copy(_parts: ogr.DataSource, _source: ogr.Layer, _vector: ogr.DataSource, _layer: ogr.Layer) -> int:
        raise RuntimeError("copy failed")

    with pytest.raises(RuntimeError, match="copy failed"):
        try:
            with scratch_folder(str(tmp_path / "out.gpkg"), ".scratch") as scratch:
                polygonize_then_copy(str(raster), scratch, "value", str(tmp_path / "out.gpkg"),
                                     Layout(ogr.wkbPolygon, (), "out"), failing_copy, Progress())
        except RuntimeError:
            still_open = _open_files_under(tmp_path)  # while the traceback still holds the frames
            raise
    assert still_open == [] and not scratch_dir.exists()
