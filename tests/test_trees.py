"""Which clusters are trees: evidence per cluster, the tree rule's branches, the tree style (engine, CPU).

The scene (data_factory.vegetation_scene) has known parts: tree crowns, a lawn, a green sports court and
soil; a tiny random-weight DINOv3 separates them by colour and texture, which is all these tests need.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from data_factory import make_raster, vegetation_scene, write_chm, write_scene
from osgeo import gdal
from recording_progress import Log
from treeseg.treeseg_plugin.engine import EngineError, SegmentationConfig, run_segmentation
from treeseg.treeseg_plugin.engine.jobs.segmentation import validate_config
from treeseg.treeseg_plugin.engine.raster.georef import pixel_area
from treeseg.treeseg_plugin.engine.raster.palette import cluster_color
from treeseg.treeseg_plugin.engine.trees.crowns import crown_block, write_crowns
from treeseg.treeseg_plugin.engine.trees.evidence import ClusterEvidence, EvidenceAccumulator, EvidenceBlock
from treeseg.treeseg_plugin.engine.trees.rule import decide_trees

PARTS = ("trees", "grass", "court", "soil")


@pytest.fixture(scope="module")
def scene() -> dict:
    return vegetation_scene()


def segment(tmp_path: Path, tiny: str, ortho: Path, log: Log | None = None, **settings):
    # K = 5, one more than the scene's parts: at K = 4 the lowest-WCSS solution merges the lawn with some
    # soil for 3 of 5 seeds; at K = 5 every seed keeps each part's majority in a cluster of its own.
    config = SegmentationConfig(input_path=str(ortho), output_path=str(tmp_path / "labels.tif"), model=tiny, k=5,
                                tile_size=64, overlap=16, **settings)
    return run_segmentation(config, log or Log())


def labels_of(path: str) -> np.ndarray:
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray()


def verdicts(result, scene: dict) -> dict[str, bool]:
    """Tree or not for each part of the scene, by the cluster that holds most of the part's pixels."""
    labels = labels_of(result.output_path)
    out = {}
    for part in PARTS:
        counts = np.bincount(labels[scene[part]], minlength=result.chosen_k + 1)
        majority = int(np.argmax(counts[1:]) + 1)
        assert counts[majority] > 0.7 * scene[part].sum(), (part, counts)  # the clusters follow the parts
        out[part] = result.stats["trees"]["clusters"][str(majority)]["is_tree"]
    return out


def test_colour_branch_marks_the_green_clusters(tmp_path, tiny, scene):
    log = Log()
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), log)
    assert verdicts(result, scene) == {"trees": True, "grass": True, "court": True, "soil": False}
    clusters = result.stats["trees"]["clusters"]
    assert {c["basis"] for c in clusters.values()} == {"colour"}
    assert "ExG" in log.text and "VARI" in log.text and "Which clusters are trees" in log.text
    soil = min(clusters.values(), key=lambda c: c["exg"])
    assert soil["vari"] < 0 and not soil["is_tree"]  # tan soil: red above green
    assert f"{soil['reason']}" in log.text


def test_ndvi_branch_rejects_the_green_court(tmp_path, tiny, scene):
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgbn.tif", scene, nir=True), bands=[1, 2, 3],
                     nir_band=4)
    assert verdicts(result, scene) == {"trees": True, "grass": True, "court": False, "soil": False}
    clusters = result.stats["trees"]["clusters"].values()
    assert {c["basis"] for c in clusters} == {"ndvi"}
    assert all(c["ndvi"] is not None and c["ndvi_pixels"] > 0 for c in clusters)


