"""Classify from Examples in QGIS: its parameters, the checks before a run, the examples layer copied for the worker
(memory layers too), and runs through processing.run whose errors arrive as clear Processing messages.

Real QGIS, GDAL and the worker; the DINOv3 architecture on a random-weight checkpoint written by the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import ORIGIN, make_raster
from osgeo import gdal, ogr
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsGeometry,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProject,
    QgsVectorLayer,
)

ALGORITHM = "treeseg:classifyexamples"
PIXEL = 0.1  # make_raster's pixel size (m)
# make_raster(kind="regions"), 128 x 96 px: three vertical strips, each 128 / 3 px wide (data_factory.pattern)
STRIP_LEFT = {"forest": 0, "soil": 43, "water": 86}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("classify-weights")
    return write_meta_pth(folder / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))


def box(column: int, row: int, side: int = 12) -> QgsGeometry:
    """A square of ``side`` pixels whose top-left corner is pixel (``column``, ``row``) of make_raster's grid."""
    x0, y0 = ORIGIN[0] + column * PIXEL, ORIGIN[1] - row * PIXEL
    x1, y1 = x0 + side * PIXEL, y0 - side * PIXEL
    return QgsGeometry.fromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")


def memory_layer(kind: str, field: str, rows: list[tuple[QgsGeometry, object]], crs: str = "EPSG:32617",
                 name: str = "examples") -> QgsVectorLayer:
    """A scratch (memory) layer with one field ``field`` (e.g. "class:string") and these features."""
    layer = QgsVectorLayer(f"{kind}?crs={crs}&field={field}", name, "memory")
    assert layer.isValid()
    features = []
    for geometry, value in rows:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature.setAttribute(0, value)
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


def strip_examples(classes: tuple[str, ...] = ("forest", "soil"), per_class: int = 3) -> QgsVectorLayer:
    """``per_class`` squares well inside each class's strip, spread down it."""
    rows = [(box(STRIP_LEFT[name] + 15, 6 + 30 * i), name) for name in classes for i in range(per_class)]
    return memory_layer("Polygon", "class:string", rows)


def check(parameters: dict) -> tuple[bool, str]:
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return algorithm.checkParameterValues(parameters, context)


def test_its_parameters_and_outputs_are_the_contracts(treeseg_provider):
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById(ALGORITHM)
    assert (algorithm.displayName(), algorithm.group()) == ("Classify from Examples", "Segmentation")
    names = [d.name() for d in algorithm.parameterDefinitions()]
    assert names == ["INPUT", "WORKING_RESOLUTION", "BANDS", "EXTENT", "EXAMPLES", "CLASS_FIELD", "CROSS_VALIDATION",
                     "CLASSIFIER", "TREE_CLASSES", "MODEL", "WEIGHTS", "DEVICE", "PRECISION", "STRIDE",
                     "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "ALLOW_DOWNLOAD", "REGULARISATION", "MIN_CROWN_AREA",
                     "OUTPUT", "CONFIDENCE", "POLYGONS", "TREES", "CROWNS", "STATISTICS", "CLASSIFIER_OUTPUT"]
    optional = {d.name() for d in algorithm.parameterDefinitions() if d.flags() & d.FlagOptional}
    assert {"EXAMPLES", "CLASS_FIELD", "CLASSIFIER", "TREE_CLASSES", "CONFIDENCE", "POLYGONS", "TREES", "CROWNS",
            "STATISTICS", "CLASSIFIER_OUTPUT"} <= optional
    assert "OUTPUT" not in optional and "INPUT" not in optional
    assert algorithm.parameterDefinition("CROSS_VALIDATION").defaultValue() is True
    assert algorithm.parameterDefinition("CLASS_FIELD").parentLayerParameterName() == "EXAMPLES"
    assert sorted(output.name() for output in algorithm.outputDefinitions()) == [
        "ACCURACY", "CLASSIFIER_OUTPUT", "CONFIDENCE", "CROWNS", "OUTPUT", "POLYGONS", "STATISTICS", "TREES"]
    help_text = algorithm.shortHelpString()
    assert "How to draw examples" in help_text and "Scratch Layer" in help_text and "class" in help_text


