"""The crowns step releases every file it opened when it stops early (a cancel, an error), before the
folder that holds them is removed (on Windows an open file cannot be removed)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import List

import numpy as np
import pytest
from osgeo import gdal, osr
from recording_progress import Log
from treeseg.treeseg_plugin.engine import Canceled
from treeseg.treeseg_plugin.engine.raster.georef import pixel_area
from treeseg.treeseg_plugin.engine.trees.crowns import write_crowns

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd (Linux)")

SIDE = 96
GT = (500000.0, 0.5, 0.0, 5000000.0, 0.0, -0.5)  # 0.5 m pixels, UTM 33N


def _srs() -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    return srs


@pytest.fixture()
def labels(tmp_path: Path) -> str:
    """Four round tree crowns (cluster 1, 12 px radius) on grass (cluster 2)."""
    rows, cols = np.mgrid[:SIDE, :SIDE]
    array = np.full((SIDE, SIDE), 2, np.uint8)
    for row, col in [(20, 20), (20, 70), (70, 30), (72, 75)]:
        array[(rows - row) ** 2 + (cols - col) ** 2 <= 12 ** 2] = 1
    path = tmp_path / "input" / "labels.tif"
    path.parent.mkdir()
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), SIDE, SIDE, 1, gdal.GDT_Byte)
    dataset.SetGeoTransform(GT)
    dataset.SetSpatialRef(_srs())
    dataset.GetRasterBand(1).WriteArray(array)
    dataset = None
    return str(path)


class CancelAtCall(Log):
    """Asks to stop at its ``at``-th cancel check (0: never); counts the checks."""

    def __init__(self, at: int = 0) -> None:
        super().__init__()
        self.at, self.calls = at, 0

    def is_canceled(self) -> bool:
        self.calls += 1
        return self.calls >= self.at > 0


def crowns(labels: str, output: Path, progress: Log) -> int:
    return write_crowns(labels, str(output), [1], None, pixel_area(GT, _srs(), SIDE, SIDE), 2.0, 0.0, 2, progress)


def files_held_under(folder: Path) -> List[str]:
    """The files this process holds open under ``folder`` (removed ones too: '... (deleted)')."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                held.append(target)
    return held


def test_a_full_run_writes_the_four_crowns_and_holds_nothing(labels, tmp_path):
    assert crowns(labels, tmp_path / "out" / "crowns.gpkg", CancelAtCall()) == 4
    assert files_held_under(tmp_path / "out") == []


@pytest.mark.parametrize("where", ["first check (crown ids raster)", "second check (polygonising)", "last check"])
def test_a_cancel_releases_every_file(labels, tmp_path, where):
    counting = CancelAtCall()
    crowns(labels, tmp_path / "whole" / "crowns.gpkg", counting)
    at = {"first check (crown ids raster)": 1, "second check (polygonising)": 2, "last check": counting.calls}[where]
    out = tmp_path / "out"
    with pytest.raises(Canceled) as raised:
        crowns(labels, out / "crowns.gpkg", CancelAtCall(at))
    assert raised.value.__traceback__ is not None  # the frames of the run are still referenced here
    assert files_held_under(out) == []


def test_an_error_creating_the_crowns_file_releases_every_file(labels, tmp_path):
    out = tmp_path / "out"
    (out / "crowns.gpkg").mkdir(parents=True)  # a folder where the crowns file should go: GDAL cannot create it
    with pytest.raises(RuntimeError, match=r"crowns\.gpkg") as raised:
        crowns(labels, out / "crowns.gpkg", CancelAtCall())
    assert raised.value.__traceback__ is not None
    assert files_held_under(out) == []
