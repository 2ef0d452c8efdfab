"""Classify from Examples in the engine (issue 27): a synthetic orthophoto of three textures (data_factory's
"regions": noisy dark green, smooth tan gradient, blue checkerboard, 96 px strips), example rectangles drawn on
them, a tiny random-weight DINOv3 (colour-distinct textures stay apart in its features).

Expected values come from the scene (which strip a pixel lies in), and the cross-validated accuracy from an
independent recomputation: scikit-learn's LogisticRegression (same loss: class-balanced, L2 with C = 1/(N·λ))
fitted per left-out polygon on patch features the test encodes itself, with the example cells found by hand
(patch centres inside the rectangles)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import ORIGIN, make_raster
from osgeo import gdal, ogr, osr
from recording_progress import Log
from treeseg.treeseg_plugin.engine import EngineError, SegmentationConfig
from treeseg.treeseg_plugin.engine.classify.classifier_file import load_classifier, save_classifier
from treeseg.treeseg_plugin.engine.classify.linear import Linear
from treeseg.treeseg_plugin.engine.encode.features import FeatureStore, TileEncoder
from treeseg.treeseg_plugin.engine.encode.runtime import load_model
from treeseg.treeseg_plugin.engine.encode.tiling import plan_tiles
from treeseg.treeseg_plugin.engine.jobs.classify import ClassifyConfig, validate_classify_config
from treeseg.treeseg_plugin.engine.runs.classify import run_classify
from treeseg.treeseg_plugin.engine.runs.inputs import open_input

WIDTH, HEIGHT, STRIP, PIXEL = 288, 192, 96, 0.1
TEXTURES = ("green", "tan", "blue")  # the strips from left to right
SETTINGS = {"tile_size": 64, "overlap": 16}
BORDER = 16  # px either side of a strip border (and of the raster's edges) not scored


def rectangles(texture: int) -> list[tuple[float, float, float, float]]:
    """Five example rectangles (x0, y0, x1, y1 in pixels) inside strip ``texture``, edges off the patch centres
    (multiples of 16 plus 8)."""
    x0 = texture * STRIP + 20
    return [(x0, 2 + 36 * i, x0 + 50, 30 + 36 * i) for i in range(5)]


def write_examples(path: Path, features: list[tuple[str | int | None, ogr.Geometry]], epsg: int = 32617,
                   field_type: int = ogr.OFTString) -> Path:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = data.CreateLayer("examples", srs=srs, geom_type=ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("kind", field_type))
    for value, geometry in features:
        feature = ogr.Feature(layer.GetLayerDefn())
        if value is not None:
            feature.SetField("kind", value)
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    data = None
    return path


def box(x0: float, y0: float, x1: float, y1: float) -> ogr.Geometry:
    """A rectangle given in the raster's pixels, in EPSG:32617."""
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for px, py in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
        ring.AddPoint_2D(ORIGIN[0] + px * PIXEL, ORIGIN[1] - py * PIXEL)
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon


def point(px: float, py: float) -> ogr.Geometry:
    geometry = ogr.Geometry(ogr.wkbPoint)
    geometry.AddPoint_2D(ORIGIN[0] + px * PIXEL, ORIGIN[1] - py * PIXEL)
    return geometry