def test_an_examples_layer_may_be_polygons_or_points_not_lines(treeseg_provider, tmp_path):
    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    lines = memory_layer("LineString", "class:string", [(QgsGeometry.fromWkt("LINESTRING(500000 3299999, "
                                                                              "500001 3299998)"), "a")])
    points = memory_layer("Point", "class:string", [(QgsGeometry.fromWkt("POINT(500001 3299999)"), "a"),
                                                    (QgsGeometry.fromWkt("POINT(500003 3299999)"), "b")])
    base = {"INPUT": str(raster), "CLASS_FIELD": "class", "OUTPUT": str(tmp_path / "classes.tif")}
    assert check({**base, "EXAMPLES": points})[0]
    ok, message = check({**base, "EXAMPLES": lines})
    assert not ok and "holds lines" in message and "polygons" in message, message


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"EXAMPLES": None, "CLASS_FIELD": None}, "No examples given"),
    ({"CLASSIFIER": "old.tscc"}, "Both examples and a classifier"),
    ({"CLASS_FIELD": "kind"}, "no field 'kind' (their fields: class)"),
    ({"TREES": "trees.tif"}, "no class is named as trees"),
    ({"BANDS": "3,2,7"}, "Band(s) [7] do not exist"),
    ({"CLASSIFIER_OUTPUT": "saved.tscm"}, "must end in .tscc"),
])
def test_what_cannot_work_is_refused_before_the_run_with_the_fix(treeseg_provider, tmp_path, overrides, fragment):
    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    parameters = {"INPUT": str(raster), "EXAMPLES": strip_examples(), "CLASS_FIELD": "class",
                  "OUTPUT": str(tmp_path / "classes.tif")}
    parameters.update({name: str(tmp_path / value) if name in ("TREES", "CLASSIFIER", "CLASSIFIER_OUTPUT") else value
                       for name, value in overrides.items()})
    ok, message = check({name: value for name, value in parameters.items() if value is not None})
    assert not ok and fragment in message, message


def test_the_defaults_with_examples_pass_the_checks(treeseg_provider, tmp_path):
    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    assert check({"INPUT": str(raster), "EXAMPLES": strip_examples(), "CLASS_FIELD": "class",
                  "OUTPUT": str(tmp_path / "classes.tif")}) == (True, "")


def read_copy(path: Path) -> tuple[dict[int, tuple[str, object]], str, int]:
    """The copied GeoPackage: fid -> (geometry WKT, class value), its CRS's EPSG code, the field's OGR type."""
    dataset = ogr.Open(str(path))
    layer = dataset.GetLayer(0)
    srs = layer.GetSpatialRef()
    kind = layer.GetLayerDefn().GetFieldDefn(0).GetType()
    rows = {f.GetFID(): (f.GetGeometryRef().ExportToIsoWkt() if f.GetGeometryRef() else "", f.GetField(0))
            for f in layer}
    return rows, srs.GetAuthorityCode(None), kind


def test_a_memory_layer_is_copied_with_its_ids_crs_and_class_values(treeseg_provider, tmp_path):
    from treeseg.processing_provider.classify_examples import write_examples

    square = "POLYGON((-81.99 29.69,-81.98 29.69,-81.98 29.68,-81.99 29.69))"
    layer = memory_layer("Polygon", "class:string", [(QgsGeometry.fromWkt(square), "conifer")] * 3, crs="EPSG:4326")
    layer.dataProvider().deleteFeatures([1])  # ids need not start at 1
    layer.dataProvider().changeAttributeValues({3: {0: None}})
    write_examples(layer, "class", str(tmp_path / "polygons.gpkg"))
    rows, epsg, kind = read_copy(tmp_path / "polygons.gpkg")
    assert epsg == "4326" and kind == ogr.OFTString
    wkt = "POLYGON ((-81.99 29.69,-81.98 29.69,-81.98 29.68,-81.99 29.69))"
    assert rows == {2: (wkt, "conifer"), 3: (wkt, None)}  # NULL stays NULL: the engine names it

    points = memory_layer("Point", "kind:integer", [(QgsGeometry.fromWkt("POINT(-81.95 29.65)"), 7),
                                                     (QgsGeometry.fromWkt("POINT(-81.9 29.6)"), 12)], crs="EPSG:4326")
    write_examples(points, "kind", str(tmp_path / "points.gpkg"))
    rows, _, kind = read_copy(tmp_path / "points.gpkg")
    assert kind == ogr.OFTInteger64 and rows == {1: ("POINT (-81.95 29.65)", 7), 2: ("POINT (-81.9 29.6)", 12)}


