"""Classify from Examples headless: the real qgis_process.bin on the bundled sample with a GeoJSON of points of two
classes (in WGS 84, the sample is in UTM), and a Model Designer model chaining it into gdal:polygonize, run by
processing.run and, saved as a .model3, by qgis_process. Random-weight DINOv3 checkpoint written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from osgeo import gdal, osr
from processing_models import add_step, child, child_output, model_input, new_model, static
from qgis.core import (
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterLayer,
    QgsVectorLayer,
)
from qgis_process_runner import enable_plugin, qgis_process_env, run, run_algorithm

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
ALGORITHM = "treeseg:classifyexamples"
# sample pixels (column, row) of the examples: four per class, spread over the 400 x 400 px sample
POINTS = {"crown": [(60, 60), (160, 80), (260, 60), (340, 90)], "ground": [(60, 330), (160, 300), (260, 340),
                                                                         (340, 310)]}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("classify-headless-weights")
    return write_meta_pth(folder / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))


def write_points(path: Path) -> Path:
    """POINTS as a GeoJSON in WGS 84 (longitude, latitude), each feature's class in the field "class"."""
    sample = gdal.Open(str(SAMPLE))
    gt = sample.GetGeoTransform()
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs84 = osr.CoordinateTransformation(sample.GetSpatialRef(), wgs84)
    features = []
    for name, pixels in POINTS.items():
        for column, row in pixels:
            x, y = gt[0] + (column + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]
            lon, lat, _ = to_wgs84.TransformPoint(x, y)
            features.append({"type": "Feature", "properties": {"class": name},
                             "geometry": {"type": "Point", "coordinates": [lon, lat]}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_qgis_process_classifies_the_sample_from_points_of_two_classes(weights, tmp_path, plugins_dir):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    described = run(["help", ALGORITHM], env)
    assert described.returncode == 0, described.stdout + described.stderr
    for line in ("EXAMPLES: Examples (polygons or points)", "CLASS_FIELD: Class field", "OUTPUT: <outputRaster>",
                 "STATISTICS: <outputHtml>", "ACCURACY: <outputNumber>", "How to draw examples"):
        assert line in described.stdout, line
    out = {"OUTPUT": tmp_path / "classes.tif", "CONFIDENCE": tmp_path / "confidence.tif",
           "STATISTICS": tmp_path / "stats.json"}
    done, payload = run_algorithm(ALGORITHM, {"INPUT": SAMPLE, "EXAMPLES": write_points(tmp_path / "points.geojson"),
                                              "CLASS_FIELD": "class", "WEIGHTS": weights, **out}, env)
    assert done.returncode == 0 and payload is not None, done.stdout + done.stderr
    results = payload["results"]
    assert {name: results[name] for name in out} == {name: str(path) for name, path in out.items()}
    assert 0 <= results["ACCURACY"] <= 100
    classes = gdal.Open(str(out["OUTPUT"]))
    assert classes.GetGeoTransform() == gdal.Open(str(SAMPLE)).GetGeoTransform()
    values = classes.GetRasterBand(1).ReadAsArray()
    sample = gdal.Open(str(SAMPLE))
    nodata = (sample.ReadAsArray() == 255).any(axis=0)  # the sample's NoData value, 255 on each band
    assert values.shape == (400, 400) and set(np.unique(values[~nodata])) == {1, 2}  # crown = 1, ground = 2
    assert (values[nodata] == 0).all()  # 0 = NoData
    confidence = read_band(str(out["CONFIDENCE"]))
    assert confidence.shape == values.shape
    assert confidence[~nodata].min() >= 50 and confidence[~nodata].max() <= 100  # two classes: at least 50 %
    assert (tmp_path / "classes.qml").is_file()  # the class names and colours for QGIS
    report = out["STATISTICS"].read_text(encoding="utf-8")
    assert "crown" in report and "ground" in report


def read_band(path: str) -> np.ndarray:
    dataset = gdal.Open(path)  # held while its band is read
    return dataset.GetRasterBand(1).ReadAsArray()


def build_model() -> QgsProcessingModelAlgorithm:
    """Classify from Examples -> gdal:polygonize of its classes (field DN), both declared model outputs."""
    model = new_model("Classify and polygonize", QgsProcessingParameterRasterLayer("ortho", "Orthophoto"),
                      QgsProcessingParameterFeatureSource("examples", "Examples", [
                          QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]),
                      QgsProcessingParameterFile("weights", "Weights"))
    add_step(model, child(ALGORITHM, "classify", {
        "INPUT": model_input("ortho"), "EXAMPLES": model_input("examples"), "CLASS_FIELD": static("class"),
        "WEIGHTS": model_input("weights"), "TILE_SIZE": static(64), "OVERLAP": static(16)}),
        {"classes": ("Classes", "OUTPUT")})
    add_step(model, child("gdal:polygonize", "polygonize", {
        "INPUT": child_output("classify", "OUTPUT"), "BAND": static(1), "FIELD": static("DN")}),
        {"polygons": ("Class polygons", "OUTPUT")})
    return model


def areas_by_class(polygons_path: str) -> dict[int, float]:
    layer = QgsVectorLayer(polygons_path, "polygons", "ogr")
    assert layer.isValid() and layer.featureCount() > 0
    areas: dict[int, float] = {}
    for feature in layer.getFeatures():
        areas[feature["DN"]] = areas.get(feature["DN"], 0.0) + feature.geometry().area()
    return areas


def pixel_areas(classes_path: str) -> dict[int, float]:
    dataset = gdal.Open(classes_path)
    values, counts = np.unique(dataset.GetRasterBand(1).ReadAsArray(), return_counts=True)
    cell = abs(dataset.GetGeoTransform()[1] * dataset.GetGeoTransform()[5])
    return {int(value): float(count) * cell for value, count in zip(values, counts) if value != 0}


def test_a_model_chains_classify_into_polygons_in_processing_and_qgis_process(treeseg_provider, weights, tmp_path,
                                                                            plugins_dir):
    import processing

    model = build_model()
    ok, errors = model.validate()
    assert ok, errors
    names = {parameter.name() for parameter in model.destinationParameterDefinitions()}
    [polygons] = [name for name in names if "polygons" in name]
    [classes] = [name for name in names if "classes" in name]
    points = write_points(tmp_path / "points.geojson")
    results = processing.run(model, {"ortho": str(SAMPLE), "examples": str(points), "weights": str(weights),
                                     classes: str(tmp_path / "classes.tif"), polygons: str(tmp_path / "p.gpkg")})
    areas = areas_by_class(results[polygons])
    assert set(areas) <= {1, 2}
    assert areas == pytest.approx(pixel_areas(results[classes]), rel=1e-6)  # the polygons cover the class pixels

    model_file = tmp_path / "classify_and_polygonize.model3"
    assert model.toFile(str(model_file))
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    done, payload = run_algorithm(str(model_file), {
        "ortho": SAMPLE, "examples": points, "weights": weights, classes: tmp_path / "c2.tif",
        polygons: tmp_path / "p2.gpkg"}, env)
    assert done.returncode == 0 and payload is not None, done.stdout + done.stderr
    assert areas_by_class(payload["results"][polygons]) == pytest.approx(areas, rel=1e-6)  # the same classes