def test_height_branch_keeps_only_the_tall_clusters(tmp_path, tiny, scene):
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=3857, pixel_size=1.0)
    log = Log()
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), log, canopy_height_path=str(chm))
    assert verdicts(result, scene) == {"trees": True, "grass": False, "court": False, "soil": False}
    clusters = result.stats["trees"]["clusters"]
    tree = next(c for c in clusters.values() if c["is_tree"])
    assert tree["basis"] == "height" and tree["height_median"] >= 2
    truth = scene["height"][labels_of(result.output_path) == tree["label"]]
    assert tree["height_max"] == pytest.approx(truth.max(), abs=1.0)  # resampled from a 1 m CHM in EPSG:3857
    assert tree["height_mean"] == pytest.approx(truth.mean(), abs=0.5)
    assert "median height" in log.text


def test_the_minimum_tree_height_reaches_the_rule(tmp_path, tiny, scene):
    """Above the tallest crown (16 m in the scene), no cluster is trees by height: the setting, not the default
    2 m, decides (the tree steps take it from the config's tree section)."""
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=3857, pixel_size=1.0)
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), canopy_height_path=str(chm),
                     min_tree_height=20.0)
    assert verdicts(result, scene) == {"trees": False, "grass": False, "court": False, "soil": False}
    assert result.stats["trees"]["min_tree_height_m"] == 20.0 and result.tree_clusters == []
    assert any("< 20 m" in c["reason"] for c in result.stats["trees"]["clusters"].values())


def test_tree_clusters_override_the_rule(tmp_path, tiny, scene):
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), tree_clusters=[2])
    assert result.tree_clusters == [2]
    assert [c["basis"] for c in result.stats["trees"]["clusters"].values()] == ["user"] * 5
    dataset = gdal.Open(result.output_path)
    dataset.GetGeoTransform()  # GDAL 3.6's GTiff reads the .aux.xml (category names) only once asked for this
    band = dataset.GetRasterBand(1)
    assert band.GetCategoryNames() == ["NoData", "Cluster 1: not trees", "Cluster 2: trees",
                                       "Cluster 3: not trees", "Cluster 4: not trees", "Cluster 5: not trees"]
    assert band.GetColorTable().GetColorEntry(2)[:3] == cluster_color(2, [2])
    green = cluster_color(2, [2])
    assert green[1] > green[0] and green[1] > green[2]
    qml = Path(result.style_path).read_text()
    assert 'label="Cluster 2: trees"' in qml


def test_tree_clusters_beyond_k_are_refused(tmp_path, tiny, scene):
    with pytest.raises(EngineError, match="use numbers from 1 to 5"):
        segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), tree_clusters=[6])


def test_chm_nodata_and_gaps_leave_heights_out(tmp_path, tiny, scene):
    """Heights under the CHM's NoData box are not counted: the height pixels equal the covered pixels."""
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=32617, pixel_size=0.5,
                    nodata_box=(0, 0, 96, 96))
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), canopy_height_path=str(chm))
    labels = labels_of(result.output_path)
    covered = np.ones(labels.shape, bool)
    covered[:96, :96] = False
    for key, cluster in result.stats["trees"]["clusters"].items():
        assert cluster["height_pixels"] == int(((labels == int(key)) & covered).sum())


def test_evidence_sums_are_exact():
    labels = np.array([[1, 1, 2, 0]], np.uint8)
    rgb = np.array([[[0.2, 0.4, 0.6, 0.9]], [[0.6, 0.4, 0.3, 0.9]], [[0.2, 0.2, 0.1, 0.9]]], np.float32)
    heights = np.array([[3.0, np.nan, 0.5, 40.0]], np.float32)
    acc = EvidenceAccumulator(2, nir=True, heights=True)
    acc.add(labels, EvidenceBlock(labels > 0, rgb, np.array([[20, 40, 60, 90]]), np.array([[180, 40, 0, 90]]),
                                  np.array([[True, True, False, True]]), heights))
    one, two = acc.clusters()
    assert (one.pixels, two.pixels) == (2, 1)
    assert one.mean_r == pytest.approx(0.3) and one.mean_g == pytest.approx(0.5) and one.mean_b == pytest.approx(0.2)
    assert one.exg == pytest.approx(((1.2 - 0.4) / 1.0 + (0.8 - 0.6) / 1.0) / 2)
    assert one.vari == pytest.approx((0.5 - 0.3) / (0.5 + 0.3 - 0.2))
    assert one.ndvi == pytest.approx((0.8 + 0.0) / 2) and one.ndvi_pixels == 2
    assert two.ndvi is None  # its NIR pixel is NoData
    assert (one.height_pixels, one.height_max, one.height_median) == (1, 3.0, 3.05)
    assert two.height_median == pytest.approx(0.55)


