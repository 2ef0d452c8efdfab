"""QGIS and GDAL objects that outlive their tests are released before pytest-qgis's exitQgis(), not after it.

At interpreter exit PyQt deletes every Python-owned QObject without a parent that Python still wraps (even one
whose references leaked), and Python frees module globals and the traceback pytest keeps of a failed test: all
of that after exitQgis() has destroyed GDAL's driver manager, so a raster layer or a GDAL dataset freed then
writes into freed memory (rc 139, or a glibc abort, depending on the memory layout).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

TESTS_DIR = Path(__file__).resolve().parent

# A session that leaves behind what the real suite leaves: a layer and a GDAL dataset in module globals, a layer
# in the frame of a Processing algorithm that raised (QGIS 3.22's error handler keeps the exception, its traceback,
# so the frame), and a GDAL dataset in the frame of a failed test (pytest keeps it in sys.last_traceback).
SESSION = '''
import os

from osgeo import gdal
from qgis.core import (QgsApplication, QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException,
                       QgsProcessingFeedback, QgsRasterLayer)

RASTER = os.environ["EXIT_TEST_RASTER"]
_exit_qgis = QgsApplication.exitQgis


def say(text):
    os.write(1, ("\\n" + text + "\\n").encode())


def exit_qgis():
    say("exitQgis")
    _exit_qgis()


QgsApplication.exitQgis = staticmethod(exit_qgis)


def layer(name):
    made = QgsRasterLayer(RASTER, name)
    assert made.isValid()
    made.willBeDeleted.connect(lambda: say(name + " deleted"))
    return made


MODULE_LAYER = layer("module layer")
MODULE_DATASET = gdal.Open(RASTER)


class Refusing(QgsProcessingAlgorithm):
    def name(self):
        return "refusing"

    def displayName(self):
        return "Refusing"

    def createInstance(self):
        return Refusing()

    def initAlgorithm(self, config=None):
        pass

    def processAlgorithm(self, parameters, context, feedback):
        kept = layer("algorithm layer")
        raise QgsProcessingException("refused " + kept.name())


def test_an_algorithm_refuses():
    assert not Refusing().run({}, QgsProcessingContext(), QgsProcessingFeedback())[1]


def test_fails_with_a_dataset_open():
    dataset = gdal.Open(RASTER)
    assert dataset is None
'''


@pytest.fixture()
def raster(tmp_path) -> Path:
    """A small georeferenced GeoTIFF."""
    path = tmp_path / "small.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 64, 64, 3, gdal.GDT_Byte)
    dataset.SetGeoTransform((500000.0, 0.5, 0.0, 6000000.0, 0.0, -0.5))
    for band in range(1, 4):
        dataset.GetRasterBand(band).WriteArray(np.full((64, 64), band * 40, dtype=np.uint8))
    dataset = None
    return path


@pytest.mark.slow
def test_objects_left_at_the_end_are_released_before_qgis_exits(tmp_path, raster):
    """The session ends with its one failed test (rc 1), no crash, and both layers deleted before exitQgis()."""
    session_dir = tmp_path / "session"
    session_dir.mkdir()
    (session_dir / "test_session.py").write_text(SESSION)
    env = dict(os.environ, EXIT_TEST_RASTER=str(raster), PYTHONPATH=str(TESTS_DIR), PYTHONFAULTHANDLER="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--rootdir", str(session_dir), str(session_dir / "test_session.py")],
        cwd=session_dir, env=env, capture_output=True, text=True, timeout=300)
    log = done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout, log
    assert done.returncode == 1, log
    lines = done.stdout.splitlines()
    assert "exitQgis" in lines, log
    for name in ("module layer", "algorithm layer"):
        assert f"{name} deleted" in lines, log
        assert lines.index(f"{name} deleted") < lines.index("exitQgis"), log
