"""Segment Trees end to end through Processing: processing.run, a graphical model, and qgis_process.bin.

Real QGIS 3.22, GDAL and qgis_process; the real DINOv3 architecture on random-weight checkpoints that
the tests write in Meta's format.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster, vegetation_scene, write_chm, write_scene
from osgeo import gdal
from processing_models import add_step, child, child_output, model_input, new_model, static
from qgis.core import (
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis_process_runner import enable_plugin, qgis_process_env, run_algorithm

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
ALGORITHM = "treeseg:segmenttrees"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A ViT-S/16-shaped and a tiny random-weight checkpoint, both in Meta's .pth layout."""
    folder = tmp_path_factory.mktemp("weights")
    return {
        "vits16": write_meta_pth(folder / "dinov3_vits16_random.pth", make_state_dict("vits16", seed=0)),
        "tiny": write_meta_pth(folder / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0)),
    }


def run_segment_trees(parameters: dict, feedback: QgsProcessingFeedback | None = None) -> dict:
    import processing

    return processing.run(ALGORITHM, parameters, feedback=feedback)


def read_labels(path: str | Path) -> tuple[gdal.Dataset, np.ndarray]:
    dataset = gdal.Open(str(path))
    return dataset, dataset.GetRasterBand(1).ReadAsArray()


def elbow_by_hand(wcss: dict[str, float], threshold_percent: float) -> int:
    """docs/segment-trees.md's elbow rule on a stats file's WCSS table: the smallest K whose step to K+1 lowers
    the WCSS by less than ``threshold_percent`` percent; the largest K when no step is that small."""
    ks = sorted(int(k) for k in wcss)
    for k in ks[:-1]:
        now, following = wcss[str(k)], wcss[str(k + 1)]
        if 100.0 * (now - following) / now < threshold_percent:
            return k
    return ks[-1]


def test_bundled_sample_with_vits16(treeseg_provider, checkpoints, tmp_path):
    output, stats = tmp_path / "labels.tif", tmp_path / "stats.json"
    results = run_segment_trees({"INPUT": str(SAMPLE), "WEIGHTS": str(checkpoints["vits16"]),
                                 "OUTPUT": str(output), "STATS": str(stats)})

    assert set(results) == {"OUTPUT", "STATS", "OUTPUT_POLYGONS", "CLUSTER_MODEL_OUTPUT", "TREES", "CROWNS", "CHOSEN_K"}
    assert results["CLUSTER_MODEL_OUTPUT"] is None
    assert results["OUTPUT"] == str(output)
    chosen_k = results["CHOSEN_K"]
    assert 2 <= chosen_k <= 10

    source = gdal.Open(str(SAMPLE))
    labels_ds, labels = read_labels(output)
    assert (labels_ds.RasterXSize, labels_ds.RasterYSize) == (source.RasterXSize, source.RasterYSize)
    assert labels_ds.GetGeoTransform() == source.GetGeoTransform()
    assert labels_ds.GetSpatialRef().IsSame(source.GetSpatialRef())
    band = labels_ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte
    assert band.GetNoDataValue() == 0
    assert band.GetColorTable().GetCount() >= chosen_k + 1
    assert set(np.unique(labels)) <= set(range(chosen_k + 1))
    assert set(np.unique(labels[labels > 0])) == set(range(1, chosen_k + 1))

    rgb = source.ReadAsArray()
    nodata = (rgb == 255).any(axis=0)  # NoData is declared per band: one band at 255 makes the pixel NoData
    assert nodata.any()
    assert (labels[nodata] == 0).all()
    assert (labels[~nodata] > 0).all()

    report = json.loads(stats.read_text())
    assert report["chosen_k"] == chosen_k
    assert sorted(int(k) for k in report["wcss"]) == list(range(2, 11))
    assert chosen_k == elbow_by_hand(report["wcss"], 5.0)  # the documented default threshold, 5 %
    assert sum(report["cluster_pixels"].values()) == int((labels > 0).sum())

    layer = QgsRasterLayer(str(output), "labels")
    assert layer.isValid()
    assert layer.renderer().type() == "paletted"  # the .qml sidecar is the layer's default style