def five_per_class() -> list[tuple[str, ogr.Geometry]]:
    return [(name, box(*r)) for t, name in enumerate(TEXTURES) for r in rectangles(t)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("classify")
    return {"folder": folder,
            "weights": str(write_meta_pth(folder / "tiny.pth", make_state_dict("tiny", seed=0))),
            "ortho": str(make_raster(folder / "ortho.tif", WIDTH, HEIGHT)),
            "examples": str(write_examples(folder / "examples.gpkg", five_per_class()))}


def classify(scene: dict, out: Path, log: Log | None = None, **settings):
    config = ClassifyConfig(scene["ortho"], str(out / "classes.tif"), model=scene["weights"],
                            **{**SETTINGS, **settings})
    if config.classifier is None and "examples_path" not in settings:
        config.examples_path, config.class_field = scene["examples"], "kind"
    return run_classify(config, log or Log())


@pytest.fixture(scope="module")
def fitted(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("fitted")
    log = Log()
    result = classify(scene, out, log, stats_path=str(out / "stats.json"), classifier_output=str(out / "c.tscc"),
                      confidence_path=str(out / "confidence.tif"), polygons_path=str(out / "classes.gpkg"))
    return {"result": result, "log": log, "out": out}


def read(path: str) -> np.ndarray:
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray()


def texture_of_pixels() -> np.ndarray:
    return np.broadcast_to(np.minimum(np.arange(WIDTH) // STRIP, 2), (HEIGHT, WIDTH))


def away_from_borders() -> np.ndarray:
    columns = np.ones(WIDTH, bool)
    for border in (0, STRIP, 2 * STRIP, WIDTH):
        columns[max(0, border - BORDER):border + BORDER] = False
    return np.broadcast_to(columns, (HEIGHT, WIDTH))


def test_three_textures_are_classified_right_away_from_their_borders(scene, fitted):
    result = fitted["result"]
    assert result.class_names == sorted(TEXTURES)  # text classes in alphabetical order
    classes = read(result.output_path)
    expected = np.array([result.class_names.index(name) + 1 for name in TEXTURES])[texture_of_pixels()]
    right = (classes == expected)[away_from_borders()]
    assert right.mean() >= 0.98, right.mean()
    ortho, out = gdal.Open(scene["ortho"]), gdal.Open(result.output_path)
    assert (out.RasterXSize, out.RasterYSize, out.GetGeoTransform()) == \
        (ortho.RasterXSize, ortho.RasterYSize, ortho.GetGeoTransform())
    band = out.GetRasterBand(1)
    assert band.GetNoDataValue() == 0 and list(band.GetCategoryNames()) == ["NoData", *result.class_names]
    confidence = read(result.confidence_path)
    assert confidence.max() <= 100 and np.median(confidence[away_from_borders()]) > 1 / 3 * 100
    polygons = ogr.Open(result.polygons_path)
    assert {f.GetField("class") for f in polygons.GetLayer(0)} == set(TEXTURES)
    assert result.polygons_per_class == {name: 5 for name in TEXTURES}


def test_the_confidence_raster_keeps_0_percent_and_marks_nodata_255(fitted):
    """Percent rasters are Byte 0..100 with NoData 255: 0 % is a value (no similarity, no confidence), not a gap."""
    dataset = gdal.Open(fitted["result"].confidence_path)
    band = dataset.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255


def example_cells(rects: list[tuple[float, float, float, float]], stride: int = 16) -> list[np.ndarray]:
    """The (row, col) patch cells whose centre (c*stride + 8, r*stride + 8) lies inside each rectangle."""
    centres = np.arange(0, max(WIDTH, HEIGHT), stride) + 8
    cells = []
    for x0, y0, x1, y1 in rects:
        rows = [(r, c) for r, cy in enumerate(centres) if y0 < cy < y1 for c, cx in enumerate(centres)
                if x0 < cx < x1]
        cells.append(np.array(rows))
    return cells


def patch_features(scene: dict, folder: Path) -> np.ndarray:
    """The raster's patch features [rows, cols, D], encoded as Segment Trees encodes them."""
    settings = SegmentationConfig(scene["ortho"], "", model=scene["weights"], **SETTINGS)
    with contextlib.ExitStack() as stack:
        inputs = open_input(settings, None, Log(), lambda _: None, stack)
        backbone, _, _ = load_model(settings, Log())
        window = inputs.encoded_window
        plan = plan_tiles(window.height, window.width, settings.tile_size, settings.overlap, settings.stride)
        store = stack.enter_context(FeatureStore(str(folder), plan.grid_rows, plan.grid_cols, backbone.embed_dim))
        TileEncoder(backbone, inputs.encoded, window, plan, store, settings.batch_size).run(Log(), lambda _: None)
        return store.read(0, plan.grid_rows, 0, plan.grid_cols)


def test_the_grouped_accuracy_equals_an_independent_recomputation(scene, tmp_path):
    sklearn = pytest.importorskip("sklearn.linear_model")
    # One "tan" example is drawn on the blue strip: left out, it is predicted blue, so the accuracy is below 100 %
    # (a cross-validation by pixel would keep its neighbours in the fit and call it tan).
    rects = [r for t in range(3) for r in rectangles(t)] + [(2 * STRIP + 20, 176, 2 * STRIP + 70, 190)]
    names = [name for name in TEXTURES for _ in range(5)] + ["tan"]
    examples = write_examples(tmp_path / "noisy.gpkg", [(n, box(*r)) for n, r in zip(names, rects)])
    result = classify(scene, tmp_path, examples_path=str(examples), class_field="kind", regularisation=0.05,
                      stats_path=str(tmp_path / "stats.json"))
    features = patch_features(scene, tmp_path)
    order = sorted(TEXTURES)
    x = np.concatenate([features[cells[:, 0], cells[:, 1]] for cells in example_cells(rects)])
    y = np.concatenate([[order.index(n)] * len(cells) for n, cells in zip(names, example_cells(rects))])
    group = np.concatenate([[i] * len(cells) for i, cells in enumerate(example_cells(rects))])
    confusion = np.zeros((3, 3), int)
    for held_out in range(len(rects)):
        train = group != held_out
        model = sklearn.LogisticRegression(C=1 / (train.sum() * 0.05), class_weight="balanced", tol=1e-10,
                                           max_iter=100000).fit(x[train], y[train])
        np.add.at(confusion, (y[~train], model.predict(x[~train])), 1)
    stats = json.loads((tmp_path / "stats.json").read_text())
    accuracy = stats["accuracy"]
    assert accuracy["scheme"] == "leave-one-polygon-out" and accuracy["folds"] == 16
    assert accuracy["confusion"] == confusion.tolist()
    assert accuracy["overall_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum(), abs=1e-12)
    assert accuracy["overall_accuracy"] < 1
    assert result.accuracy == accuracy
    tan = next(row for row in accuracy["per_class"] if row["class"] == "tan")
    recall = confusion[2, 2] / confusion[2].sum()
    assert tan["polygons"] == 6 and tan["recall"] == pytest.approx(recall)


def test_a_saved_classifier_applied_to_its_raster_gives_the_same_classes(scene, fitted, tmp_path):
    log = Log()
    applied = classify(scene, tmp_path, log, classifier=str(fitted["out"] / "c.tscc"),
                       confidence_path=str(tmp_path / "confidence.tif"))
    assert "Fitting classifier" not in log.stages and applied.accuracy is None
    assert np.array_equal(read(applied.output_path), read(fitted["result"].output_path))
    assert np.array_equal(read(applied.confidence_path), read(fitted["result"].confidence_path))
    assert applied.class_names == fitted["result"].class_names
    assert applied.class_colours == fitted["result"].class_colours


@pytest.mark.parametrize("preset, seed, named", [("tiny", 1, "weights"), ("vits16", 0, "backbone")])
def test_a_classifier_from_another_backbone_is_refused_before_encoding(scene, fitted, tmp_path, preset, seed, named):
    other = write_meta_pth(tmp_path / "other.pth", make_state_dict(preset, seed=seed))
    log = Log()
    config = ClassifyConfig(scene["ortho"], str(tmp_path / "classes.tif"), model=str(other),
                            classifier=str(fitted["out"] / "c.tscc"), **SETTINGS)
    with pytest.raises(EngineError, match=f"classifier .* does not fit this run: {named}"):
        run_classify(config, log)
    assert "Encoding tiles" not in log.stages
    assert list(tmp_path.iterdir()) == [other]


def test_a_truncated_or_edited_classifier_is_refused(scene, fitted, tmp_path):
    data = (fitted["out"] / "c.tscc").read_bytes()
    truncated, edited = tmp_path / "truncated.tscc", tmp_path / "edited.tscc"
    truncated.write_bytes(data[:-100])
    edited.write_bytes(data.replace(b'\\"tan\\"', b'\\"tax\\"', 1))  # a class name in the JSON header
    assert edited.read_bytes() != data
    for path, why in ((truncated, "not a complete safetensors file"), (edited, "checksum does not match")):
        with pytest.raises(EngineError, match=why):
            classify(scene, tmp_path, classifier=str(path))


def test_a_classifier_with_nan_weights_is_refused(fitted, tmp_path):
    """A fit that diverged (NaN weights, finite biases) saved with a valid checksum: loading it names the NaN."""
    model = load_classifier(str(fitted["out"] / "c.tscc"))
    weights = model.linear.weights.copy()
    weights[1, 3] = np.nan
    broken = tmp_path / "nan.tscc"
    save_classifier(dataclasses.replace(model, linear=Linear(weights, model.linear.bias)), str(broken))
    assert np.isfinite(model.linear.bias).all()
    with pytest.raises(EngineError, match="NaN or infinite"):
        load_classifier(str(broken))


def uniform_store(folder: Path, dim: int) -> FeatureStore:
    """A 2 x 2 patch store whose every feature is the unit vector e1 (so every pixel interpolates to e1)."""
    store = FeatureStore(str(folder), 2, 2, dim)
    features = np.zeros((2, 2, dim), dtype=np.float32)
    features[..., 0] = 1.0
    store.write(0, 0, features, np.ones((2, 2), dtype=np.uint8))
    return store


def scoring(model, scores: list[float]):
    """``model`` with weights that give a feature e1 the class ``scores`` (first column), zero biases."""
    weights = np.zeros((len(scores), model.linear.weights.shape[1]), dtype=np.float32)
    weights[:, 0] = scores
    return dataclasses.replace(model, linear=Linear(weights, np.zeros(len(scores), dtype=np.float32)))


@pytest.mark.parametrize("scores, best", [([0.0, 1.0, 2.0], 3), ([0.0, 2.0, 1.0], 2), ([2.0, 1.0, 0.0], 1)])
def test_the_confidence_is_the_winning_class_softmax_probability(fitted, tmp_path, scores, best):
    from treeseg.treeseg_plugin.engine.classify.predict import block_classes

    model = scoring(load_classifier(str(fitted["out"] / "c.tscc")), scores)
    with uniform_store(tmp_path, model.linear.weights.shape[1]) as store:
        classes, confidence = block_classes(store, model, 16, 0, 0, np.ones((32, 32), dtype=bool))
    softmax = np.exp(2.0) / (1 + np.exp(1.0) + np.exp(2.0))  # 0.665, by hand
    assert (classes == best).all() and (confidence == round(100 * softmax)).all()


def test_invalid_pixels_on_another_working_grid_are_nodata_in_both_modes(fitted, tmp_path):
    """Classes: 0 (the class raster's NoData); similarity: 255 (the percent raster's NoData)."""
    from treeseg.treeseg_plugin.engine.classify.model import SIMILARITY
    from treeseg.treeseg_plugin.engine.classify.predict import nearest_classes

    classifier = load_classifier(str(fitted["out"] / "c.tscc"))
    valid = np.ones((4, 4), dtype=bool)
    valid[1, 2] = False
    rows = cols = np.array([0, 8, 16, 24])
    with uniform_store(tmp_path, classifier.linear.weights.shape[1]) as store:
        classes, confidence = nearest_classes(store, scoring(classifier, [0.0, 2.0, 1.0]), 16, valid, rows, cols)
        similar = dataclasses.replace(scoring(classifier, [1.0]), mode=SIMILARITY)
        similarity, _ = nearest_classes(store, similar, 16, valid, rows, cols)
    assert classes[1, 2] == 0 and confidence[1, 2] == 255 and (classes[valid] == 2).all()
    assert similarity[1, 2] == 255 and (similarity[valid] == 100).all()  # e1 against the unit e1: cosine 1


def test_the_statistics_hold_the_accuracy_and_the_classes(fitted):
    stats = json.loads((fitted["out"] / "stats.json").read_text())
    assert [c["name"] for c in stats["classes"]] == fitted["result"].class_names
    assert sum(c["pixels"] for c in stats["classes"]) == WIDTH * HEIGHT
    assert stats["accuracy"] == fitted["result"].accuracy
    assert stats["accuracy"]["scheme"] == "leave-one-polygon-out" and stats["accuracy"]["folds"] == 15
    assert all(c["examples"] == 5 for c in stats["classes"])
    assert "grouped by example, never by pixel" in fitted["log"].text


def test_statistics_as_csv_and_html(scene, tmp_path):
    for ext in (".csv", ".html"):
        classify(scene, tmp_path, stats_path=str(tmp_path / f"stats{ext}"))
    csv_text = (tmp_path / "stats.csv").read_text()
    assert csv_text.splitlines()[0].startswith("class_id,name,color,pixels,percent,examples,example_patches")
    assert "overall_accuracy,scheme,folds" in csv_text
    html_text = (tmp_path / "stats.html").read_text()
    assert "Confusion matrix" in html_text and "never single pixels" in html_text


def test_one_class_gives_its_similarity(scene, tmp_path):
    examples = write_examples(tmp_path / "one.gpkg", [("blue", box(*r)) for r in rectangles(2)])
    result = classify(scene, tmp_path, examples_path=str(examples), class_field="kind",
                      classifier_output=str(tmp_path / "blue.tscc"))
    assert result.mode == "similarity" and result.accuracy is None
    similarity = read(result.output_path).astype(float)
    assert similarity.max() <= 100
    texture, away = texture_of_pixels(), away_from_borders()
    blue, others = similarity[away & (texture == 2)], similarity[away & (texture != 2)]
    assert blue.min() > others.max()
    applied = classify(scene, tmp_path / "applied", classifier=str(tmp_path / "blue.tscc"))
    assert applied.mode == "similarity" and np.array_equal(read(applied.output_path), similarity)
    with pytest.raises(EngineError, match=r"one class .* the confidence need two classes or more"):
        classify(scene, tmp_path / "refused", classifier=str(tmp_path / "blue.tscc"),
                 confidence_path=str(tmp_path / "refused" / "confidence.tif"))


def test_tree_classes_give_the_tree_wings_mask_and_crowns(scene, tmp_path):
    pytest.importorskip("scipy")
    result = classify(scene, tmp_path, tree_classes=["green"], trees_path=str(tmp_path / "trees.tif"),
                      crowns_path=str(tmp_path / "crowns.gpkg"))
    classes = read(result.output_path)
    green = result.class_names.index("green") + 1
    assert np.array_equal(read(result.trees_path) == 1, classes == green)
    crowns = ogr.Open(result.crowns_path)
    assert crowns.GetLayer(0).GetFeatureCount() >= 1
    for feature in crowns.GetLayer(0):
        _, x1, _, _ = feature.GetGeometryRef().GetEnvelope()
        assert x1 <= ORIGIN[0] + (STRIP + BORDER) * PIXEL  # crowns only over the green strip
    with pytest.raises(EngineError, match=r"Tree class\(es\) oak are not classes"):
        classify(scene, tmp_path / "oak", tree_classes=["oak"], trees_path=str(tmp_path / "oak" / "trees.tif"))


def test_points_in_another_crs_are_examples(scene, tmp_path):
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32617)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    features = []
    for t in range(len(TEXTURES)):
        for i in range(4):
            geometry = point(t * STRIP + 48, 24 + 40 * i)
            geometry.Transform(osr.CoordinateTransformation(utm, wgs84))
            features.append((t + 1, geometry))
    examples = write_examples(tmp_path / "points.gpkg", features, epsg=4326, field_type=ogr.OFTInteger)
    result = classify(scene, tmp_path, examples_path=str(examples), class_field="kind")
    assert result.class_names == ["1", "2", "3"] and result.polygons_per_class == {"1": 4, "2": 4, "3": 4}
    classes = read(result.output_path)
    right = (classes == texture_of_pixels() + 1)[away_from_borders()]
    assert right.mean() >= 0.98


def test_a_working_resolution_gives_classes_on_the_input_grid(scene, tmp_path):
    result = classify(scene, tmp_path, working_resolution=0.2)
    out = gdal.Open(result.output_path)
    assert (out.RasterXSize, out.RasterYSize) == (WIDTH, HEIGHT)
    expected = np.array([result.class_names.index(name) + 1 for name in TEXTURES])[texture_of_pixels()]
    assert (read(result.output_path) == expected)[away_from_borders()].mean() >= 0.98


def refused(scene: dict, tmp_path: Path, features: list, match: str, **settings) -> Log:
    examples = write_examples(tmp_path / "bad.gpkg", features, field_type=settings.pop("field_type", ogr.OFTString))
    log = Log()
    with pytest.raises(EngineError, match=match):
        classify(scene, tmp_path, log, examples_path=str(examples), class_field="kind", **settings)
    assert "Loading model" not in log.stages  # refused before the model loads
    assert not (tmp_path / "classes.tif").exists()
    return log


def test_examples_outside_the_raster_are_refused(scene, tmp_path):
    refused(scene, tmp_path, [("tan", box(-500, -500, -400, -400)), ("blue", point(5000, 10))],
            "None of the 2 examples lies inside the raster")


def test_an_example_without_a_class_is_refused(scene, tmp_path):
    refused(scene, tmp_path, [*five_per_class(), (None, box(30, 30, 60, 60)), ("  ", box(30, 60, 60, 90))],
            r"2 example\(s\) have no class in field 'kind'")


def test_more_than_255_classes_are_refused(scene, tmp_path):
    features = [(i, point(8 + (i % 18) * 16, 8 + (i // 18) * 12)) for i in range(256)]
    refused(scene, tmp_path, features, "name 256 classes .* at most 255", field_type=ogr.OFTInteger)


def test_one_polygon_per_class_with_cross_validation_is_refused(scene, tmp_path):
    features = [(name, box(*rectangles(t)[0])) for t, name in enumerate(TEXTURES)]
    refused(scene, tmp_path, features, "single example .* turn cross-validation off")
    result = classify(scene, tmp_path, examples_path=str(tmp_path / "bad.gpkg"), class_field="kind",
                      cross_validation=False)
    assert result.accuracy is None and result.mode == "classes"


def test_the_settings_are_checked_before_anything_runs(scene):
    base = {"input_path": scene["ortho"], "output_path": "/tmp/x.tif"}
    for settings, match in (({}, "No examples given"),
                            ({"examples_path": "e.gpkg"}, "No class field"),
                            ({"examples_path": "e.gpkg", "class_field": "k", "classifier": "c.tscc"}, "not both"),
                            ({"classifier": "c.tscm"}, r"must end in \.tscc"),
                            ({"classifier": "c.tscc", "classifier_output": "d.tscc"}, "applying fits nothing"),
                            ({"classifier": "c.tscc", "trees_path": "t.tif"}, "no class is named as trees"),
                            ({"examples_path": "e.gpkg", "class_field": "k", "regularisation": 0}, "Regularisation")):
        with pytest.raises(EngineError, match=match):
            validate_classify_config(ClassifyConfig(**base, **settings))


@pytest.mark.parametrize("regularisation", [1e-2, 1.0])
def test_the_logistic_regression_is_scikit_learns_with_balanced_classes(regularisation):
    sklearn = pytest.importorskip("sklearn.linear_model")
    from treeseg.treeseg_plugin.engine.classify.linear import fit_logistic

    rng = np.random.default_rng(1)
    sizes = (200, 40, 15)  # unbalanced, overlapping classes: the weights and the penalty's scale matter
    x = np.concatenate([rng.normal(loc=0.3 * c, size=(n, 8)) for c, n in enumerate(sizes)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.repeat(np.arange(3), sizes)
    ours = fit_logistic(x, y, 3, regularisation)
    theirs = sklearn.LogisticRegression(C=1 / (len(y) * regularisation), class_weight="balanced", tol=1e-12,
                                        max_iter=100000).fit(x, y)
    scores = x @ ours.weights.T.astype(np.float64) + ours.bias
    probabilities = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert np.abs(probabilities - theirs.predict_proba(x)).max() < 1e-4


def test_the_job_runs_in_a_worker_process_with_the_same_result(scene, fitted, tmp_path):
    from treeseg.treeseg_plugin.worker.client import run_job

    config = ClassifyConfig(scene["ortho"], str(tmp_path / "classes.tif"), model=scene["weights"],
                            examples_path=scene["examples"], class_field="kind", **SETTINGS)
    log = Log()
    result = run_job(config, log)
    assert type(result).__name__ == "ClassifyResult" and "Fitting classifier" in log.stages
    assert result.accuracy == fitted["result"].accuracy and result.class_names == fitted["result"].class_names
    assert np.array_equal(read(result.output_path), read(fitted["result"].output_path))


def test_few_or_unbalanced_examples_are_warned_about(scene, tmp_path):
    features = [("green", box(*r)) for r in rectangles(0)] + [("tan", box(*r)) for r in rectangles(1)[:2]]
    features += [("blue", box(2 * STRIP + 2, 2, WIDTH - 2, HEIGHT - 2)), ("blue", box(*rectangles(2)[0]))]
    examples = write_examples(tmp_path / "few.gpkg", features)
    log = Log()
    result = classify(scene, tmp_path, log, examples_path=str(examples), class_field="kind")
    patches = {row["class"]: row["patches"] for row in result.accuracy["per_class"]}
    assert patches["blue"] > 5 * patches["tan"]  # the scene: the large blue polygon against two small tan ones
    few = [w for w in result.warnings if "example(s)" in w]
    assert len(few) == 2 and any("'tan' has 2 example(s)" in w for w in few)  # and blue with its 2 polygons
    assert any("far from balanced: class 'blue'" in w and "class 'tan'" in w for w in result.warnings)
    assert set(result.warnings) <= set(log.warnings)


@pytest.mark.parametrize("working_resolution", [0.0, 0.2])
def test_an_extent_keeps_the_examples_inside_it_and_drops_a_class_left_outside(scene, tmp_path, working_resolution):
    left = STRIP + 16  # px: the extent starts inside the tan strip, so the green examples lie outside it
    extent = (ORIGIN[0] + left * PIXEL, ORIGIN[1] - HEIGHT * PIXEL, ORIGIN[0] + WIDTH * PIXEL, ORIGIN[1])
    log = Log()
    result = classify(scene, tmp_path, log, extent=extent, working_resolution=working_resolution)
    assert result.class_names == ["blue", "tan"]
    assert any("Class 'green' has no example" in w for w in log.warnings)
    classes = read(result.output_path)
    assert classes.shape == (HEIGHT, WIDTH - left)
    expected = np.array([0, 2, 1])[texture_of_pixels()][:, left:]
    assert (classes == expected)[away_from_borders()[:, left:] & (np.arange(WIDTH - left) >= BORDER)].mean() >= 0.98