def test_a_median_height_equal_to_the_minimum_is_trees():
    """MIN_TREE_HEIGHT is the least a tree cluster's median can be ("at least", as lidR's minimum): 2.05 m
    (a histogram bin centre) against a minimum of 2.05 m is trees; 1.95 m is not."""
    def cluster(label: int, median: float) -> ClusterEvidence:
        return ClusterEvidence(label, 10, 0.3, 0.3, 0.3, 0.0, 0.0, height_pixels=10, height_mean=median,
                               height_median=median, height_p90=median, height_max=median)

    decisions = decide_trees([cluster(1, 2.05), cluster(2, 1.95)], min_tree_height=2.05)
    assert [(d.label, d.is_tree, d.basis) for d in decisions] == [(1, True, "height"), (2, False, "height")]


@pytest.mark.parametrize(("changes", "message"), [
    ({"nir_band": 0}, "band number"), ({"min_tree_height": -1}, "positive"), ({"min_crown_area": -2}, "0 or more"),
    ({"tree_clusters": [0]}, "from 1 to 64"), ({"k": 3, "tree_clusters": [4]}, "above K = 3"),
    ({"trees_path": "/tmp/t.png"}, "GeoTIFF"), ({"crowns_path": "/tmp/c.kml"}, ".gpkg"),
])
def test_tree_settings_are_checked(changes, message):
    with pytest.raises(EngineError, match=message):
        validate_config(SegmentationConfig(input_path="/tmp/in.tif", output_path="/tmp/out.tif", **changes))


def test_nir_band_must_exist(tmp_path, tiny):
    ortho = make_raster(tmp_path / "in.tif", 96, 96)
    with pytest.raises(EngineError, match="NIR band 5 does not exist"):
        segment(tmp_path, tiny, ortho, nir_band=5)


def test_stats_show_the_evidence(tmp_path, tiny, scene):
    ortho = write_scene(tmp_path / "rgb.tif", scene)
    for name in ("s.json", "s.csv", "s.html"):
        segment(tmp_path, tiny, ortho, stats_path=str(tmp_path / name))
    data = json.loads((tmp_path / "s.json").read_text())
    assert set(data["trees"]["clusters"]["1"]) >= {"exg", "vari", "mean_r", "is_tree", "reason"}
    csv_text = (tmp_path / "s.csv").read_text()
    assert "label,is_tree,basis,reason,mean_r" in csv_text and ": trees" in csv_text
    assert "Which clusters are trees" in (tmp_path / "s.html").read_text()


# -- TREES and CROWNS --------------------------------------------------------------------------


