"""Fit once, apply everywhere through Processing: Fit Cluster Model and Segment Trees' cluster model
parameters in processing.run, a graphical model, and the real qgis_process.bin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batch_panel import dispose, row_parameters
from data_factory import make_raster
from engine_runs import legend
from processing_models import add_step, child, child_output, model_input, new_model, static
from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
)
from qgis_process_runner import enable_plugin, qgis_process_env, run, run_algorithm

FIT = "treeseg:fitclustermodel"
SEGMENT = "treeseg:segmenttrees"
SMALL = {"TILE_SIZE": 64, "OVERLAP": 16, "K_MAX": 4}


@pytest.fixture()
def rasters(tmp_path) -> list[Path]:
    return [make_raster(tmp_path / "north.tif", 128, 96, kind="blobs"),
            make_raster(tmp_path / "south.tif", 96, 96, kind="blobs", seed=2)]


def test_fit_cluster_model_definition(treeseg_provider, rasters):
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(FIT)
    segment = QgsApplication.processingRegistry().createAlgorithmById(SEGMENT)
    assert algorithm.displayName() == "Fit Cluster Model"
    assert "in proportion to their valid" in algorithm.shortHelpString()
    names = [p.name() for p in algorithm.parameterDefinitions()]
    assert names[:4] == ["INPUT", "WORKING_RESOLUTION", "BANDS", "EXTENT"] and names[-1] == "OUTPUT"
    assert "Only for inputs that are not files" in algorithm.parameterDefinition("EXTENT").help()  # web layers
    for name in [names[1], *names[4:-1]]:  # Segment Trees' own definitions: the same defaults, ranges and flags
        ours, theirs = algorithm.parameterDefinition(name), segment.parameterDefinition(name)
        assert (ours.type(), ours.defaultValue(), ours.flags(), ours.help()) == \
            (theirs.type(), theirs.defaultValue(), theirs.flags(), theirs.help()), name
    assert {o.name(): o.type() for o in algorithm.outputDefinitions()} == {"OUTPUT": "outputFile",
                                                                           "CHOSEN_K": "outputNumber"}
    context, inputs = QgsProcessingContext(), [str(r) for r in rasters]
    for bands, fragment in (("1,2", "choose 3 bands"), ("red", "give band numbers such as 3,2,1"), ("3 2 1", "")):
        ok, message = algorithm.checkParameterValues({"INPUT": inputs, "BANDS": bands, "OUTPUT": "m.tscm"}, context)
        assert (ok, fragment in message) == (not fragment, True), message


def test_fit_on_several_rasters_then_segment_each_with_the_model(treeseg_provider, tiny, rasters, tmp_path):
    import processing

    model = tmp_path / "models" / "forest.tscm"
    fitted = processing.run(FIT, {"INPUT": [str(r) for r in rasters], "BANDS": "1,2,3", "WEIGHTS": tiny, **SMALL,
                                  "OUTPUT": str(model)})
    assert fitted["OUTPUT"] == str(model) and model.is_file() and 2 <= fitted["CHOSEN_K"] <= 4
    outputs = []
    for raster in rasters:
        result = processing.run(SEGMENT, {"INPUT": str(raster), "WEIGHTS": tiny, "CLUSTER_MODEL": str(model),
                                          **SMALL, "K": 2, "OUTPUT": str(tmp_path / f"{raster.stem}-labels.tif")})
        assert result["CHOSEN_K"] == fitted["CHOSEN_K"]  # the model's K, not the K setting
        assert result["CLUSTER_MODEL_OUTPUT"] is None
        outputs.append(result["OUTPUT"])
    assert legend(outputs[0]) == legend(outputs[1])

    saved = tmp_path / "saved.tscm"
    result = processing.run(SEGMENT, {"INPUT": str(rasters[0]), "WEIGHTS": tiny, **SMALL,
                                      "OUTPUT": str(tmp_path / "own.tif"), "CLUSTER_MODEL_OUTPUT": str(saved)})
    assert result["CLUSTER_MODEL_OUTPUT"] == str(saved) and saved.is_file()


def build_model() -> QgsProcessingModelAlgorithm:
    """Fit Cluster Model on the survey's rasters, then Segment Trees applies the model to one of them."""
    model = new_model("Fit and segment", QgsProcessingParameterMultipleLayers("survey", "Survey rasters",
                                                                              QgsProcessing.SourceType.TypeRaster),
                      QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
                      QgsProcessingParameterFile("weights", "Weights"))
    small = {name: static(value) for name, value in SMALL.items()}
    add_step(model, child(FIT, "fit", {"INPUT": model_input("survey"), "WEIGHTS": model_input("weights"), **small}))
    add_step(model, child(SEGMENT, "segment", {"INPUT": model_input("ortho"), "WEIGHTS": model_input("weights"),
                                               **small, "CLUSTER_MODEL": child_output("fit", "OUTPUT")}),
             {"labels": ("Labels", "OUTPUT")})
    return model


