"""Faults in the engine (issue #5): damaged inputs, full disks, vanished folders, exceptions and out-of-memory
in every stage, huge rasters. Whatever happens: one EngineError naming the problem and the fix, no
``.treeseg-*`` temporary folder left behind, and an existing output left byte-identical.

Pure engine (no QGIS); tiny random-weight checkpoints, small rasters. A full disk is simulated without
privileges with RLIMIT_FSIZE (writes past the limit fail with EFBIG, as on a full or size-limited file
system), switched on only when the stage under test starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from data_factory import make_raster, trap_vrt
from engine_runs import segmenter
from osgeo import gdal, ogr, osr
from recording_progress import Log
from treeseg.treeseg_plugin.engine import Canceled, EngineError
from treeseg.treeseg_plugin.engine.encode import runtime as engine_runtime
from treeseg.treeseg_plugin.engine.raster.input import input_problem
from treeseg.treeseg_plugin.engine.raster.staging import Staging
from treeseg.treeseg_plugin.engine.runs.segmentation import STAGES

BIG = 20000  # side of the "huge" raster, in pixels


class RaiseIn(Log):
    """Raises ``error`` in stage ``target``: at its first progress report (mid-stage: e.g. after the first
    stretch strip, tile batch or label block row), or as it starts for the stages that report none."""

    def __init__(self, target: str, error: BaseException) -> None:
        super().__init__()
        self.target, self.error = target, error

    def stage(self, name: str) -> None:
        super().stage(name)
        if name == self.target and name in ("Writing polygons", "Writing statistics", "Writing tree mask",
                                            "Writing crowns"):
            raise self.error

    def progress(self, percent: float) -> None:
        if self.stages and self.stages[-1] == self.target:
            raise self.error


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Input rasters live apart from the destinations, so a destination's listing shows only outputs."""
    return tmp_path_factory.mktemp("inputs")


_run = segmenter(tile_size=64, overlap=16, k=2)


def _snapshot(folder: Path) -> Dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(*folders: Path) -> List[str]:
    return [str(p) for folder in folders if folder.exists() for p in folder.rglob(".treeseg-*")]


PREVIOUS = {"labels.tif": b"previous labels", "labels.qml": b"previous style", "stats.json": b"{}"}
"""The previous result in the ``dest`` fixture's folder (conftest.py), which a failed run must leave byte-identical."""


# -- damaged and unreadable inputs ------------------------------------------------------------------