def test_tree_mask_is_on_the_label_grid_with_nodata(tmp_path, tiny, scene):
    invalid = np.zeros(scene["soil"].shape, bool)
    invalid[150:, 20:60] = True
    ortho = write_scene(tmp_path / "rgb.tif", scene)
    dataset = gdal.Open(str(ortho), gdal.GA_Update)
    for b in (1, 2, 3):
        band = dataset.GetRasterBand(b)
        band.SetNoDataValue(0)
        values = band.ReadAsArray()
        values[invalid] = 0
        band.WriteArray(values)
    dataset = band = None
    result = segment(tmp_path, tiny, ortho, trees_path=str(tmp_path / "out" / "trees.tif"))
    mask_ds, labels_ds = gdal.Open(result.trees_path), gdal.Open(result.output_path)
    assert mask_ds.GetGeoTransform() == labels_ds.GetGeoTransform() == gdal.Open(str(ortho)).GetGeoTransform()
    assert mask_ds.GetSpatialRef().IsSame(labels_ds.GetSpatialRef())
    band = mask_ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
    mask, labels = band.ReadAsArray(), labels_ds.GetRasterBand(1).ReadAsArray()
    assert np.array_equal(mask == 255, invalid) and np.array_equal(mask == 255, labels == 0)
    assert np.array_equal(mask == 1, np.isin(labels, result.tree_clusters))
    assert (mask[scene["trees"] & ~invalid] == 1).mean() > 0.95
    assert (tmp_path / "out" / "trees.qml").read_text().count("<paletteEntry") == 2
    assert result.stats["trees"]["canopy_pixels"] == int((mask == 1).sum())


def _crowns(path: str) -> list[dict]:
    from osgeo import ogr

    vector = ogr.Open(path)
    layer = vector.GetLayer(0)
    names = ("crown_id", "area_m2", "height_max", "height_mean", "cluster")  # GeoJSON drops all-null fields
    out = [{**{name: feature.GetField(name) if feature.GetFieldIndex(name) >= 0 else None for name in names},
            "geometry": feature.GetGeometryRef().Clone(), "srs": layer.GetSpatialRef()} for feature in layer]
    return out


def test_crowns_from_heights_one_per_tree(tmp_path, tiny, scene):
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=3857, pixel_size=1.0)
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), canopy_height_path=str(chm),
                     crowns_path=str(tmp_path / "out" / "crowns.gpkg"))
    crowns = _crowns(result.crowns_path)
    assert 32 <= len(crowns) <= 40  # 36 trees in the scene
    assert sorted(c["crown_id"] for c in crowns) == list(range(1, len(crowns) + 1))
    ortho_srs = gdal.Open(result.output_path).GetSpatialRef()
    for crown in crowns:
        assert crown["geometry"].IsValid() and crown["srs"].IsSame(ortho_srs)
        # true (ellipsoidal) area: on the UTM central meridian the planar m² / 0.9996² (the scale factor)
        assert crown["area_m2"] == pytest.approx(crown["geometry"].GetArea() / 0.9996**2, rel=1e-4)
        assert 1 < crown["height_mean"] < crown["height_max"] <= 17 and crown["height_max"] >= 8  # tops 10-16 m
        assert crown["cluster"] in result.tree_clusters
    assert result.stats["trees"]["crowns"] == len(crowns)


def test_crowns_without_heights_and_min_area(tmp_path, tiny, scene):
    ortho = write_scene(tmp_path / "rgb.tif", scene)
    result = segment(tmp_path, tiny, ortho, crowns_path=str(tmp_path / "a" / "crowns.gpkg"), min_crown_area=0)
    crowns = _crowns(result.crowns_path)
    assert crowns and all(c["height_max"] is None for c in crowns)
    smallest = min(c["area_m2"] for c in crowns)
    fewer = segment(tmp_path, tiny, ortho, crowns_path=str(tmp_path / "b" / "crowns.geojson"),
                    min_crown_area=smallest + 0.01)
    assert len(_crowns(fewer.crowns_path)) < len(crowns)


