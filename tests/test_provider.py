"""The provider and the Segment Trees algorithm's definition, through the Processing registry."""

from __future__ import annotations

import configparser
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from qgis.core import QgsProcessingContext, QgsProcessingParameterDefinition

ALGORITHM_ID = "treeseg:segmenttrees"
EXPECTED_PARAMETERS = [
    "INPUT", "WORKING_RESOLUTION", "BANDS", "EXTENT", "MODEL", "WEIGHTS", "DEVICE", "PRECISION", "STRIDE", "K",
    "K_MIN", "K_MAX",
    "ELBOW_THRESHOLD", "SEED", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "MAX_SAMPLES", "ALLOW_DOWNLOAD",
    "CLUSTER_MODEL", "NIR_BAND", "CANOPY_HEIGHT", "MIN_TREE_HEIGHT", "TREE_CLUSTERS", "MIN_CROWN_AREA",
    "OUTPUT", "STATS", "OUTPUT_POLYGONS", "CLUSTER_MODEL_OUTPUT", "TREES", "CROWNS",
]
ADVANCED = {"TILE_SIZE", "OVERLAP", "BATCH_SIZE", "MAX_SAMPLES", "ALLOW_DOWNLOAD", "NIR_BAND", "MIN_TREE_HEIGHT",
            "TREE_CLUSTERS", "MIN_CROWN_AREA"}
SAMPLE = "sample/OSBS_029.tif"


@pytest.fixture()
def algorithm(treeseg_provider):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM_ID)


def test_provider_identity(treeseg_provider):
    assert treeseg_provider.id() == "treeseg"
    assert treeseg_provider.name() == "Tree segmentation"
    assert "torch 2." in treeseg_provider.versionInfo()
    assert sorted(alg.id() for alg in treeseg_provider.algorithms()) == [
        "treeseg:Tree Inventory", "treeseg:canopyheight", "treeseg:classifyexamples", "treeseg:diagnostics",
        "treeseg:fitclustermodel", ALGORITHM_ID]


def test_help_urls_are_sections_of_the_homepage_in_metadata(treeseg_provider):
    repository = Path(__file__).resolve().parent.parent
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(repository / "metadata.txt", encoding="utf-8")
    homepage = metadata.get("general", "homepage")
    headings = re.findall(r"^#+ (.+)$", (repository / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
    anchors = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}  # GitHub's rule
    for algorithm in treeseg_provider.algorithms():
        url, _, anchor = algorithm.helpUrl().partition("#")
        assert url == homepage and anchor in anchors, (algorithm.id(), algorithm.helpUrl())


def test_algorithm_identity_and_help(algorithm):
    assert algorithm.displayName() == "Segment Trees"
    assert algorithm.group() == "Segmentation"
    help_text = algorithm.shortHelpString()
    assert "smallest K whose step to K+1 lowers" in help_text
    assert "unit length" in help_text
    assert algorithm.helpUrl().startswith("https://")
    assert algorithm.canExecute() == (True, "")


def test_parameter_and_output_definitions(algorithm):
    names = [parameter.name() for parameter in algorithm.parameterDefinitions()]
    assert names == EXPECTED_PARAMETERS
    advanced = {parameter.name() for parameter in algorithm.parameterDefinitions()
                if parameter.flags() & QgsProcessingParameterDefinition.Flag.FlagAdvanced}
    assert advanced == ADVANCED
    assert all(parameter.help() for parameter in algorithm.parameterDefinitions())
    outputs = {output.name(): output.type() for output in algorithm.outputDefinitions()}
    # STATS is an HTML output because its filter offers .html: the report then opens in the Results viewer.
    assert outputs == {"OUTPUT": "outputRaster", "STATS": "outputHtml",
                       "OUTPUT_POLYGONS": "outputVector", "CLUSTER_MODEL_OUTPUT": "outputFile",
                       "TREES": "outputRaster", "CROWNS": "outputVector",
                       "CHOSEN_K": "outputNumber"}
    model = algorithm.parameterDefinition("MODEL")
    assert model.options()[model.defaultValue()].startswith("ViT-S/16")
    assert any("SAT-493M" in option for option in model.options())
    assert algorithm.parameterDefinition("ALLOW_DOWNLOAD").defaultValue() is False
    assert algorithm.parameterDefinition("K").defaultValue() == 0


@pytest.mark.parametrize("name", ["K", "K_MIN", "K_MAX", "ELBOW_THRESHOLD", "SEED", "TILE_SIZE", "OVERLAP",
                                  "BATCH_SIZE", "MAX_SAMPLES", "MIN_TREE_HEIGHT", "MIN_CROWN_AREA",
                                  "WORKING_RESOLUTION"])
def test_numeric_defaults_are_the_engine_defaults(algorithm, name):
    from treeseg.treeseg_plugin.engine.jobs.segmentation import SegmentationConfig

    engine_default = getattr(SegmentationConfig("in.tif", "out.tif"), name.lower())
    assert algorithm.parameterDefinition(name).defaultValue() == engine_default


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"K_MIN": 8, "K_MAX": 3}, "Minimum K (8) is larger than maximum K (3)"),
    ({"TILE_SIZE": 500}, "not a multiple of 16: use 496"),
    ({"OVERLAP": 40}, "overlap 40 is not a multiple of 16"),
    ({"TILE_SIZE": 256, "OVERLAP": 128}, "less than half the tile size"),
    ({"BANDS": [1, 2, 7]}, "Band(s) [7] do not exist: the input has bands 1 to 3"),
    ({"BANDS": [1, 2]}, "choose 3 bands (red, green, blue) or 1 band"),
    ({"CLUSTER_MODEL": "m.json"}, "CLUSTER_MODEL"),  # QGIS checks the file filter itself
    ({"CLUSTER_MODEL": "a.tscm", "CLUSTER_MODEL_OUTPUT": "b.tscm"}, "applying a model fits nothing"),
    ({"TREE_CLUSTERS": "2, x"}, "give cluster numbers separated by commas, e.g. 2,5"),
    ({"K": 3, "TREE_CLUSTERS": "1,4"}, "name a cluster above K = 3"),
])
def test_check_parameter_values_rejects_what_cannot_work(algorithm, overrides, fragment):
    parameters = {"INPUT": SAMPLE, "OUTPUT": "TEMPORARY_OUTPUT", **overrides}
    ok, message = algorithm.checkParameterValues(parameters, QgsProcessingContext())
    assert not ok
    assert fragment in message


