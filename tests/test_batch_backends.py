"""Batch runs outside QGIS: which rasters a run reads, and its backends (this process, Dask).

The Dask tests start a real ``distributed.LocalCluster`` of worker processes; one task kills its own
worker the first time it runs, as the out-of-memory killer would, and Dask must run it again elsewhere.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from data_factory import make_raster
from osgeo import gdal
from treeseg.treeseg_plugin.batch.backends import DaskBackend, LocalBackend, make_backend
from treeseg.treeseg_plugin.batch.inputs import expand_inputs, label_paths
from treeseg.treeseg_plugin.engine import EngineError

pytest.importorskip("distributed", reason="the Dask tests need dask[distributed] (requirements/dev.txt)")


@pytest.fixture()
def rasters(tmp_path) -> list[Path]:
    folder = tmp_path / "tiles"
    folder.mkdir()
    paths = [make_raster(folder / f"tile_{i}.tif", 32, 32, seed=i) for i in range(3)]
    (folder / "notes.md").write_text("not a raster")
    (folder / "tile_0_labels.tif").write_bytes(b"an earlier output, never an input")
    return paths


def test_a_folder_gives_its_rasters_in_order_without_outputs_or_other_files(rasters):
    assert expand_inputs([str(rasters[0].parent)]) == [str(path) for path in rasters]


def test_globs_lists_and_vrts_expand_and_repeats_go(rasters, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two tiles\n{rasters[1].parent.name}/tile_2.tif\n\n{rasters[0]}\n")
    vrt = tmp_path / "mosaic.vrt"
    gdal.BuildVRT(str(vrt), [str(rasters[0]), str(rasters[1])]).FlushCache()
    got = expand_inputs([str(listing), str(rasters[0].parent / "tile_[12].tif"), str(vrt)])
    assert got == [str(rasters[2]), str(rasters[0]), str(rasters[1])]


@pytest.mark.parametrize("item, message", [
    ("missing.tif", "does not exist"),
    ("*.nothing", "No file matches"),
])
def test_bad_inputs_are_refused_by_name(tmp_path, item, message):
    with pytest.raises(EngineError, match=message):
        expand_inputs([str(tmp_path / item)])


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(EngineError, match="holds no rasters"):
        expand_inputs([str(tmp_path)])


def test_two_inputs_with_one_name_are_refused_before_anything_runs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = make_raster(tmp_path / "a" / "ortho.tif", 16, 16)
    b = make_raster(tmp_path / "b" / "ortho.tif", 16, 16)
    assert label_paths([str(a)], str(tmp_path / "out")) == {str(a): str(tmp_path / "out" / "ortho_labels.tif")}
    with pytest.raises(EngineError, match="have the same name"):
        label_paths([str(a), str(b)], str(tmp_path / "out"))


def square(value: int) -> int:
    return value * value


def die_once(marker: str) -> int:
    """Kill this worker process the first time (a marker file keeps its pid), then answer its pid.

    Before dying it leaves a temporary folder named as the engine's staging names them."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        (Path(marker).parent / f".treeseg-labels-{os.getpid()}-abc").mkdir()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def test_local_and_dask_backends_give_the_same_results():
    local = dict(LocalBackend().map(square, [1, 2, 3, 4]))
    backend = make_backend(None, 2)
    try:
        assert isinstance(backend, DaskBackend)
        assert len(backend.client.scheduler_info()["workers"]) == 2
        assert dict(backend.map(square, [1, 2, 3, 4])) == local == {1: 1, 2: 4, 3: 9, 4: 16}
    finally:
        backend.close()


def test_a_killed_dask_worker_has_its_task_run_again(tmp_path):
    backend = DaskBackend(workers=2)
    try:
        [(_, pid)] = list(backend.map(die_once, [str(tmp_path / "marker")]))
    finally:
        backend.close([str(tmp_path)])
    killed = int((tmp_path / "marker").read_text())
    assert pid not in (killed, os.getpid())  # run again, in another worker process
    assert not list(tmp_path.glob(".treeseg-*"))  # the dead worker's temporary folder is gone