def _corrupt_tiles(path: Path) -> Path:
    """Overwrite the middle of a DEFLATE GeoTIFF's tile data: the header is intact, the tiles are not."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes(range(256)) * 15 + bytes(160)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", ["truncated", "corrupt tiles"])
def test_a_damaged_geotiff_is_a_read_error_naming_the_fix(tmp_path, tiny, inputs, dest, damage):
    raster = make_raster(inputs / f"{damage}.tif", 256, 256, kind="noise", tiled=True,
                         creation_options=["COMPRESS=DEFLATE", "BLOCKXSIZE=64", "BLOCKYSIZE=64"])
    if damage == "truncated":
        raster.write_bytes(raster.read_bytes()[:len(raster.read_bytes()) // 2])  # an interrupted copy
    else:
        _corrupt_tiles(raster)
    assert gdal.Open(str(raster)).RasterXSize == 256  # the header still opens
    with pytest.raises(EngineError) as raised:
        _run(raster, dest / "labels.tif", tiny)
    message = str(raised.value)
    assert message.startswith("Cannot read band") and str(raster) in message
    assert "damaged or incomplete" in message and "gdalinfo -checksum" in message
    assert _snapshot(dest) == PREVIOUS and not _leftovers(dest)


def test_unreadable_inputs_are_refused_before_the_model_loads(tmp_path, tiny, inputs, monkeypatch):
    monkeypatch.setattr(engine_runtime, "load_backbone", lambda *a, **k: pytest.fail("the model must not load"))
    text = inputs / "notes.txt"
    text.write_text("not a raster\n")
    header = inputs / "header-only.tif"
    header.write_bytes(make_raster(inputs / "ok.tif", 32, 32).read_bytes()[:16] + b"\x00\xff" * 3000)
    gpkg = inputs / "parcels.gpkg"
    shp = inputs / "parcels.shp"
    for path, driver in ((gpkg, "GPKG"), (shp, "ESRI Shapefile")):
        source = ogr.GetDriverByName(driver).CreateDataSource(str(path))
        source.CreateLayer("parcels", srs=osr.SpatialReference(), geom_type=ogr.wkbPolygon)
        source = None
    cases = [
        (inputs / "missing.tif", "the file does not exist. Check the path"),
        (text, "GDAL does not recognise it or cannot read it"),
        (header, "GDAL does not recognise it or cannot read it"),
        (gpkg, "it is a vector dataset (GPKG), not an image. Choose the orthophoto raster"),
        (shp, "it is a vector dataset (ESRI Shapefile), not an image"),
        (inputs, "it is a folder. Choose the raster file itself"),
    ]
    for path, fragment in cases:
        out = tmp_path / "new" / "labels.tif"
        with pytest.raises(EngineError) as raised:
            _run(path, out, tiny)
        assert str(raised.value).startswith(f"Cannot open '{path}' as a raster:"), raised.value
        assert fragment in str(raised.value)
        assert input_problem(str(path)) == str(raised.value)
        assert not (tmp_path / "new").exists()
    assert input_problem(str(inputs / "ok.tif")) == ""


def test_a_container_of_subdatasets_names_one(tmp_path, inputs):
    gpkg = inputs / "two-rasters.gpkg"
    for table in ("north", "south"):
        gdal.Translate(str(gpkg), str(make_raster(inputs / f"{table}.tif", 32, 32)), format="GPKG",
                       creationOptions=[f"RASTER_TABLE={table}", "APPEND_SUBDATASET=YES"])
    message = input_problem(str(gpkg))
    assert "holds 2 rasters (subdatasets). Choose one of them as the input, e.g. 'GPKG:" in message


def test_an_empty_or_too_small_input_fails_before_the_model_loads(tmp_path, tiny, inputs, monkeypatch):
    monkeypatch.setattr(engine_runtime, "load_backbone", lambda *a, **k: pytest.fail("the model must not load"))
    empty = make_raster(inputs / "empty16.tif", 64, 64, dtype="UInt16", nodata=0,
                        invalid=np.ones((64, 64), bool))
    with pytest.raises(EngineError, match=r"No valid pixels in the raster \(all NoData or masked\): there is "
                                          "nothing to segment. Check the NoData value"):
        _run(empty, tmp_path / "new" / "labels.tif", tiny)
    small = make_raster(inputs / "small.tif", 40, 40)
    with pytest.raises(EngineError, match=r"The raster is too small: 40 x 40 px holds 9 patches at stride 16, "
                                          r"fewer than the 10 clusters asked for\. Use a larger extent, a smaller"):
        _run(small, tmp_path / "new" / "labels.tif", tiny, k=10)
    with pytest.raises(EngineError, match="The extent is too small: 10 x 8 px is a single 16 x 16 px patch"):
        _run(small, tmp_path / "new" / "labels.tif", tiny, extent=(500000.0, 3299999.2, 500001.0, 3300000.0))
    assert not (tmp_path / "new").exists()


def test_fixed_k_ignores_the_order_of_k_min_and_k_max(tmp_path, tiny, inputs):
    raster = make_raster(inputs / "fixed-k.tif", 64, 64)
    assert _run(raster, tmp_path / "labels.tif", tiny, k=3, k_min=8, k_max=4).chosen_k == 3


def test_no_crs_works_with_a_warning(tmp_path, tiny, inputs):
    raster = make_raster(inputs / "no-crs.tif", 64, 64, epsg=None)
    log = Log()
    result = _run(raster, tmp_path / "labels.tif", tiny, log, stats_path=str(tmp_path / "stats.json"))
    assert any(w.startswith("The raster has no CRS") and "assign the CRS" in w for w in log.warnings)
    assert result.stats["input"]["crs"] is None and "no CRS" in result.stats["area_note"]
    assert all(a["hectares"] is None for a in result.cluster_area.values())
    assert gdal.Open(result.output_path).GetSpatialRef() is None


# -- a huge raster is streamed: only the extent (and its tile margins) is ever read ------------------------


def test_a_huge_raster_with_an_extent_reads_only_that_part(tmp_path, tiny, inputs):
    x0 = y0 = 12000
    vrt = trap_vrt(inputs, x0, y0, 320, BIG)
    # pixels x0+96 .. x0+224: a 128 px square, 96 px inside the real part on every side
    extent = (500000 + (x0 + 96) * 0.1, 3300000 - (y0 + 224) * 0.1, 500000 + (x0 + 224) * 0.1,
              3300000 - (y0 + 96) * 0.1)
    log = Log()
    result = _run(vrt, tmp_path / "labels.tif", tiny, log, extent=extent, stats_path=str(tmp_path / "s.json"))
    ds = gdal.Open(result.output_path)
    assert (ds.RasterXSize, ds.RasterYSize) == (128, 128)
    assert ds.GetGeoTransform() == pytest.approx((500000 + (x0 + 96) * 0.1, 0.1, 0, 3300000 - (y0 + 96) * 0.1, 0,
                                                  -0.1))
    ds = None
    assert set(result.stats["input"]["stretch"]) == {"1", "2", "3"}  # sampled inside the extent only
    assert "(16384 sampled pixels)" in log.text
    # without the extent the stretch sample touches the trap: the read error names the file and the fix
    with pytest.raises(EngineError, match=r"Cannot read band 1 of .*huge\.vrt.*never-read\.tif.*damaged or incomplete"):
        _run(vrt, tmp_path / "whole" / "labels.tif", tiny)
    assert not (tmp_path / "whole").exists()


# -- write failures: a full disk, a vanished folder -----------------------------------------------------


@contextlib.contextmanager
def _file_size_limit():
    """Yields a function that limits the size of every file this process writes from then on (EFBIG, as on
    a full disk); the limit and the SIGXFSZ disposition are restored on exit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(nbytes: int = 2048) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))

    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics checked on Linux")