def _feature(layer: QgsVectorLayer, geometry: QgsGeometry, value: object) -> QgsFeature:
    feature = QgsFeature(layer.fields())
    feature.setGeometry(geometry)
    feature.setAttribute(0, value)
    return feature


def test_decimal_classes_and_a_layer_without_crs_are_refused(treeseg_provider, tmp_path):
    from treeseg.processing_provider.classify_examples import write_examples

    decimals = memory_layer("Point", "cover:double", [(QgsGeometry.fromWkt("POINT(1 2)"), 0.5),
                                                      (QgsGeometry.fromWkt("POINT(2 2)"), 2.0)])
    with pytest.raises(QgsProcessingException, match=r"'cover' holds decimal numbers.*text or integer field"):
        write_examples(decimals, "cover", str(tmp_path / "a.gpkg"))
    no_crs = QgsVectorLayer("Point?field=class:string", "examples", "memory")
    no_crs.setCrs(QgsCoordinateReferenceSystem())  # as a shapefile without its .prj
    no_crs.dataProvider().addFeatures([_feature(no_crs, QgsGeometry.fromWkt("POINT(1 2)"), "a")])
    with pytest.raises(QgsProcessingException, match="has no CRS"):
        write_examples(no_crs, "class", str(tmp_path / "b.gpkg"))


def run_classify(parameters: dict) -> dict:
    import processing

    return processing.run(ALGORITHM, parameters)


def refusal(examples: QgsVectorLayer, weights: Path, folder: Path) -> str:
    """The message of a run on a 128 x 96 px raster with ``examples`` that Processing refuses; no output is left."""
    raster = make_raster(folder / "ortho.tif", 128, 96)
    with pytest.raises(QgsProcessingException) as raised:
        run_classify({"INPUT": str(raster), "EXAMPLES": examples, "CLASS_FIELD": "class", "WEIGHTS": str(weights),
                      "TILE_SIZE": 64, "OVERLAP": 16, "OUTPUT": str(folder / "classes.tif")})
    assert not (folder / "classes.tif").exists()
    return str(raised.value)


def read_band(path: str) -> np.ndarray:
    dataset = gdal.Open(path)  # held while its band is read
    return dataset.GetRasterBand(1).ReadAsArray()


def majority(values: np.ndarray) -> int:
    found, counts = np.unique(values, return_counts=True)
    return int(found[np.argmax(counts)])


@pytest.mark.slow
def test_memory_polygons_classify_the_raster_on_its_grid(treeseg_provider, weights, tmp_path):
    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    out = {"OUTPUT": tmp_path / "classes.tif", "CONFIDENCE": tmp_path / "confidence.tif",
           "POLYGONS": tmp_path / "classes.gpkg", "STATISTICS": tmp_path / "stats.json",
           "TREES": tmp_path / "trees.tif", "CROWNS": tmp_path / "crowns.gpkg"}
    results = run_classify({"INPUT": str(raster), "EXAMPLES": strip_examples(), "CLASS_FIELD": "class",
                            "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16, "TREE_CLASSES": " forest ",
                            "REGULARISATION": 0.5, **{name: str(path) for name, path in out.items()}})
    assert {name: results[name] for name in out} == {name: str(path) for name, path in out.items()}
    assert 0.0 <= results["ACCURACY"] <= 100.0  # percent, cross-validated over the 6 example polygons
    classes = gdal.Open(str(out["OUTPUT"]))
    assert (classes.RasterXSize, classes.RasterYSize, classes.GetGeoTransform()) == \
        (128, 96, gdal.Open(str(raster)).GetGeoTransform())
    values = classes.GetRasterBand(1).ReadAsArray()
    assert set(np.unique(values)) <= {1, 2}  # forest = 1, soil = 2: class names in alphabetical order
    for number, name in enumerate(("forest", "soil"), start=1):  # the examples' own patches take their class
        left = STRIP_LEFT[name] + 15
        assert majority(values[6:18, left:left + 12]) == number, name
    confidence = read_band(str(out["CONFIDENCE"]))
    assert confidence.shape == values.shape and confidence.min() >= 50 and confidence.max() <= 100  # 2 classes
    polygons = QgsVectorLayer(str(out["POLYGONS"]), "polygons", "ogr")
    assert {"class", "class_id"} <= set(polygons.fields().names())
    assert {(f["class"], f["class_id"]) for f in polygons.getFeatures()} <= {("forest", 1), ("soil", 2)}
    stats = json.loads(out["STATISTICS"].read_text(encoding="utf-8"))
    assert [row["name"] for row in stats["classes"]] == ["forest", "soil"]
    assert stats["classifier"]["regularisation"] == 0.5  # the REGULARISATION given, not the default 0.01
    assert np.array_equal(read_band(str(out["TREES"])), (values == 1).astype(np.uint8))  # the forest class
    assert QgsVectorLayer(str(out["CROWNS"]), "crowns", "ogr").featureCount() > 0


