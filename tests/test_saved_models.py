"""Graphical models saved by earlier versions keep working: ``data/saved-before-redesign.model3`` was saved by
the code before the engine's redesign (Fit Cluster Model -> Segment Trees with the fitted model, Canopy Height ->
Segment Trees' heights, trees and crowns; non-default values in both BANDS forms: Fit's text ``3,2,1`` and Segment
Trees' band list). ``data/parameters-before-redesign.txt`` lists every parameter the algorithms had then."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from osgeo import gdal

from tests.chmv2_factory import write_hf_chmv2, write_meta_chmv2

pytest.importorskip("transformers")
DATA = Path(__file__).resolve().parent / "data"
SAVED_MODEL = DATA / "saved-before-redesign.model3"


def saved_parameters() -> dict[str, dict[str, str]]:
    """algorithm id -> parameter name -> its default, as listed when the model was saved."""
    listing: dict[str, dict[str, str]] = {}
    for line in (DATA / "parameters-before-redesign.txt").read_text().splitlines():
        if line.startswith("== "):
            current = listing.setdefault(line[3:], {})
        else:
            name, default = re.fullmatch(r"  (\w+) \w+ default=(.*) flags=\d+", line).groups()
            current[name] = default
    return listing


def test_every_parameter_of_earlier_versions_is_still_there_with_its_default(treeseg_provider):
    from qgis.core import QgsApplication

    for algorithm_id, parameters in saved_parameters().items():
        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        assert algorithm is not None, algorithm_id
        today = {d.name(): repr(d.defaultValue()) for d in algorithm.parameterDefinitions()}
        for name, default in parameters.items():
            assert name in today, f"{algorithm_id} lost {name}: saved models and scripts that set it break"
            assert today[name] == default, (algorithm_id, name)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("saved-model-weights")
    _, chm_model = write_hf_chmv2(root / "hf", seed=5)
    decoder, backbone = write_meta_chmv2(root / "meta", chm_model)
    return {"weights": write_meta_pth(root / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0)),
            "chm_decoder": decoder, "chm_backbone": backbone}


@pytest.mark.slow
def test_the_model_saved_before_the_redesign_runs(treeseg_provider, weights, tmp_path):
    import processing
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(SAVED_MODEL))
    ok, errors = model.validate()
    assert ok, errors
    survey = [make_raster(tmp_path / f"survey{i}.tif", 96, 96, seed=i) for i in range(2)]
    ortho = make_raster(tmp_path / "ortho.tif", 96, 80, kind="blobs", seed=3)
    outputs = {p.name(): str(tmp_path / f"{p.name().split(':')[-1]}{'.gpkg' if 'crowns' in p.name() else '.tif'}")
               for p in model.destinationParameterDefinitions()}
    results = processing.run(model, {"survey": [str(r) for r in survey], "ortho": str(ortho),
                                     **{k: str(v) for k, v in weights.items()}, **outputs})
    [labels_name] = [n for n in outputs if n.endswith("labels")]
    labels_ds = gdal.Open(results[labels_name])
    assert labels_ds.GetGeoTransform() == gdal.Open(str(ortho)).GetGeoTransform()
    labels = labels_ds.GetRasterBand(1).ReadAsArray()
    assert 2 <= labels.max() <= 4  # the fit's K_MIN 2 .. K_MAX 4 reached Segment Trees through the model file
    [trees_name] = [n for n in outputs if n.endswith("trees")]
    trees_ds = gdal.Open(results[trees_name])  # held: a band outlives no dataset in GDAL's Python bindings
    trees = trees_ds.GetRasterBand(1).ReadAsArray()
    assert set(np.unique(trees)) <= {0, 1, 2} and trees.shape == labels.shape
    [crowns_name] = [n for n in outputs if n.endswith("crowns")]
    assert Path(results[crowns_name]).is_file()