@pytest.mark.parametrize(("stage", "what"), [
    ("Encoding tiles", "Cannot create the feature file"),  # the feature file is reserved as encoding starts
    ("Writing labels", "Cannot write the label raster"),
    ("Writing polygons", "Cannot write the polygons"),
    ("Writing statistics", "Cannot write the statistics file"),
])
def test_a_full_disk_in_any_writing_stage_leaves_the_old_result(tiny, inputs, dest, stage, what):
    raster = make_raster(inputs / "full-disk.tif", 160, 128, kind="noise")
    log = Log()
    with _file_size_limit() as limit:
        log.on_stage[stage] = limit
        with pytest.raises(EngineError) as raised:
            _run(raster, dest / "labels.tif", tiny, log, k=4, stats_path=str(dest / "stats.json"),
                 polygons_path=str(dest / "polygons.gpkg"))
    message = str(raised.value)
    assert message.startswith(what), message
    assert "free disk space" in message.lower()
    assert _snapshot(dest) == PREVIOUS and not _leftovers(dest)


def test_a_vanished_output_folder_is_named(tmp_path, tiny, inputs):
    raster = make_raster(inputs / "vanish.tif", 96, 96)
    for stage in ("Writing labels", "Writing statistics"):
        out = tmp_path / stage.replace(" ", "-") / "deeper"
        log = Log()
        log.on_stage[stage] = lambda out=out: __import__("shutil").rmtree(out)  # the share disconnects
        with pytest.raises(EngineError) as raised:
            _run(raster, out / "labels.tif", tiny, log, stats_path=str(out / "stats.json"))
        message = str(raised.value)
        assert message.startswith("Cannot write "), message
        assert f"The output folder '{out}' is gone" in message and "Make it available again" in message
        assert not out.exists()  # not re-created by the clean-up


# -- exceptions and out-of-memory in every stage ---------------------------------------------------------


@pytest.fixture(scope="module")
def uint16_raster(inputs) -> Path:
    return make_raster(inputs / "uint16.tif", 160, 128, dtype="UInt16", kind="blobs")


@pytest.mark.parametrize("stage", STAGES)
def test_an_exception_in_any_stage_leaves_no_temporary_files(tiny, uint16_raster, dest, stage):
    boom = RuntimeError("injected failure")
    log = RaiseIn(stage, boom)
    with pytest.raises(RuntimeError) as raised:
        _run(uint16_raster, dest / "labels.tif", tiny, log, stats_path=str(dest / "stats.json"),
             polygons_path=str(dest / "polygons.gpkg"), trees_path=str(dest / "trees.tif"),
             crowns_path=str(dest / "crowns.gpkg"))
    assert raised.value is boom and stage in log.stages  # a bug is not disguised as a user error
    assert _snapshot(dest) == PREVIOUS and not _leftovers(dest)