def test_synthetic_raster_fixed_k_with_polygons(treeseg_provider, checkpoints, tmp_path):
    raster = make_raster(tmp_path / "ortho.tif", 160, 96, kind="regions")
    polygons = tmp_path / "out" / "regions.gpkg"
    results = run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(checkpoints["tiny"]), "K": 3,
                                 "TILE_SIZE": 64, "OVERLAP": 16, "OUTPUT": str(tmp_path / "out" / "labels.tif"),
                                 "OUTPUT_POLYGONS": str(polygons)})
    assert results["CHOSEN_K"] == 3
    _, labels = read_labels(results["OUTPUT"])
    assert labels.shape == (96, 160)
    assert set(np.unique(labels)) == {1, 2, 3}
    assert results["OUTPUT_POLYGONS"] == str(polygons)
    layer = QgsVectorLayer(str(polygons), "polygons", "ogr")
    assert layer.isValid()
    assert {"cluster", "area"} <= set(layer.fields().names())
    features = list(layer.getFeatures())
    assert {feature["cluster"] for feature in features} == {1, 2, 3}
    assert sum(feature["area"] for feature in features) == pytest.approx(160 * 96 * 0.1 * 0.1, rel=1e-6)


def test_fit_settings_travel_from_processing_to_the_engine(treeseg_provider, checkpoints, tmp_path):
    """Non-default ELBOW_THRESHOLD, SEED, MAX_SAMPLES, STRIDE, BATCH_SIZE and K_MIN arrive in the engine: the stats
    file records each, the WCSS table starts at K_MIN, the fit sample has MAX_SAMPLES rows, the patch grid has the
    stride's size, and K is the elbow of the run's own WCSS table at that threshold."""
    raster = make_raster(tmp_path / "ortho.tif", 128, 96, kind="blobs", seed=2)
    stats = tmp_path / "stats.json"
    feedback = QgsProcessingFeedback()
    log: list[str] = []
    feedback.pushInfo = log.append
    results = run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(checkpoints["tiny"]), "TILE_SIZE": 64,
                                 "OVERLAP": 16, "ELBOW_THRESHOLD": 12.5, "SEED": 7, "MAX_SAMPLES": 150,
                                 "STRIDE": 1, "BATCH_SIZE": 3, "K_MIN": 3, "K_MAX": 8,
                                 "OUTPUT": str(tmp_path / "labels.tif"), "STATS": str(stats)}, feedback)
    report = json.loads(stats.read_text())
    assert (report["elbow_threshold"], report["seed"], report["max_samples"], report["stride"],
            report["batch_size"], report["k_min"], report["k_max"]) == (12.5, 7, 150, 8, 3, 3, 8)
    assert sorted(int(k) for k in report["wcss"]) == list(range(3, 9))
    # stride 8 on 128 x 96 px: (128 - 16) / 8 + 1 = 15 by (96 - 16) / 8 + 1 = 11 patches, all valid
    assert report["patches"] == {"valid": 15 * 11, "sampled": 150}
    assert any("Fitting on 150 of 165 valid patches (seed 7)." in line for line in log)
    assert results["CHOSEN_K"] == report["chosen_k"] == elbow_by_hand(report["wcss"], 12.5)