def test_check_parameter_values_accepts_defaults(algorithm):
    ok, message = algorithm.checkParameterValues({"INPUT": SAMPLE, "OUTPUT": "TEMPORARY_OUTPUT"},
                                                 QgsProcessingContext())
    assert (ok, message) == (True, "")


ENGINE_PACKAGES = ("torch", "safetensors", "huggingface_hub")


def _folders_of(distributions: tuple[str, ...]) -> set[str]:
    """The ``sys.path`` folders that hold any of ``distributions``."""
    folders = set()
    for name in distributions:
        for found in importlib.metadata.distributions(name=name):
            folders.add(str(Path(str(found.locate_file(""))).resolve()))
    return folders


def _engine_package_folders() -> set[str]:
    """The ``sys.path`` folders that hold the engine's packages: without them, this Python is one without those
    packages. Skips the test where they share a folder with QGIS's Python modules (Debian's python3-torch)."""
    folders = _folders_of(ENGINE_PACKAGES)
    if any((Path(folder) / "qgis").is_dir() for folder in folders):
        pytest.skip("the engine's packages lie beside QGIS's Python modules (Debian's python3-torch)")
    return folders


def test_can_execute_refuses_without_torch(algorithm, monkeypatch):
    folders = _engine_package_folders()
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if str(Path(entry).resolve()) not in folders])
    ok, message = algorithm.canExecute()
    assert not ok
    assert "torch is not installed" in message and "safetensors is not installed" in message
    assert "TreeSeg message bar" in message and "Installing the dependencies" in message
    assert "pip install" not in message and "below 2" not in message


WITHOUT_TORCH = """
import os, sys
sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry) not in sys.argv[1:]]  # no engine packages
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
import treeseg
plugin = treeseg.classFactory(None)
plugin.initProcessing()
algorithm = QgsApplication.processingRegistry().algorithmById("treeseg:segmenttrees")
ok, message = algorithm.canExecute()
print("MODELS", len(algorithm.parameterDefinition("MODEL").options()))
print("CAN_EXECUTE", ok)
print("MESSAGE", message)
print("VERSION", plugin.provider.versionInfo())
from treeseg.treeseg_plugin.gui.weights_dialog import WeightsDialog
dialog = WeightsDialog()
print("WEIGHTS_ROWS", dialog.table.rowCount())
"""


def test_provider_registers_without_torch_and_explains(plugins_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(plugins_dir), "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *_engine_package_folders()], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "MODELS 9" in done.stdout
    assert "CAN_EXECUTE False" in done.stdout
    assert "torch is not installed" in done.stdout and "safetensors is not installed" in done.stdout
    assert "scikit-learn" not in done.stdout  # not a runtime dependency
    assert "Install..." in done.stdout and "numpy" in done.stdout
    assert "pip install" not in done.stdout  # refused by Debian's externally managed Python
    assert "PyTorch not installed" in done.stdout
    assert "WEIGHTS_ROWS 10" in done.stdout  # the weights manager opens too: 9 ViTs and CHMv2