@pytest.mark.parametrize(("error", "fragment"), [
    (MemoryError("Unable to allocate 37.3 GiB for an array"), "Out of memory (Unable to allocate 37.3 GiB"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
     "Out of memory ([enforce fail"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 8.00 GiB total capacity)"),
     "Out of memory (CUDA out of memory"),
    (OSError(errno.ENOSPC, "No space left on device"), "Cannot write the "),
])
@pytest.mark.parametrize("stage", ["Encoding tiles", "Writing labels"])
def test_out_of_memory_and_a_full_disk_become_engine_errors(tiny, uint16_raster, dest, error, fragment, stage):
    with pytest.raises(EngineError) as raised:
        _run(uint16_raster, dest / "labels.tif", tiny, RaiseIn(stage, error))
    message = str(raised.value)
    assert message.startswith(fragment), message
    if isinstance(error, OSError):
        assert "[Errno 28] No space left on device. The disk is full" in message and "Free disk space" in message
    else:
        assert "Lower the batch size, the tile size or the maximum k-means samples" in message
        assert ("choose the CPU as the device" in message) == ("CUDA" in str(error))
    assert _snapshot(dest) == PREVIOUS and not _leftovers(dest)


def test_cancel_in_the_reading_stage_of_a_stretched_raster(tiny, uint16_raster, dest):
    class CancelWhileReading(Log):
        def is_canceled(self) -> bool:
            return bool(self.stages) and self.stages[-1] == "Reading input" and len(self.lines) > 0

    with pytest.raises(Canceled):
        _run(uint16_raster, dest / "labels.tif", tiny, CancelWhileReading())
    assert _snapshot(dest) == PREVIOUS and not _leftovers(dest)


# -- replacing an existing result --------------------------------------------------------------------


def test_stale_companions_of_a_replaced_output_are_removed_only_on_success(tmp_path, tiny, inputs):
    raster = make_raster(inputs / "stale.tif", 64, 64)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("labels.tif", "labels.tif.ovr", "labels.tif.msk", "labels.tif.aux.xml", "other.tif.ovr"):
        (out / name).write_bytes(b"old " + name.encode())
    with pytest.raises(EngineError):
        _run(raster, out / "labels.tif", tiny, k=30)  # more clusters than patches: fails in the fit
    assert {name: data.decode() for name, data in _snapshot(out).items()} == {
        name: "old " + name for name in ("labels.tif", "labels.tif.ovr", "labels.tif.msk", "labels.tif.aux.xml",
                                         "other.tif.ovr")}
    _run(raster, out / "labels.tif", tiny)
    assert sorted(os.listdir(out)) == ["labels.qml", "labels.tif", "labels.tif.aux.xml", "other.tif.ovr"]
    assert gdal.Open(str(out / "labels.tif")).RasterXSize == 64


def test_a_failed_commit_restores_the_replaced_files(tmp_path, monkeypatch):
    (tmp_path / "out.tif").write_text("old tif")
    (tmp_path / "out.qml").write_text("old qml")
    (tmp_path / "out.tif.ovr").write_text("old overviews")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(tmp_path / "out.tif"):
            raise OSError(errno.EROFS, "Read-only file system")
        real_replace(src, dst)

    with Staging() as staging:
        temp = Path(staging.path(str(tmp_path / "out.tif")))
        temp.write_text("new tif")
        (temp.parent / "out.qml").write_text("new qml")
        monkeypatch.setattr(os, "replace", failing_replace)
        with pytest.raises(EngineError, match=r"Read-only file system\. You cannot write in that folder"):
            staging.commit(last="out.tif", stale=["out.tif.ovr"])
        monkeypatch.undo()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "out.tif": "old tif", "out.qml": "old qml", "out.tif.ovr": "old overviews"}


def test_an_output_path_under_a_file_names_the_file(tmp_path, tiny, inputs):
    raster = make_raster(inputs / "under-file.tif", 64, 64)
    (tmp_path / "report.pdf").write_text("a file")
    with pytest.raises(EngineError, match=r"'.*report\.pdf' is a file, not a folder. Choose an output path in a "
                                          "folder"):
        _run(raster, tmp_path / "report.pdf" / "sub" / "labels.tif", tiny)
    assert sorted(os.listdir(tmp_path)) == ["report.pdf"]