@pytest.mark.parametrize("mode", [False, True])
def test_qgis_gdal_error_mode_is_unchanged_by_checks_and_runs(treeseg_provider, checkpoints, tmp_path, mode):
    """GDAL's exception mode is QGIS's, for the whole process: a refused input (GDAL's reason in the message)
    and a run leave it as QGIS had it."""
    previous = gdal.GetUseExceptions()
    (gdal.UseExceptions if mode else gdal.DontUseExceptions)()
    try:
        (tmp_path / "bad.tif").write_text("not a raster")
        with pytest.raises(QgsProcessingException, match="GDAL does not recognise it"):
            run_segment_trees({"INPUT": str(tmp_path / "bad.tif"), "WEIGHTS": str(checkpoints["tiny"]),
                               "OUTPUT": str(tmp_path / "bad-labels.tif")})
        assert gdal.GetUseExceptions() == mode
        raster = make_raster(tmp_path / "ortho.tif", 96, 96)
        run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(checkpoints["tiny"]), "K": 2, "TILE_SIZE": 64,
                           "OVERLAP": 16, "OUTPUT": str(tmp_path / "labels.tif")})
        assert gdal.GetUseExceptions() == mode
    finally:
        (gdal.UseExceptions if previous else gdal.DontUseExceptions)()


def test_cancel_leaves_no_output(treeseg_provider, checkpoints, tmp_path):
    raster = make_raster(tmp_path / "ortho.tif", 128, 128)
    destination = tmp_path / "out"
    destination.mkdir()
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda percent: feedback.cancel() if percent > 5 else None)
    with pytest.raises(QgsProcessingException, match=r"[Cc]ancel"):
        run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(checkpoints["tiny"]), "TILE_SIZE": 64,
                           "OVERLAP": 16, "OUTPUT": str(destination / "labels.tif"),
                           "STATS": str(destination / "stats.json")}, feedback)
    assert list(destination.iterdir()) == []


def test_missing_weights_is_a_clear_error_not_random_weights(treeseg_provider, tmp_path):
    with pytest.raises(QgsProcessingException) as raised:
        run_segment_trees({"INPUT": str(SAMPLE), "OUTPUT": str(tmp_path / "labels.tif")})
    message = str(raised.value)
    assert "facebook/dinov3-vits16-pretrain-lvd1689m" in message
    assert "licence" in message or "license" in message
    assert not (tmp_path / "labels.tif").exists()


def build_model() -> QgsProcessingModelAlgorithm:
    """Segment Trees (K = 3) feeding QGIS's raster unique-values report."""
    model = new_model("Segment and report", QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
                      QgsProcessingParameterFile("weights", "Weights"))
    add_step(model, child(ALGORITHM, "segment", {
        "INPUT": model_input("ortho"), "WEIGHTS": model_input("weights"),
        "K": static(3), "TILE_SIZE": static(64), "OVERLAP": static(16)}))
    add_step(model, child("native:rasterlayeruniquevaluesreport", "report", {
        "INPUT": child_output("segment", "OUTPUT"), "BAND": static(1)}),
        {"unique_values": ("Unique values", "OUTPUT_TABLE")})
    return model


def unique_label_values(table_path: str) -> set[int]:
    layer = QgsVectorLayer(table_path, "table", "ogr")
    assert layer.isValid()
    return {round(float(feature["value"])) for feature in layer.getFeatures()}