@pytest.mark.slow
def test_examples_outside_the_raster_stop_the_run_with_the_fix(treeseg_provider, weights, tmp_path):
    far = memory_layer("Polygon", "class:string", [(box(2000 + 20 * i, 0), name) for i, name in
                                                   enumerate(("forest", "soil", "forest", "soil"))])
    message = refusal(far, weights, tmp_path)
    assert "None of the 4 examples lies inside the raster" in message and "CRS" in message, message


@pytest.mark.slow
def test_examples_without_a_class_are_named_by_their_feature_ids(treeseg_provider, weights, tmp_path):
    examples = strip_examples()  # features 1-3 forest, 4-6 soil
    examples.dataProvider().deleteFeatures([1])  # the ids the analyst sees are no longer the rows' numbers
    examples.dataProvider().changeAttributeValues({3: {0: None}, 6: {0: ""}})
    message = refusal(examples, weights, tmp_path)
    assert "have no class in field 'class'" in message and "feature ids 3, 6" in message, message


@pytest.mark.slow
def test_in_qgis_the_layers_are_grouped_styled_with_class_names_and_summed_up(treeseg_provider, processing_iface,
                                                                             weights, tmp_path):
    import processing
    from qgis.core import QgsLayerTreeGroup, QgsPalettedRasterRenderer

    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    try:
        results = processing.runAndLoadResults(ALGORITHM, {
            "INPUT": str(raster), "EXAMPLES": strip_examples(), "CLASS_FIELD": "class", "WEIGHTS": str(weights),
            "TILE_SIZE": 64, "OVERLAP": 16, "OUTPUT": str(tmp_path / "classes.tif"),
            "CONFIDENCE": str(tmp_path / "confidence.tif"), "POLYGONS": str(tmp_path / "polygons.gpkg")})
        root = QgsProject.instance().layerTreeRoot()
        [group] = root.children()
        assert isinstance(group, QgsLayerTreeGroup) and group.name() == "ortho"
        assert [(node.name(), node.isVisible()) for node in group.children()] == [
            ("ortho class polygons", True), ("ortho confidence", False), ("ortho classes", True)]
        classes = group.children()[2].layer()
        assert isinstance(classes.renderer(), QgsPalettedRasterRenderer)
        assert [(entry.value, entry.label) for entry in classes.renderer().classes()] == [(1, "forest"), (2, "soil")]

        values = read_band(results["OUTPUT"])
        shares = {name: 100.0 * np.count_nonzero(values == number) / values.size
                  for number, name in enumerate(("forest", "soil"), start=1)}
        item = processing_iface.messageBar().currentItem()
        assert item is not None and item.title() == "Classify from Examples"
        assert item.text().startswith(f"forest {shares['forest']:.1f} %, soil {shares['soil']:.1f} %; accuracy "
                                      f"{results['ACCURACY']:.1f} % by example; "), item.text()
        assert item.text().endswith(" s")
    finally:
        QgsProject.instance().removeAllMapLayers()
        QgsProject.instance().layerTreeRoot().removeAllChildren()


