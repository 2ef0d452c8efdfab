"""Canopy Height end to end: processing.run in QGIS and the real qgis_process.bin, with random-weight CHMv2
checkpoints (tiny architecture) in Meta's and Hugging Face's layouts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from batch_panel import dispose, row_parameters
from checkpoint_factory import make_state_dict, write_meta_pth
from osgeo import gdal
from processing_models import add_step, child, child_output, model_input, new_model, static
from qgis.core import QgsProcessingException
from qgis_process_runner import enable_plugin, qgis_process_env, run, run_algorithm
from recording_progress import RecordingFeedback

from tests.chmv2_factory import write_hf_chmv2, write_meta_chmv2

pytest.importorskip("transformers")
SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
ALGORITHM = "treeseg:canopyheight"
NODATA = -9999.0


@pytest.fixture(scope="module")
def chm(tmp_path_factory):
    root = tmp_path_factory.mktemp("chm-weights")
    folder, model = write_hf_chmv2(root / "hf", seed=11)
    decoder, backbone = write_meta_chmv2(root / "meta", model)
    segmentation = write_meta_pth(root / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    return {"hf": folder / "model.safetensors", "decoder": decoder, "backbone": backbone, "tiny": segmentation}


def assert_heights_on_the_sample_grid(path: Path) -> None:
    """Float32 on the sample's exact grid, finite heights where the sample is valid, NoData elsewhere."""
    source, heights_ds = gdal.Open(str(SAMPLE)), gdal.Open(str(path))
    assert (heights_ds.RasterXSize, heights_ds.RasterYSize) == (source.RasterXSize, source.RasterYSize)
    assert heights_ds.GetGeoTransform() == source.GetGeoTransform()
    assert heights_ds.GetSpatialRef().IsSame(source.GetSpatialRef())
    band = heights_ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32 and band.GetNoDataValue() == NODATA
    heights = band.ReadAsArray()
    invalid = (source.ReadAsArray() == 255).any(axis=0)  # NoData 255 per band
    assert invalid.any() and not invalid.all()
    assert bool((heights[invalid] == NODATA).all())
    assert bool(np.isfinite(heights[~invalid]).all()) and heights[~invalid].min() > 0
    assert (path.parent / (path.stem + ".qml")).is_file()


def test_processing_run_with_the_hf_file(treeseg_provider, chm, tmp_path):
    import processing

    output = tmp_path / "chm.tif"
    results = processing.run(ALGORITHM, {"INPUT": str(SAMPLE), "WEIGHTS": str(chm["hf"]), "DEVICE": 3,
                                         "PRECISION": 1, "TILE_SIZE": 32, "OVERLAP": 0, "OUTPUT": str(output)})
    assert results == {"OUTPUT": str(output)}
    assert_heights_on_the_sample_grid(output)


def test_decoder_alone_looks_for_the_sat493m_backbone_and_says_how_to_get_it(treeseg_provider, chm, tmp_path):
    import processing

    output = tmp_path / "chm.tif"
    expected = r"No DINOv3 weights found for .vitl16-sat493m.*accept the DINOv3 licence"
    with pytest.raises(QgsProcessingException, match=expected):
        processing.run(ALGORITHM, {"INPUT": str(SAMPLE), "WEIGHTS": str(chm["decoder"]), "DEVICE": 3,
                                   "OUTPUT": str(output)})
    assert not output.exists()


