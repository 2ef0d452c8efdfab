"""WORKING_RESOLUTION through Processing (Fit Cluster Model, then Segment Trees applying the model) and
``--working-resolution`` through the batch command (a real subprocess, as a user runs it): each reaches the
engine, the model records it and the labels are on the input's grid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from checkpoint_factory import make_state_dict, write_meta_pth
from conftest import PLUGINS_DIR
from data_factory import make_raster
from osgeo import gdal
from qgis.core import QgsProcessingFeedback
from treeseg.treeseg_plugin.engine.cluster.model_file import load_cluster_model

SMALL = {"TILE_SIZE": 64, "OVERLAP": 16, "K": 3}
PLUGIN = Path(PLUGINS_DIR) / "treeseg"


def _grid(path) -> tuple:
    ds = gdal.Open(str(path))
    found = ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform(), ds.GetProjection()
    ds = None
    return found


def test_fit_and_segment_at_a_working_resolution_in_processing(treeseg_provider, tmp_path):
    import processing

    tiny = str(write_meta_pth(tmp_path / "tiny.pth", make_state_dict("tiny", seed=0)))
    raster = make_raster(tmp_path / "ortho.tif", 160, 128, pixel_size=0.1, kind="blobs")
    model = tmp_path / "forest.tscm"
    processing.run("treeseg:fitclustermodel", {"INPUT": [str(raster)], "WEIGHTS": tiny, **SMALL,
                                               "WORKING_RESOLUTION": 0.2, "OUTPUT": str(model)})
    assert load_cluster_model(str(model)).fit.encoding.working_resolution == 0.2
    feedback, log = QgsProcessingFeedback(), []
    feedback.pushInfo = log.append
    feedback.pushWarning = log.append
    processing.run("treeseg:segmenttrees", {"INPUT": str(raster), "WEIGHTS": tiny, **SMALL, "WORKING_RESOLUTION": 0.2,
                                            "CLUSTER_MODEL": str(model), "OUTPUT": str(tmp_path / "labels.tif")},
                   feedback=feedback)
    assert any("encoded at working resolution 0.2 m (GDAL average as it reads): 80 x 64 = 5120 px" in line
               for line in log), log
    assert not any("fitted at" in line for line in log)  # the same working resolution as the fit: no warning
    assert _grid(tmp_path / "labels.tif") == _grid(raster)


def test_the_batch_command_fits_and_labels_at_its_working_resolution(tmp_path):
    tiny = str(write_meta_pth(tmp_path / "tiny.pth", make_state_dict("tiny", seed=0)))
    (tmp_path / "in").mkdir()
    raster = make_raster(tmp_path / "in" / "a.tif", 160, 128, pixel_size=0.1, kind="blobs")
    result = subprocess.run([sys.executable, "-m", "treeseg_plugin", str(raster), "-o", str(tmp_path / "out"),
                             "--model", tiny, "--tile-size", "64", "--overlap", "16", "--k", "3",
                             "--working-resolution", "0.2"],
                            cwd=PLUGIN, env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert load_cluster_model(str(tmp_path / "out" / "cluster-model.tscm")).fit.encoding.working_resolution == 0.2
    assert _grid(tmp_path / "out" / "a_labels.tif") == _grid(raster)


def test_the_batch_command_refuses_windows_at_a_working_resolution(tmp_path):
    (tmp_path / "in").mkdir()
    raster = make_raster(tmp_path / "in" / "a.tif", 64, 64)
    result = subprocess.run([sys.executable, "-m", "treeseg_plugin", str(raster), "-o", str(tmp_path / "out"),
                             "--window", "256", "--working-resolution", "0.2"],
                            cwd=PLUGIN, env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1 and "--window and --working-resolution cannot be combined" in result.stderr
    assert not (tmp_path / "out").exists()