@pytest.mark.slow
def test_a_saved_classifier_applied_without_examples_gives_the_same_classes(treeseg_provider, weights, tmp_path):
    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    common = {"INPUT": str(raster), "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16}
    fitted = run_classify({**common, "EXAMPLES": strip_examples(), "CLASS_FIELD": "class",
                           "CLASSIFIER_OUTPUT": str(tmp_path / "strips.tscc"), "OUTPUT": str(tmp_path / "fit.tif")})
    assert fitted["CLASSIFIER_OUTPUT"] == str(tmp_path / "strips.tscc")
    applied = run_classify({**common, "CLASSIFIER": fitted["CLASSIFIER_OUTPUT"],
                            "OUTPUT": str(tmp_path / "applied.tif")})
    assert applied["ACCURACY"] is None  # nothing fitted, nothing to cross-validate
    assert np.array_equal(read_band(applied["OUTPUT"]), read_band(fitted["OUTPUT"]))


@pytest.mark.slow
def test_one_class_gives_the_similarity_layer_and_no_accuracy(treeseg_provider, processing_iface, weights, tmp_path):
    import processing

    raster = make_raster(tmp_path / "ortho.tif", 128, 96)
    try:
        results = processing.runAndLoadResults(ALGORITHM, {
            "INPUT": str(raster), "EXAMPLES": strip_examples(("forest",)), "CLASS_FIELD": "class",
            "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16, "OUTPUT": str(tmp_path / "similarity.tif")})
        assert results["ACCURACY"] is None
        similarity = read_band(results["OUTPUT"])
        assert similarity.max() <= 100  # percent, no NoData in this raster
        [group] = QgsProject.instance().layerTreeRoot().children()
        assert [node.name() for node in group.children()] == ["ortho similarity"]
        text = processing_iface.messageBar().currentItem().text()
        assert text.startswith("similarity to forest; ") and "accuracy" not in text, text
    finally:
        QgsProject.instance().removeAllMapLayers()
        QgsProject.instance().layerTreeRoot().removeAllChildren()


@pytest.mark.slow
@pytest.mark.skipif(Qgis.QGIS_VERSION_INT >= 32800, reason="drives QGIS 3.22's synchronous Batch runner, as "
                    "test_gui_results does for Segment Trees")
def test_the_batch_dialog_classifies_each_row_with_the_examples_file(treeseg_provider, processing_iface, weights,
                                                                     tmp_path):
    from batch_panel import dispose
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication, QgsVectorFileWriter

    examples = tmp_path / "examples.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    error = QgsVectorFileWriter.writeAsVectorFormatV3(strip_examples(), str(examples), QgsProject.instance()
                                                      .transformContext(), options)
    assert error[0] == QgsVectorFileWriter.WriterError.NoError, error
    dialog = BatchAlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById(ALGORITHM))
    panel = dialog.mainWidget()
    panel.addRow()
    for row, name in enumerate(("north", "south")):
        values = {"INPUT": str(make_raster(tmp_path / f"{name}.tif", 128, 96, seed=row)), "EXAMPLES": str(examples),
                  "CLASS_FIELD": "class", "WEIGHTS": str(weights), "TILE_SIZE": 64, "OVERLAP": 16}
        for parameter, value in values.items():
            panel.wrappers[row][panel.parameter_to_column[parameter]].setParameterValue(value, panel.processing_context)
        widget = panel.tblParameters.cellWidget(row + 1, panel.parameter_to_column["OUTPUT"])
        widget.setValue(str(tmp_path / f"{name}-classes.tif"))
    try:
        panel.checkLoadLayersOnCompletion.setChecked(True)
        dialog.runAlgorithm()
        groups = sorted((group.name(), [node.name() for node in group.children()])
                        for group in QgsProject.instance().layerTreeRoot().children())
        assert groups == [("north", ["north classes"]), ("south", ["south classes"])]
        assert all(set(np.unique(read_band(str(tmp_path / f"{name}-classes.tif")))) <= {1, 2}
                   for name in ("north", "south"))
    finally:
        dispose(dialog)
        QgsProject.instance().removeAllMapLayers()
        QgsProject.instance().layerTreeRoot().removeAllChildren()
