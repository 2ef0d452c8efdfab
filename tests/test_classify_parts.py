"""Parts of Classify from Examples without a model: the examples on the patch grid and their class order
(engine/raster/examples.py), the folds and scores of the grouped cross-validation (engine/classify/validation.py)
and the one-class similarity (engine/classify/linear.py), against hand-worked values."""

from __future__ import annotations

import numpy as np
from osgeo import ogr
from treeseg.treeseg_plugin.engine.classify.linear import fit_similarity
from treeseg.treeseg_plugin.engine.classify.validation import FOLDS, example_warnings, folds, scores
from treeseg.treeseg_plugin.engine.raster.examples import class_order, patch_geotransform, rasterise
from treeseg.treeseg_plugin.engine.runs.classify_report import csv_text

# A window of 64 x 48 px of 1 m with its origin at (100, 200), stride 16: 4 x 3 patch cells.
WINDOW_GT = (100.0, 1.0, 0.0, 200.0, 0.0, -1.0)


def geometry(wkt: str) -> ogr.Geometry:
    return ogr.CreateGeometryFromWkt(wkt)


def test_the_patch_grid_is_centred_on_the_patch_centres():
    # cell (r, c) is 16 px wide, centred on pixel (c*16 + 8, r*16 + 8)
    assert patch_geotransform(WINDOW_GT, 16, 8) == (100.0, 16.0, 0.0, 200.0, 0.0, -16.0)
    # at stride 8 the centres are 8 px apart and the first is still at pixel 8: the cells start at pixel 4
    assert patch_geotransform(WINDOW_GT, 8, 8) == (104.0, 8.0, 0.0, 196.0, 0.0, -8.0)


def test_polygons_take_the_cells_whose_centre_they_hold_points_and_small_polygons_the_cell_under_them():
    gt = patch_geotransform(WINDOW_GT, 16, 8)
    examples = [
        geometry("POLYGON ((101 199, 131 199, 131 183, 101 183, 101 199))"),  # holds the centres (108, 192) and
        # (124, 192): cells (0, 0) and (0, 1)
        geometry("POINT (150 170)"),  # pixel (50, 30): cell (1, 3)
        geometry("POLYGON ((133 166, 135 166, 135 164, 133 164, 133 166))"),  # no centre inside: cell (2, 2)
        geometry("POLYGON ((500 500, 510 500, 510 490, 500 500))"),  # outside the window: no cell
    ]
    cells = rasterise(examples, gt, 3, 4, None)
    expected = np.zeros((3, 4), dtype=np.int32)
    expected[0, 0] = expected[0, 1] = 1
    expected[1, 3] = 2
    expected[2, 2] = 3
    assert np.array_equal(cells, expected)


def test_leave_one_out_up_to_30_examples_then_grouped_10_fold_keeping_every_class_in_training():
    groups = np.arange(1, 13)
    assert [list(f) for f in folds(groups, groups % 3)] == [[g] for g in groups]
    groups = np.arange(1, 31)  # 30 examples, the last count left out one at a time
    assert [list(f) for f in folds(groups, groups % 3)] == [[g] for g in groups]
    groups = np.arange(1, 32)  # 31: grouped 10-fold
    assert len(folds(groups, groups % 3)) == FOLDS
    groups = np.arange(1, 41)
    classes = np.array([0] * 25 + [1] * 12 + [2] * 3)
    plan = folds(groups, classes)
    assert len(plan) == FOLDS and sorted(np.concatenate(plan).tolist()) == groups.tolist()
    for held_out in plan:
        training = classes[~np.isin(groups, held_out)]
        assert set(training.tolist()) == {0, 1, 2}
        # each class's examples dealt in turn: a fold holds 2 or 3 of class 0 and 1 or 2 of class 1
        assert np.sum(classes[np.isin(groups, held_out)] == 0) in (2, 3)


def test_the_scores_of_a_confusion_matrix():
    confusion = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    result = scores(confusion, ["a", "b", "c"], np.array([0, 0, 1, 1, 1]))
    assert result["overall_accuracy"] == 17 / 20
    a, b, c = result["per_class"]
    assert (a["precision"], a["recall"]) == (8 / 9, 8 / 10) and a["f1"] == 2 * (8 / 9) * 0.8 / (8 / 9 + 0.8)
    assert (b["precision"], b["recall"], b["polygons"], b["patches"]) == (9 / 11, 9 / 10, 3, 10)
    assert (c["precision"], c["recall"], c["f1"]) == (None, None, None)  # never an example, never predicted
    assert result["confusion"] == confusion.tolist()



def test_the_csv_report_puts_each_score_in_its_column_and_the_confusion_rows_by_class():
    # a: 8 of its 10 patches right, 9 patches predicted a -> precision 8/9 = 0.8889, recall 0.8000,
    # F1 2 * 0.8889 * 0.8 / 1.6889 = 0.8421; b: 9/11 = 0.8182, 0.9000, F1 0.8571 (by hand)
    accuracy = {"scheme": "leave-one-polygon-out", "folds": 5,
                **scores(np.array([[8, 2], [1, 9]]), ["a", "b"], np.array([0, 0, 1, 1, 1]))}
    classes = [{"class_id": i, "name": name, "color": color, "pixels": pixels, "percent": percent, "examples": n,
                "example_patches": 10} for i, name, color, pixels, percent, n in
               ((1, "a", "#ff0000", 30, 30.0, 2), (2, "b", "#0000ff", 70, 70.0, 3))]
    tables = csv_text({"classes": classes, "accuracy": accuracy}).split("\n\n")
    assert tables[0].splitlines()[1:] == ["1,a,#ff0000,30,30.0000,2,10,0.8889,0.8000,0.8421",
                                          "2,b,#0000ff,70,70.0000,3,10,0.8182,0.9000,0.8571"]
    assert tables[1].splitlines() == ["overall_accuracy,scheme,folds", "0.850000,leave-one-polygon-out,5"]
    assert tables[2].splitlines() == ["examples \\ predicted,a,b", "a,8,2", "b,1,9"]


def test_warnings_below_3_examples_and_above_5_times_the_patches():
    assert example_warnings({"a": 3, "b": 3}, {"a": 50, "b": 10}) == []  # 3 examples and exactly 5 x: no warning
    few = example_warnings({"a": 2, "b": 3}, {"a": 10, "b": 10})
    assert len(few) == 1 and "Class 'a' has 2 example(s)" in few[0]
    unbalanced = example_warnings({"a": 3, "b": 3}, {"a": 51, "b": 10})  # 5.1 x
    assert len(unbalanced) == 1 and "class 'a' covers 51 patches, class 'b' 10" in unbalanced[0]

def test_an_integer_class_field_orders_its_classes_by_number_a_text_field_alphabetically():
    assert class_order(["10", "2", "9", "2"], numeric=True) == ("2", "9", "10")
    assert class_order(["10", "2", "9", "2"], numeric=False) == ("10", "2", "9")


def test_one_class_scores_the_cosine_similarity_to_its_examples_mean():
    # examples (1, 0) and (0, 1): their mean points at 45 degrees, so each example's cosine to it is cos 45 degrees
    # and the mean's own direction scores 1 (a cosine, whatever the examples' spread)
    similarity = fit_similarity(np.array([[1.0, 0.0], [0.0, 1.0]]))
    probes = np.array([[1.0, 0.0], [0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5)], [-1.0, 0.0]])
    expected = [np.sqrt(0.5), np.sqrt(0.5), 1.0, -np.sqrt(0.5)]
    assert np.allclose(similarity.scores(probes)[:, 0], expected, atol=1e-6)