def test_treetop_windows_grow_3_m_plus_a_tenth_of_the_height():
    """Two cones on 1 m pixels, tops 30 m and 29 m, 5 m apart: the lower top's window is 3 + 0.1 x 29 = 5.9 m,
    rounded up by less than 15 % to an odd 7 px (3 px each side), so it does not reach the taller top and
    both are treetops of their own crowns. (A window of 3 + 0.2 x 29 m would reach it: one crown.)"""
    rows, cols = np.mgrid[:41, :41]
    cones = [top - 2.0 * np.hypot(rows - 20, cols - col) for top, col in ((30.0, 18), (29.0, 23))]
    heights = np.maximum(np.maximum(*cones), 0).astype(np.float32)
    canopy = heights >= 2
    crowns, markers = crown_block(canopy, heights, 1.0, 2.0, np.full(heights.shape, 100.0))
    assert [tuple(np.argwhere(markers == n)[0]) for n in (1, 2)] == [(20, 18), (20, 23)] and markers.max() == 2
    assert set(np.unique(crowns[canopy])) == {1, 2} and crowns[20, 18] != crowns[20, 23]


def test_crowns_cover_only_canopy_at_least_the_minimum_tree_height():
    """A 10 m cone (1 m lower per pixel) whose whole disc is tree-cluster canopy: with MIN_TREE_HEIGHT 2 m the
    crown is the pixels 2 m or higher, and the lower rim (a crown's edge, a gap) belongs to no crown."""
    rows, cols = np.mgrid[:25, :25]
    heights = np.maximum(10.0 - np.hypot(rows - 12, cols - 12), 0).astype(np.float32)
    crowns, markers = crown_block(np.ones(heights.shape, bool), heights, 1.0, 2.0, np.full(heights.shape, 100.0))
    assert markers.max() == 1 and markers[12, 12] == 1
    assert bool(((crowns == 1) == (heights >= 2)).all()) and (heights < 2).sum() > 0


@pytest.mark.parametrize(("min_area", "kept"), [(2.25, [6.25, 2.25]), (6.25, [6.25]), (6.26, [])])
def test_a_crown_of_exactly_the_minimum_area_is_kept(tmp_path, min_area, kept):
    """MIN_CROWN_AREA is the least area a crown may have: on 0.5 m pixels without a CRS a 5 x 5 px crown is
    25 x 0.25 = 6.25 map units², a 3 x 3 px one 2.25; each stays while the minimum is at most its area."""
    array = np.full((1, 16, 16), 2, np.uint8)
    array[0, 2:7, 2:7] = array[0, 10:13, 10:13] = 1
    path = make_raster(tmp_path / "labels.tif", 16, 16, bands=1, epsg=None, pixel_size=0.5, data=array)
    gt = gdal.Open(str(path)).GetGeoTransform()
    out = tmp_path / "crowns.gpkg"
    count = write_crowns(str(path), str(out), [1], None, pixel_area(gt, None, 16, 16), 2.0, min_area, 2, Log())
    assert count == len(kept) and [c["area_m2"] for c in _crowns(str(out))] == kept


def test_crowns_cross_block_cores_whole(monkeypatch, tmp_path, tiny, scene):
    """With 64 px cores the crowns are the same as with one block: ids follow the treetops, not the blocks."""
    from treeseg.treeseg_plugin.engine.trees import crowns as crowns_module
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=32617, pixel_size=0.5)
    ortho = write_scene(tmp_path / "rgb.tif", scene)
    whole = _crowns(segment(tmp_path, tiny, ortho, canopy_height_path=str(chm),
                            crowns_path=str(tmp_path / "whole.gpkg")).crowns_path)
    monkeypatch.setattr(crowns_module, "CORE", 64)
    blocked = _crowns(segment(tmp_path, tiny, ortho, canopy_height_path=str(chm),
                              crowns_path=str(tmp_path / "blocked.gpkg")).crowns_path)
    assert len(blocked) == len(whole)
    assert sum(c["area_m2"] for c in blocked) == pytest.approx(sum(c["area_m2"] for c in whole))
    assert sorted(c["height_max"] for c in blocked) == sorted(c["height_max"] for c in whole)


