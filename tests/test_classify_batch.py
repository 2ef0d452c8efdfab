"""The batch command applies a Classify from Examples classifier (``--classifier FILE.tscc``) to many rasters,
locally and on a Dask LocalCluster, as it applies a cluster model: each output equals Classify from Examples
applied to that raster alone (real subprocesses, a random-weight checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from osgeo import gdal
from recording_progress import Log
from test_batch_cli import command
from test_classify_engine import TEXTURES, box, rectangles, write_examples
from treeseg.treeseg_plugin.engine.jobs.classify import ClassifyConfig
from treeseg.treeseg_plugin.engine.runs.classify import run_classify

SETTINGS = {"tile_size": 64, "overlap": 16}
FLAGS = ["--tile-size", "64", "--overlap", "16"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("fit")
    weights = str(write_meta_pth(folder / "tiny.pth", make_state_dict("tiny", seed=0)))
    ortho = make_raster(folder / "ortho.tif", 288, 192)
    examples = write_examples(folder / "examples.gpkg",
                              [(name, box(*r)) for t, name in enumerate(TEXTURES) for r in rectangles(t)])
    classifier = folder / "textures.tscc"
    run_classify(ClassifyConfig(str(ortho), str(folder / "classes.tif"), model=weights, examples_path=str(examples),
                                class_field="kind", classifier_output=str(classifier), **SETTINGS), Log())
    tiles = folder / "tiles"
    tiles.mkdir()
    for i in range(3):
        make_raster(tiles / f"tile_{i}.tif", 160, 128, seed=i + 1)
    return {"weights": weights, "classifier": str(classifier), "tiles": tiles, "folder": folder}


def read(path: Path) -> np.ndarray:
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(1).ReadAsArray()


def alone(fitted: dict, raster: Path, out: Path) -> np.ndarray:
    """The classes of ``raster`` from Classify from Examples applying the classifier in this process."""
    result = run_classify(ClassifyConfig(str(raster), str(out / f"{raster.stem}.tif"), model=fitted["weights"],
                                         classifier=fitted["classifier"], **SETTINGS), Log())
    return read(Path(result.output_path))


@pytest.mark.parametrize("where", [[], ["--workers", "2"]], ids=["local", "dask"])
def test_a_classifier_classifies_a_folder_as_each_raster_alone(fitted, tmp_path, where):
    if where:
        pytest.importorskip("distributed", reason="the Dask test needs dask[distributed] (requirements/dev.txt)")
    done = command(str(fitted["tiles"]), "-o", str(tmp_path / "out"), "--model", fitted["weights"],
                   "--classifier", fitted["classifier"], *FLAGS, *where)
    assert done.returncode == 0, done.stderr
    assert "Using the classifier" in done.stderr
    assert not (tmp_path / "out" / "cluster-model.tscm").exists()
    for raster in sorted(fitted["tiles"].glob("*.tif")):
        output = tmp_path / "out" / f"{raster.stem}_labels.tif"
        assert np.array_equal(read(output), alone(fitted, raster, tmp_path)), raster.name
        assert (tmp_path / "out" / f"{raster.stem}_labels.qml").exists()  # the classes' palette
    assert (tmp_path / "out" / "mosaic.vrt").exists()


def test_a_classifier_of_another_backbone_stops_the_batch_with_the_fix(fitted, tmp_path):
    other = write_meta_pth(tmp_path / "other.pth", make_state_dict("tiny", seed=1))
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(fitted["tiles"] / "tile_0.tif", one)
    done = command(str(one), "-o", str(tmp_path / "out"), "--model", str(other), "--classifier",
                   fitted["classifier"], *FLAGS)
    assert done.returncode == 1
    assert "does not fit this run: weights" in done.stderr
    assert not list((tmp_path / "out").glob("*_labels.tif"))


@pytest.mark.parametrize("args, message", [
    (["--classifier", "missing.tscc"], "The classifier 'missing.tscc' does not exist"),
    (["--classifier", "c.tscc", "--cluster-model", "m.tscm"], "not allowed with argument"),
])
def test_bad_classifier_arguments_stop_before_anything_runs(fitted, tmp_path, args, message):
    done = command(str(fitted["tiles"]), "-o", str(tmp_path / "out"), "--model", fitted["weights"], *args)
    assert done.returncode != 0 and message in done.stderr