@pytest.mark.slow
def test_qgis_process_run_with_meta_files(chm, tmp_path, plugins_dir):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    help_text = run(["help", ALGORITHM], env)
    assert help_text.returncode == 0 and "RESOLUTION: Model resolution" in help_text.stdout
    output = tmp_path / "chm.tif"
    done, payload = run_algorithm(ALGORITHM, {"INPUT": SAMPLE, "WEIGHTS": chm["decoder"],
                                              "BACKBONE": chm["backbone"], "DEVICE": 3, "TILE_SIZE": 32,
                                              "OVERLAP": 0, "OUTPUT": output}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert payload["results"]["OUTPUT"] == str(output)
    assert "Resampled the input from 0.1 m" in done.stdout
    assert_heights_on_the_sample_grid(output)


def test_check_parameter_values_uses_the_engine_rules(treeseg_provider, chm):
    from qgis.core import QgsApplication, QgsProcessingContext

    algorithm = QgsApplication.processingRegistry().algorithmById(ALGORITHM)
    parameters = {"INPUT": str(SAMPLE), "WEIGHTS": str(chm["hf"]), "OUTPUT": "chm.tif"}
    ok, message = algorithm.checkParameterValues({**parameters, "TILE_SIZE": 40}, QgsProcessingContext())
    assert not ok and "Tile size 40 is not a multiple of 16" in message
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert ok, message


def test_graphical_model_chains_the_height_raster(treeseg_provider, chm, tmp_path):
    """Canopy Height feeding QGIS's raster statistics in a graphical model (as the Modeler builds it)."""
    import processing
    from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterRasterLayer

    model = new_model("Canopy height statistics", QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
                      QgsProcessingParameterFile("weights", "Weights"))
    add_step(model, child(ALGORITHM, "heights", {"INPUT": model_input("ortho"), "WEIGHTS": model_input("weights"),
                                                 "DEVICE": static(3), "TILE_SIZE": static(32),
                                                 "OVERLAP": static(0)}))
    statistics = child("native:rasterlayerstatistics", "statistics",
                       {"INPUT": child_output("heights", "OUTPUT"), "BAND": static(1)})
    add_step(model, statistics, {"report": ("Report", "OUTPUT_HTML_FILE")})
    ok, errors = model.validate()
    assert ok, errors
    [destination] = [parameter.name() for parameter in model.destinationParameterDefinitions()]
    results = processing.run(model, {"ortho": str(SAMPLE), "weights": str(chm["hf"]),
                                     destination: str(tmp_path / "stats.html")})
    html = Path(results[destination]).read_text(encoding="utf-8")
    low, high = (float(re.search(rf"{name} value: ([0-9.eE+-]+)", html).group(1)) for name in ("Minimum", "Maximum"))
    assert 0 < low < high <= 96  # QGIS reads the NoData (-9999) as NoData


def build_heights_and_segment_model():
    """Canopy Height -> Segment Trees' CANOPY_HEIGHT, both on the orthophoto; the heights, labels and
    statistics are model outputs."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFile,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("Heights then trees", "TreeSeg tests")
    for parameter in (QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
                      QgsProcessingParameterFile("chmv2", "CHMv2 weights"),
                      QgsProcessingParameterFile("weights", "Segmentation weights")):
        model.addModelParameter(parameter, QgsProcessingModelParameter(parameter.name()))
    static = QgsProcessingModelChildParameterSource.fromStaticValue
    source = QgsProcessingModelChildParameterSource.fromModelParameter
    steps = {
        "heights": child(ALGORITHM, "heights", {"INPUT": source("ortho"), "WEIGHTS": source("chmv2"),
                                                "DEVICE": static(3), "TILE_SIZE": static(32), "OVERLAP": static(0)}),
        "segment": child("treeseg:segmenttrees", "segment", {
            "INPUT": source("ortho"), "WEIGHTS": source("weights"), "K": static(3), "TILE_SIZE": static(64),
            "OVERLAP": static(16),
            "CANOPY_HEIGHT": QgsProcessingModelChildParameterSource.fromChildOutput("heights", "OUTPUT")}),
    }
    for child_id, outputs in (("heights", {"chm": "OUTPUT"}), ("segment", {"labels": "OUTPUT", "stats": "STATS"})):
        declared = {}
        for name, output_name in outputs.items():
            declared[name] = QgsProcessingModelOutput(name, name)
            declared[name].setChildId(child_id)
            declared[name].setChildOutputName(output_name)
        steps[child_id].setModelOutputs(declared)
        model.addChildAlgorithm(steps[child_id])
    return model


def test_graphical_model_feeds_the_heights_to_segment_trees(treeseg_provider, chm, tmp_path):
    """The Modeler chain: Segment Trees reads Canopy Height's raster, and its tree rule decides by height."""
    import processing

    model = build_heights_and_segment_model()
    ok, errors = model.validate()
    assert ok, errors
    names = {parameter.name() for parameter in model.destinationParameterDefinitions()}
    destination = {short: next(name for name in names if name.endswith(short)) for short in ("chm", "labels", "stats")}
    files = {"chm": tmp_path / "chm.tif", "labels": tmp_path / "labels.tif", "stats": tmp_path / "stats.json"}
    results = processing.run(model, {"ortho": str(SAMPLE), "chmv2": str(chm["hf"]), "weights": str(chm["tiny"]),
                                     **{destination[short]: str(path) for short, path in files.items()}})
    assert {results[destination[short]] for short in files} == {str(path) for path in files.values()}
    assert_heights_on_the_sample_grid(files["chm"])
    labels_ds = gdal.Open(str(files["labels"]))
    assert labels_ds.GetGeoTransform() == gdal.Open(str(SAMPLE)).GetGeoTransform()
    assert (labels_ds.RasterXSize, labels_ds.RasterYSize) == (400, 400)

    trees = json.loads(files["stats"].read_text(encoding="utf-8"))["trees"]
    assert trees["canopy_height"] == str(files["chm"])
    heights_ds = gdal.Open(str(files["chm"]))  # kept open while its band is read
    heights = heights_ds.GetRasterBand(1).ReadAsArray()
    labels = labels_ds.GetRasterBand(1).ReadAsArray()
    assert len(trees["clusters"]) == 3
    for label, cluster in trees["clusters"].items():
        assert cluster["basis"] == "height" and cluster["height_pixels"] > 0
        assert cluster["height_max"] == pytest.approx(float(heights[labels == int(label)].max()), abs=1e-3)


def test_the_batch_dialog_runs_canopy_height(treeseg_provider, qgis_iface, chm, tmp_path):
    """QGIS's own Batch dialog takes Canopy Height's parameters; the row's parameters run (processing.run, as
    in the cluster-model batch test)."""
    import processing
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication, QgsProcessingContext

    dialog = BatchAlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM),
                                  parent=qgis_iface.mainWindow())
    panel = dialog.mainWidget()
    panel.checkLoadLayersOnCompletion.setChecked(False)
    context = QgsProcessingContext()
    for name, value in {"INPUT": str(SAMPLE), "WEIGHTS": str(chm["hf"]), "DEVICE": 3, "TILE_SIZE": 32,
                        "OVERLAP": 0}.items():
        panel.wrappers[0][panel.parameter_to_column[name]].setParameterValue(value, context)
    output = tmp_path / "batch-chm.tif"
    panel.tblParameters.cellWidget(1, panel.parameter_to_column["OUTPUT"]).setValue(str(output))
    parameters, ok = row_parameters(panel, 0)
    assert ok and parameters["WEIGHTS"] == str(chm["hf"]) and parameters["TILE_SIZE"] == 32
    assert processing.run(ALGORITHM, parameters) == {"OUTPUT": str(output)}
    assert_heights_on_the_sample_grid(output)
    dispose(dialog)