@pytest.mark.slow
def test_a_graphical_model_fits_then_applies_in_processing_and_qgis_process(treeseg_provider, tiny, rasters,
                                                                            tmp_path, plugins_dir):
    import processing

    model = build_model()
    ok, errors = model.validate()
    assert ok, errors
    [labels] = [p.name() for p in model.destinationParameterDefinitions()]
    inputs = {"survey": [str(r) for r in rasters], "ortho": str(rasters[1]), "weights": tiny}
    first = processing.run(model, {**inputs, labels: str(tmp_path / "labels.tif")})
    model_file = tmp_path / "fit_and_segment.model3"
    assert model.toFile(str(model_file))
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    args = ["--json", "run", str(model_file), "--", *(f"survey={r}" for r in rasters), f"ortho={rasters[1]}",
            f"weights={tiny}", f"{labels}={tmp_path / 'labels2.tif'}"]
    done = run(args, env)
    assert done.returncode == 0, done.stdout + done.stderr
    second = json.loads(done.stdout[done.stdout.index("{"):])["results"][labels]
    assert Path(first[labels]).read_bytes() == Path(second).read_bytes()


@pytest.mark.slow
def test_qgis_process_fits_and_applies(tiny, rasters, tmp_path, plugins_dir):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    helped = run(["help", FIT], env)
    assert helped.returncode == 0 and "INPUT: Orthophotos" in helped.stdout and "OUTPUT: <outputFile>" in helped.stdout
    model = tmp_path / "m.tscm"
    done = run(["--json", "run", FIT, "--", *(f"INPUT={r}" for r in rasters), f"WEIGHTS={tiny}",
                *(f"{k}={v}" for k, v in SMALL.items()), f"OUTPUT={model}"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WCSS" in done.stdout and "in a worker process" in done.stdout and model.is_file()
    done, payload = run_algorithm(SEGMENT, {"INPUT": rasters[0], "WEIGHTS": tiny, "CLUSTER_MODEL": model, **SMALL,
                                            "OUTPUT": tmp_path / "labels.tif"}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no k-means fit and no K sweep" in done.stdout
    assert payload["results"]["OUTPUT"] == str(tmp_path / "labels.tif")


def test_the_batch_dialog_applies_one_model_to_each_raster(treeseg_provider, qgis_iface, tiny, rasters, tmp_path):
    """QGIS's own Batch dialog: its table widgets take the cluster model file and destination, and the
    parameters of each row run (with processing.run: the dialog's own runner differs between QGIS versions and
    aborted offscreen on 3.44)."""
    import processing
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    model = tmp_path / "m.tscm"
    processing.run(FIT, {"INPUT": [str(r) for r in rasters], "WEIGHTS": tiny, **SMALL, "OUTPUT": str(model)})
    algorithm = QgsApplication.processingRegistry().createAlgorithmById(SEGMENT)
    dialog = BatchAlgorithmDialog(algorithm, parent=qgis_iface.mainWindow())
    panel = dialog.mainWidget()
    panel.addRow()
    context = QgsProcessingContext()
    panel.checkLoadLayersOnCompletion.setChecked(False)
    for row, raster in enumerate(rasters):
        values = {"INPUT": str(raster), "WEIGHTS": tiny, "CLUSTER_MODEL": str(model), **SMALL}
        for name, value in values.items():
            panel.wrappers[row][panel.parameter_to_column[name]].setParameterValue(value, context)
        for name, value in (("OUTPUT", tmp_path / f"{raster.stem}-labels.tif"), ("CLUSTER_MODEL_OUTPUT", "")):
            panel.tblParameters.cellWidget(row + 1, panel.parameter_to_column[name]).setValue(str(value))
        parameters, ok = row_parameters(panel, row)
        assert ok and parameters["CLUSTER_MODEL"] == str(model)
        processing.run(SEGMENT, parameters)
    outputs = [tmp_path / f"{raster.stem}-labels.tif" for raster in rasters]
    assert all(path.is_file() for path in outputs)
    assert legend(outputs[0]) == legend(outputs[1])
    dispose(dialog)


def test_the_toolbox_dialogs_take_the_cluster_model_parameters(treeseg_provider, processing_iface, rasters, tmp_path):
    """QGIS's own algorithm dialogs build a widget for every parameter and give the values back."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    model, out = str(tmp_path / "m.tscm"), str(tmp_path / "labels.tif")
    for algorithm_id, values in ((FIT, {"INPUT": [str(r) for r in rasters], "BANDS": "3,2,1", "OUTPUT": model}),
                                 (SEGMENT, {"INPUT": str(rasters[0]), "CLUSTER_MODEL": model, "OUTPUT": out,
                                            "CLUSTER_MODEL_OUTPUT": str(tmp_path / "saved.tscm")})):
        dialog = AlgorithmDialog(registry.createAlgorithmById(algorithm_id), parent=processing_iface.mainWindow())
        dialog.setParameters(values)
        parameters = dialog.createProcessingParameters()
        for name, value in values.items():
            given = parameters[name]
            assert (given if isinstance(given, (str, list)) else given.sink.staticValue()) == value, name
        dispose(dialog)


@pytest.mark.slow
def test_qgis_process_takes_bands_as_3_2_1_in_every_algorithm(tiny, rasters, tmp_path, plugins_dir):
    """BANDS=3,2,1 through the real qgis_process.bin: Fit Cluster Model fits on bands 3,2,1 and Segment Trees
    applies that model, which it refuses unless it reads the same three bands in the same order."""
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    model = tmp_path / "m.tscm"
    done, _ = run_algorithm(FIT, {"INPUT": rasters[0], "BANDS": "3,2,1", "WEIGHTS": tiny, **SMALL, "OUTPUT": model},
                            env)
    assert done.returncode == 0, done.stdout + done.stderr
    done, payload = run_algorithm(SEGMENT, {"INPUT": rasters[1], "BANDS": "3,2,1", "WEIGHTS": tiny,
                                            "CLUSTER_MODEL": model, **SMALL, "OUTPUT": tmp_path / "labels.tif"}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert payload["results"]["OUTPUT"] == str(tmp_path / "labels.tif")
    done, _ = run_algorithm(SEGMENT, {"INPUT": rasters[1], "BANDS": "1,2,3", "WEIGHTS": tiny,
                                      "CLUSTER_MODEL": model, **SMALL, "OUTPUT": tmp_path / "other.tif"}, env)
    assert done.returncode != 0 and "the model uses bands [3, 2, 1] as RGB, this run [1, 2, 3]" in done.stdout + \
        done.stderr
    for algorithm, output in ((SEGMENT, "bad.tif"), (FIT, "bad.tscm")):
        done, _ = run_algorithm(algorithm, {"INPUT": rasters[0], "BANDS": "3,x", "WEIGHTS": tiny,
                                            "OUTPUT": tmp_path / output}, env)
        output_text = done.stdout + done.stderr
        assert done.returncode != 0 and "Bands '3,x': give band numbers such as 3,2,1" in output_text, output_text
        assert "Traceback" not in output_text and not (tmp_path / output).exists()


def test_every_algorithm_reads_bands_in_both_forms(treeseg_provider, rasters):
    """The picker's list, text with commas (what qgis_process and String inputs give) and repeated values;
    a bad value is refused with what was given."""
    from qgis.core import QgsApplication

    context = QgsProcessingContext()
    for algorithm_id in (SEGMENT, FIT, "treeseg:canopyheight"):
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(algorithm_id)
        raster = [str(rasters[0])] if algorithm_id == FIT else str(rasters[0])
        for bands in ([3, 2, 1], "3,2,1", ["3", "2", "1"]):
            ok, message = algorithm.checkParameterValues({"INPUT": raster, "BANDS": bands, "OUTPUT": "out"}, context)
            assert ok, (algorithm_id, bands, message)
        ok, message = algorithm.checkParameterValues({"INPUT": raster, "BANDS": "3,x", "OUTPUT": "out"}, context)
        assert not ok and "Bands '3,x'" in message, (algorithm_id, message)