@pytest.mark.slow
def test_graphical_model_chains_output_in_processing_and_qgis_process(treeseg_provider, checkpoints, tmp_path,
                                                                      plugins_dir):
    import processing

    raster = make_raster(tmp_path / "ortho.tif", 128, 96, kind="regions")
    model = build_model()
    ok, errors = model.validate()
    assert ok, errors
    # the model's destination: "report:unique_values" on QGIS 3.22, named otherwise by newer QGIS
    [table] = [parameter.name() for parameter in model.destinationParameterDefinitions()]
    results = processing.run(model, {"ortho": str(raster), "weights": str(checkpoints["tiny"]),
                                     table: str(tmp_path / "values.csv")})
    assert unique_label_values(results[table]) == {1, 2, 3}

    model_file = tmp_path / "segment_and_report.model3"
    assert model.toFile(str(model_file))
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    done, payload = run_algorithm(str(model_file), {
        "ortho": raster, "weights": checkpoints["tiny"], table: tmp_path / "values2.csv"}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert unique_label_values(payload["results"][table]) == {1, 2, 3}


@pytest.mark.slow
def test_qgis_process_run_returns_declared_outputs(checkpoints, tmp_path, plugins_dir):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    output = tmp_path / "labels.tif"
    done, payload = run_algorithm(ALGORITHM, {"INPUT": SAMPLE, "WEIGHTS": checkpoints["tiny"], "K_MAX": 5,
                                              "OUTPUT": output}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    results = payload["results"]
    assert results["OUTPUT"] == str(output)
    assert 2 <= results["CHOSEN_K"] <= 5
    assert "WCSS" in done.stdout
    labels_ds, labels = read_labels(output)
    assert labels_ds.GetGeoTransform() == gdal.Open(str(SAMPLE)).GetGeoTransform()
    assert labels.max() == results["CHOSEN_K"]
    assert (output.parent / "labels.qml").exists()


RUN_IN_FRESH_QGIS = """
import json, sys
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
import processing, treeseg
plugin = treeseg.classFactory(None)
plugin.initProcessing()
print("VERSION", plugin.provider.versionInfo())
results = processing.run("treeseg:segmenttrees", json.loads(sys.argv[1]))
print("CHOSEN_K", results["CHOSEN_K"])
print("IMPORTED", sorted({"torch", "safetensors", "huggingface_hub", "sklearn"} & set(sys.modules)))
"""


def test_qgis_never_imports_the_engine_packages_itself(checkpoints, tmp_path, plugins_dir):
    """Checking, describing and running Segment Trees leave torch to the worker: importing it in QGIS costs
    seconds and binds its BLAS there (issue 11)."""
    parameters = {"INPUT": str(SAMPLE), "WEIGHTS": str(checkpoints["tiny"]), "K": 3,
                  "OUTPUT": str(tmp_path / "labels.tif")}
    env = {**qgis_process_env(tmp_path / "home", plugins_dir), "PYTHONPATH": str(plugins_dir)}
    done = subprocess.run([sys.executable, "-c", RUN_IN_FRESH_QGIS, json.dumps(parameters)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERSION TreeSeg" in done.stdout and "; torch 2." in done.stdout
    assert "CHOSEN_K 3" in done.stdout
    assert "IMPORTED []" in done.stdout
    assert (tmp_path / "labels.tif").exists()


def build_crowns_model() -> QgsProcessingModelAlgorithm:
    """Segment Trees (K = 4, a canopy height raster) -> its CROWNS -> native:buffer."""
    model = new_model("Crowns and buffer", QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
                      QgsProcessingParameterRasterLayer("chm", "Canopy heights"),
                      QgsProcessingParameterFile("weights", "Weights"))
    add_step(model, child(ALGORITHM, "segment", {
        "INPUT": model_input("ortho"), "WEIGHTS": model_input("weights"), "CANOPY_HEIGHT": model_input("chm"),
        "K": static(4), "TILE_SIZE": static(64), "OVERLAP": static(16)}),
        {"crowns": ("Crowns", "CROWNS")})  # an intermediate output the buffer reads
    add_step(model, child("native:buffer", "buffer", {
        "INPUT": child_output("segment", "CROWNS"), "DISTANCE": static(1.0)}),
        {"buffered": ("Buffered crowns", "OUTPUT")})
    return model


@pytest.mark.slow
def test_crowns_chain_into_buffer_in_a_model_and_qgis_process(treeseg_provider, checkpoints, tmp_path, plugins_dir):
    import processing

    scene = vegetation_scene()
    ortho = write_scene(tmp_path / "ortho.tif", scene)
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=3857, pixel_size=1.0)
    model = build_crowns_model()
    ok, errors = model.validate()
    assert ok, errors
    names = {parameter.name() for parameter in model.destinationParameterDefinitions()}
    [buffered] = [name for name in names if "buffered" in name]
    [crowns] = [name for name in names if "crowns" in name and name != buffered]
    results = processing.run(model, {"ortho": str(ortho), "chm": str(chm), "weights": str(checkpoints["tiny"]),
                                     crowns: str(tmp_path / "crowns.gpkg"), buffered: str(tmp_path / "buf.gpkg")})
    layer = QgsVectorLayer(results[buffered], "buffered", "ogr")
    assert layer.isValid() and 30 <= layer.featureCount() <= 42  # 36 trees
    assert {"crown_id", "area_m2", "height_max", "height_mean", "cluster"} <= set(layer.fields().names())

    model_file = tmp_path / "crowns.model3"
    assert model.toFile(str(model_file))
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    done, payload = run_algorithm(str(model_file), {
        "ortho": ortho, "chm": chm, "weights": checkpoints["tiny"], crowns: tmp_path / "c2.gpkg",
        buffered: tmp_path / "b2.gpkg"}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert QgsVectorLayer(payload["results"][buffered], "b", "ogr").featureCount() == layer.featureCount()


@pytest.mark.slow
def test_qgis_process_writes_trees_and_crowns_on_the_input_grid(checkpoints, tmp_path, plugins_dir):
    scene = vegetation_scene()
    ortho = write_scene(tmp_path / "ortho.tif", scene, nir=True)
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    done, payload = run_algorithm(ALGORITHM, {
        "INPUT": ortho, "WEIGHTS": checkpoints["tiny"], "K": 4, "TILE_SIZE": 64, "OVERLAP": 16,
        "NIR_BAND": 4, "OUTPUT": tmp_path / "labels.tif", "TREES": tmp_path / "trees.tif",
        "CROWNS": tmp_path / "crowns.gpkg", "MIN_CROWN_AREA": 2, "STATS": tmp_path / "stats.json"}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    results = payload["results"]
    assert results["TREES"] == str(tmp_path / "trees.tif") and results["CROWNS"] == str(tmp_path / "crowns.gpkg")
    source, mask = gdal.Open(str(ortho)), gdal.Open(results["TREES"])
    assert mask.GetGeoTransform() == source.GetGeoTransform()
    assert mask.GetSpatialRef().IsSame(source.GetSpatialRef())
    assert "Which clusters are trees" in done.stdout and "NDVI" in done.stdout
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert {c["basis"] for c in stats["trees"]["clusters"].values()} == {"ndvi"}
    crowns = QgsVectorLayer(results["CROWNS"], "crowns", "ogr")
    assert crowns.isValid() and crowns.featureCount() == stats["trees"]["crowns"] > 0
    assert crowns.crs().authid() == "EPSG:32617"
    assert all(feature["area_m2"] >= 2 for feature in crowns.getFeatures())


def test_min_crown_area_reaches_the_engine(treeseg_provider, checkpoints, tmp_path):
    """Cluster 1 of K = 2 as trees: a crown lies inside the 96 x 64 px raster at 0.1 m (61.44 m²), so a minimum
    crown area above that leaves no crown, whatever MIN_TREE_HEIGHT says."""
    raster = make_raster(tmp_path / "ortho.tif", 96, 64, kind="blobs", seed=3)
    stats = tmp_path / "stats.json"
    results = run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(checkpoints["tiny"]), "K": 2,
                                 "TILE_SIZE": 64, "OVERLAP": 16, "TREE_CLUSTERS": "1", "MIN_CROWN_AREA": 62.0,
                                 "MIN_TREE_HEIGHT": 0.5, "OUTPUT": str(tmp_path / "labels.tif"),
                                 "TREES": str(tmp_path / "trees.tif"), "CROWNS": str(tmp_path / "crowns.gpkg"),
                                 "STATS": str(stats)})
    (_, labels), (_, mask) = read_labels(results["OUTPUT"]), read_labels(results["TREES"])
    assert bool((mask == 1).any()) and bool(((mask == 1) == (labels == 1)).all())
    assert json.loads(stats.read_text())["trees"]["crowns"] == 0
    assert QgsVectorLayer(results["CROWNS"], "crowns", "ogr").featureCount() == 0