def test_an_unexpected_error_is_reported_as_canopy_heights(treeseg_provider, chm, tmp_path):
    import processing

    output = tmp_path / "chm.tif"
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(ALGORITHM, {"INPUT": str(SAMPLE), "WEIGHTS": str(chm["hf"]), "DEVICE": 3, "PRECISION": 1,
                                   "TILE_SIZE": 32, "OVERLAP": 0, "OUTPUT": str(output)},
                       feedback=RecordingFeedback(fail_at_percent=50))
    assert str(raised.value).startswith("Canopy Height stopped on an unexpected error (RuntimeError: injected"), \
        raised.value
    assert not output.exists()


def test_the_resolution_given_reaches_the_model(treeseg_provider, chm, tmp_path):
    """RESOLUTION 0.25 m: the 400 x 400 px sample at 0.1 m (40 m) goes to the model as 160 x 160 px."""
    import processing

    output, feedback = tmp_path / "chm.tif", RecordingFeedback()
    processing.run(ALGORITHM, {"INPUT": str(SAMPLE), "WEIGHTS": str(chm["hf"]), "DEVICE": 3, "RESOLUTION": 0.25,
                               "TILE_SIZE": 32, "OVERLAP": 0, "OUTPUT": str(output)}, feedback=feedback)
    assert any(text.startswith("Resampled the input from 0.1 m (400 x 400 px) to 0.25 m (160 x 160 px")
               for text in feedback.texts), feedback.texts
    assert_heights_on_the_sample_grid(output)


@pytest.mark.parametrize(("name", "engine_default"), [("RESOLUTION", 1.0), ("TILE_SIZE", 512), ("OVERLAP", 64),
                                                      ("BATCH_SIZE", 2)])
def test_numeric_defaults_are_the_engine_defaults(treeseg_provider, name, engine_default):
    """The defaults docs/canopy-height.md gives (512, 64, 2; 1 m, CHMv2's training resolution), in the engine
    and in the dialog alike."""
    from qgis.core import QgsApplication
    from treeseg.treeseg_plugin.engine.jobs.canopy_height import CanopyHeightConfig

    algorithm = QgsApplication.processingRegistry().algorithmById(ALGORITHM)
    assert getattr(CanopyHeightConfig("in.tif", "out.tif"), name.lower()) == engine_default
    assert algorithm.parameterDefinition(name).defaultValue() == engine_default