class _CancelIn(Log):
    """Asks to stop at the first cancel check inside ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.target = stage

    def is_canceled(self) -> bool:
        return bool(self.stages) and self.stages[-1] == self.target


@pytest.mark.parametrize("stage", ["Writing tree mask", "Writing crowns"])
def test_cancel_in_the_tree_stages_leaves_the_destination_untouched(tmp_path, tiny, scene, stage):
    from treeseg.treeseg_plugin.engine import Canceled

    ortho = write_scene(tmp_path / "rgb.tif", scene)
    out = tmp_path / "dest"
    out.mkdir()
    (out / "crowns.gpkg").write_bytes(b"previous crowns")
    with pytest.raises(Canceled):
        run_segmentation(SegmentationConfig(input_path=str(ortho), output_path=str(out / "labels.tif"), model=tiny,
                                            k=4, tile_size=64, overlap=16, trees_path=str(out / "trees.tif"),
                                            crowns_path=str(out / "crowns.gpkg")), _CancelIn(stage))
    assert os.listdir(out) == ["crowns.gpkg"] and (out / "crowns.gpkg").read_bytes() == b"previous crowns"


def test_tree_stages_are_reported_in_order(tmp_path, tiny, scene):
    log = Log()
    segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), log, trees_path=str(tmp_path / "t.tif"),
            crowns_path=str(tmp_path / "c.gpkg"), stats_path=str(tmp_path / "s.json"))
    assert log.stages[-3:] == ["Writing tree mask", "Writing crowns", "Writing statistics"]
    assert log.percents == sorted(log.percents)
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["trees"]["crowns"] > 0 and stats["trees"]["canopy_pixels"] > 0


def test_crowns_without_scipy_stop_before_the_model_loads(tmp_path, tiny, scene, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)  # what Python does for a module not installed
    log = Log()
    with pytest.raises(EngineError, match="Tree crowns need scipy"):
        segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), log, crowns_path=str(tmp_path / "c.gpkg"))
    assert log.stages == ["Reading input"] and not (tmp_path / "c.gpkg").exists()


def test_a_canopy_height_raster_elsewhere_is_refused_before_the_model(tmp_path, tiny, scene):
    elsewhere = make_raster(tmp_path / "chm.tif", 50, 50, bands=1, dtype="Float32", origin=(600000.0, 3400000.0))
    log = Log()
    with pytest.raises(EngineError, match="does not overlap the orthophoto"):
        segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), log, canopy_height_path=str(elsewhere))
    assert log.stages == ["Reading input"]


def test_a_canopy_height_raster_without_heights_there_is_said(tmp_path, tiny, scene):
    chm = write_chm(tmp_path / "chm.tif", scene["height"], epsg=32617, pixel_size=0.5,
                    nodata_box=(0, 0, 192, 192))
    log = Log()
    result = segment(tmp_path, tiny, write_scene(tmp_path / "rgb.tif", scene), log, canopy_height_path=str(chm))
    assert "has no height under any valid pixel" in log.text
    assert {c["basis"] for c in result.stats["trees"]["clusters"].values()} == {"colour"}


def test_the_labelling_pass_reads_each_input_band_once_per_block(tmp_path, tiny, scene, monkeypatch):
    """The evidence (RGB, NIR) comes from the reads that label the pixels: no second read of the input."""
    from treeseg.treeseg_plugin.engine.raster.input import InputRaster

    log = Log()
    reads: list[tuple] = []
    original = InputRaster._band_values

    def counting(self, index, x0, y0, w, h, buf=None):
        if log.stages and log.stages[-1] == "Writing labels":
            reads.append((index, x0, y0, w, h))
        return original(self, index, x0, y0, w, h, buf)

    monkeypatch.setattr(InputRaster, "_band_values", counting)
    segment(tmp_path, tiny, write_scene(tmp_path / "rgbn.tif", scene, nir=True), log, bands=[1, 2, 3], nir_band=4)
    assert sorted(reads) == sorted(set(reads))  # no window of a band read twice
    assert {index for index, *_ in reads} == {1, 2, 3, 4} and len(reads) == 4  # 192 x 192 px: one block
