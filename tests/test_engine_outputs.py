"""Writers without a model: config validation, label GeoTIFF + colour table + .qml, stats files,
polygons and the all-or-nothing staging of outputs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from engine_runs import full_disk_on_replace
from osgeo import gdal, ogr, osr
from treeseg.treeseg_plugin.engine import Canceled, EngineError, Progress, SegmentationConfig
from treeseg.treeseg_plugin.engine.jobs.segmentation import TreeSettings, validate_config
from treeseg.treeseg_plugin.engine.raster.geotiff import Grid
from treeseg.treeseg_plugin.engine.raster.label_raster import label_writer, qml_text, write_qml
from treeseg.treeseg_plugin.engine.raster.palette import Legend, category_names, cluster_color, cluster_hex
from treeseg.treeseg_plugin.engine.raster.pixels import Stretch
from treeseg.treeseg_plugin.engine.raster.polygons import polygonize
from treeseg.treeseg_plugin.engine.raster.staging import Staging
from treeseg.treeseg_plugin.engine.runs.report import csv_text, html_text, write_stats
from treeseg.treeseg_plugin.engine.runs.statistics import (
    ChoiceOfK,
    ClusterCounts,
    ClusterModelFiles,
    Encoding,
    InputStatistics,
    ModelStatistics,
    Sampling,
    SegmentationStatistics,
    TileCounts,
    Timings,
    TreeStatistics,
    Versions,
)
from treeseg.treeseg_plugin.engine.trees.evidence import ClusterEvidence
from treeseg.treeseg_plugin.engine.trees.rule import TreeDecision

REPO = Path(__file__).resolve().parent.parent
GT = (500000.0, 0.5, 0.0, 3300000.0, 0.0, -0.5)


def _utm() -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32617)
    return srs


def _write_labels(path: Path, labels: np.ndarray, k: int) -> None:
    with label_writer(str(path), Grid(labels.shape[1], labels.shape[0], GT, _utm()), k) as writer:
        writer.write(0, 0, labels)
        writer.finish()


def _evidence(label: int, pixels: int, colour: tuple, ndvi: Optional[float], heights: tuple) -> ClusterEvidence:
    r, g, b, exg, vari = colour
    mean, median, p90, top = heights
    return ClusterEvidence(label, pixels, r, g, b, exg, vari, ndvi, pixels if ndvi is not None else 0,
                           pixels if mean is not None else 0, mean, median, p90, top)


def _stats() -> SegmentationStatistics:
    """A hand-made run's statistics: the values of tests/data/stats-before-typed/stats.json."""
    none = (None,) * 4
    trees = TreeStatistics(2.0, 4, "/c/<chm>.tif",
                           (_evidence(1, 50, (0.25, 0.5, 0.125, 0.625, 0.5), 0.375, (6.5, 6.25, 8.75, 11.0)),
                            _evidence(2, 30, (0.5, 0.5, 0.5, 0.0, 0.0), -0.125, (0.5, 0.25, 1.0, 1.5)),
                            _evidence(3, 20, (None,) * 5, None, none)),
                           (TreeDecision(1, True, "height", "median height 6.25 m >= 2 m"),
                            TreeDecision(2, False, "height", "median height 0.25 m < 2 m"),
                            TreeDecision(3, False, "empty", "no pixel <here>")), canopy_pixels=50, crowns=3)
    return SegmentationStatistics(
        k=ChoiceOfK(3, "model", 2, 6, 10.0, {2: 10.0, 3: 6.0, 4: 5.8}, {2: 40.0, 3: 3.3333}),
        counts=ClusterCounts((7, 50, 30, 20), 0.25, (0.0, 0.00125, 0.00075, 0.0005), "Projected <CRS> & co"),
        input=InputStatistics("/data/<in>.tif", (3, 2, 1), (4, 5, 10, 12), "EPSG:32617", {1: Stretch(0.5, 250.0)}),
        output="/o/out.tif",
        model=ModelStatistics("vits16", "vits16", 384, "/w.pth", "meta-pth", "ab" * 32, 38, 38),
        encoding=Encoding("cpu", "fp32", 16, 512, 64, 4), tiles=TileCounts(4, 1, 512, 480, 2, 3),
        sampling=Sampling(6, 0, 0, 200000),
        cluster_model=ClusterModelFiles("/m/<model>.tscm", "/o/saved.tscm", "cd" * 32),
        timings=Timings({"load_model": 0.25, "read_encode": 1.5, "fit": 0.0, "predict_write": 0.125, "total": 2.0},
                        {"load_model": 0.5, "read_encode": 3.0, "fit": 0.0, "predict_write": 0.25, "total": 4.0}),
        versions=Versions("0.1.0", "2.0", "1.24", "3.6", "3.11"), trees=trees,
        legend=Legend(("#1b9e77", "#e69f00", "#56b4e9"), ("NoData", "Trees 1", "Cluster 2", "Cluster <3>")))


# -- the engine stays QGIS-free --------------------------------------------------------------


def test_engine_never_imports_qgis():
    code = ("import sys, treeseg_plugin.engine, treeseg_plugin.engine.runs.segmentation; "
            "bad = [m for m in sys.modules if m == 'qgis' or m.startswith(('qgis.', 'PyQt'))]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_engine_keeps_the_callers_gdal_error_mode(tmp_path):
    """GDAL's exception mode belongs to the process (QGIS's): importing the engine, checking an input and a
    whole run (labels, polygons, statistics) leave it as they found it, and still raise clear errors."""
    raster = make_raster(tmp_path / "in.tif", 96, 96)
    weights = write_meta_pth(tmp_path / "tiny.pth", make_state_dict("tiny", seed=0))
    (tmp_path / "bad.tif").write_text("not a raster")
    code = f"""
from osgeo import gdal
assert not gdal.GetUseExceptions()
from treeseg_plugin.engine import SegmentationConfig
from treeseg_plugin.engine.raster import input as raster_io
from treeseg_plugin.engine.raster import label_raster as writer
from treeseg_plugin.engine.raster import pixels, polygons
from treeseg_plugin.engine.runs import segmentation as pipeline
assert not gdal.GetUseExceptions(), "importing the engine switched GDAL's mode"
for mode in (False, True):
    (gdal.UseExceptions if mode else gdal.DontUseExceptions)()
    assert "GDAL does not recognise it" in raster_io.input_problem({str(tmp_path / "bad.tif")!r})
    assert gdal.GetUseExceptions() == mode
    out = {str(tmp_path)!r} + f"/out{{mode}}"
    pipeline.run_segmentation(SegmentationConfig({str(raster)!r}, out + "/labels.tif", model={str(weights)!r},
                                                 tile_size=64, overlap=16, k=2, polygons_path=out + "/p.gpkg",
                                                 stats_path=out + "/stats.json"))
    assert gdal.GetUseExceptions() == mode, "a run switched GDAL's mode"
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {path.name for path in (tmp_path / "outTrue").iterdir()} >= {"labels.tif", "p.gpkg", "stats.json"}


# -- config validation -----------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "message"), [
    ({"k_min": 1}, "at least 2"),
    ({"k_min": 5, "k_max": 4}, "larger than maximum K"),
    ({"k_max": 65}, "at most 64"),
    ({"k": 1}, "use 0 for automatic"),
    ({"tile_size": 500}, "multiple of 16"),
    ({"overlap": 40}, "multiple of 16"),
    ({"overlap": 256}, "less than half"),
    ({"stride": 8, "overlap": 0}, "at least 16"),
    ({"stride": 12}, "Use 16, 8 or 4"),
    ({"batch_size": 0}, "at least 1"),
    ({"precision": "int8"}, "unknown"),
    ({"bands": [1, 2]}, "or 1 band"),
    ({"bands": [0, 1, 2]}, "start at 1"),
    ({"extent": (5, 0, 1, 1)}, "is empty"),
    ({"output_path": "out.png"}, "GeoTIFF"),
    ({"stats_path": "stats.txt"}, ".json, .csv or .html"),
    ({"polygons_path": "p.kml"}, ".gpkg, .shp or .geojson"),
    ({"stats_path": "same.json", "polygons_path": "same.json"}, "different files"),
    ({"elbow_threshold": 0}, "between 0 and 100"),
])
def test_invalid_settings_are_refused_with_the_fix(changes, message):
    config = SegmentationConfig(input_path="in.tif", output_path="out.tif")
    for key, value in changes.items():
        setattr(config, key, value)
    with pytest.raises(EngineError, match=message):
        validate_config(config)


def test_a_config_gives_its_tree_section_and_keeps_its_fields():
    """The tree steps take the config's tree section (a frozen copy of its fields); the config's fields, and so
    its JSON on the worker pipe and its keyword arguments, are those of the code before the sections (51c65f6), with
    the working resolution added after the fit settings."""
    config = SegmentationConfig("in.tif", "out.tif", k=3, nir_band=4, canopy_height_path="chm.tif",
                                min_tree_height=3.5, tree_clusters=[2], min_crown_area=0.5)
    assert config.tree_settings == TreeSettings(4, "chm.tif", 3.5, [2], 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tree_settings.min_tree_height = 1.0  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(SegmentationConfig)] == [
        "bands", "model", "device", "precision", "stride", "k", "k_min", "k_max", "elbow_threshold", "seed",
        "tile_size", "overlap", "batch_size", "max_samples", "working_resolution", "allow_download", "token",
        "input_path", "output_path",
        "extent", "stats_path", "polygons_path", "cluster_model", "cluster_model_output", "nir_band",
        "canopy_height_path", "min_tree_height", "tree_clusters", "trees_path", "crowns_path", "min_crown_area"]


def test_valid_defaults_pass_and_token_is_not_in_repr():
    config = SegmentationConfig("in.tif", "out.tif", token="hf_secret")  # noqa: S106 - a fake token
    validate_config(config)
    assert "hf_secret" not in repr(config)
    assert issubclass(Canceled, EngineError)


def test_device_and_precision_choice(monkeypatch):
    import torch
    from treeseg.treeseg_plugin.engine.encode import runtime
    from treeseg.treeseg_plugin.engine.encode.runtime import resolve_device, resolve_precision

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)  # auto on CPU: see test_performance_paths
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(EngineError, match="fp16 is not supported on the CPU"):
        resolve_precision("fp16", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EngineError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(EngineError, match="unknown"):
        resolve_device("tpu")


# Compute capabilities of real cards (NVIDIA's CUDA GPU table): bf16 runs natively from Ampere (8.0) on;
# Volta and Turing emulate it, where fp16 is the fast low precision.
CARDS = {"Tesla V100": (7, 0), "Tesla T4": (7, 5), "GeForce RTX 2080": (7, 5), "A100": (8, 0),
         "GeForce RTX 3090": (8, 6), "L4": (8, 9), "H100": (9, 0)}
NATIVE_BF16 = {"Tesla V100": False, "Tesla T4": False, "GeForce RTX 2080": False, "A100": True,
               "GeForce RTX 3090": True, "L4": True, "H100": True}


@pytest.mark.parametrize("card", sorted(CARDS))
def test_auto_precision_on_cuda_follows_the_cards_compute_capability(card):
    from treeseg.treeseg_plugin.engine.encode.runtime import resolve_precision

    expected = "bf16" if NATIVE_BF16[card] else "fp16"
    assert resolve_precision("auto", "cuda", capability_of=lambda _device: CARDS[card]) == expected
    assert resolve_precision("fp32", "cuda", capability_of=lambda _device: CARDS[card]) == "fp32"  # kept


def test_auto_precision_asks_the_chosen_cuda_device():
    """Two GPUs (a T4 as cuda:0, an A100 as cuda:1): the precision is the one of the device asked for."""
    from treeseg.treeseg_plugin.engine.encode.runtime import resolve_precision

    machine = {"cuda:0": CARDS["Tesla T4"], "cuda:1": CARDS["A100"]}
    asked: list[str] = []

    def capability_of(device: str) -> tuple[int, int]:
        asked.append(device)
        return machine[device]

    assert resolve_precision("auto", "cuda:1", capability_of=capability_of) == "bf16"
    assert resolve_precision("auto", "cuda:0", capability_of=capability_of) == "fp16"
    assert asked == ["cuda:1", "cuda:0"]


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_cuda_capability_is_the_named_devices():
    import torch
    from treeseg.treeseg_plugin.dinov3.device import cuda_capability
    from treeseg.treeseg_plugin.engine.encode.runtime import resolve_precision

    for index in range(torch.cuda.device_count()):
        properties = torch.cuda.get_device_properties(index)
        assert cuda_capability(f"cuda:{index}") == (properties.major, properties.minor)
        assert resolve_precision("auto", f"cuda:{index}") == ("bf16" if properties.major >= 8 else "fp16")


# -- label raster, colour table, .qml ------------------------------------------------------


def test_label_geotiff_format_colours_and_names(tmp_path):
    labels = np.array([[0, 1, 2], [3, 2, 1]], dtype=np.uint8)
    path = tmp_path / "labels.tif"
    _write_labels(path, labels, 3)
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    band.GetNoDataValue()  # GDAL 3.6: loads the .aux.xml before GetCategoryNames
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    assert band.GetBlockSize() == [256, 256]  # tiled
    assert np.array_equal(band.ReadAsArray(), labels)
    table = band.GetColorTable()
    assert table.GetColorEntry(0)[3] == 0
    assert [tuple(table.GetColorEntry(i)[:3]) for i in (1, 2, 3)] == [cluster_color(i) for i in (1, 2, 3)]
    assert band.GetCategoryNames() == ["NoData", "Cluster 1", "Cluster 2", "Cluster 3"]
    assert ds.GetGeoTransform() == GT and ds.GetSpatialRef().GetAuthorityCode(None) == "32617"
    ds = None


def test_palette_is_distinct_and_stable():
    colours = [cluster_hex(i) for i in range(1, 65)]
    assert len(set(colours)) == 64
    assert colours[:3] == ["#e69f00", "#56b4e9", "#009e73"]  # Okabe-Ito first
    assert category_names(2) == ["NoData", "Cluster 1", "Cluster 2"]


def test_qml_is_a_paletted_style_with_k_entries(tmp_path):
    path = tmp_path / "labels.qml"
    write_qml(str(path), 5)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(text.split("\n", 1)[1])  # noqa: S314 - our own file
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [e.get("value") for e in entries] == ["1", "2", "3", "4", "5"]
    assert [e.get("label") for e in entries] == [f"Cluster {i}" for i in range(1, 6)]
    assert [e.get("color") for e in entries] == [cluster_hex(i) for i in range(1, 6)]
    assert qml_text(5) == text


_QGIS_CHECK = """
import sys
from qgis.core import QgsApplication, QgsRasterLayer
app = QgsApplication([], False)
app.initQgis()
layer = QgsRasterLayer(sys.argv[1], "labels")
message, ok = layer.loadNamedStyle(sys.argv[2])
assert ok, message
renderer = layer.renderer()
print(renderer.type(), [(int(c.value), c.label, c.color.name()) for c in renderer.classes()])
"""


def test_qml_loads_as_a_paletted_style_in_qgis(tmp_path):
    pytest.importorskip("qgis.core", reason="QGIS Python bindings not installed")
    raster = tmp_path / "labels.tif"
    _write_labels(raster, np.array([[0, 1, 2, 3]], dtype=np.uint8), 3)
    write_qml(str(tmp_path / "labels.qml"), 3)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", _QGIS_CHECK, str(raster), str(tmp_path / "labels.qml")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    expected = [(i, f"Cluster {i}", cluster_hex(i)) for i in (1, 2, 3)]
    assert done.stdout.strip().splitlines()[-1] == f"paletted {expected}"


# -- stats files ------------------------------------------------------------------------------


def test_stats_json_csv_html(tmp_path):
    stats = _stats()
    write_stats(str(tmp_path / "s.json"), stats)
    assert json.loads((tmp_path / "s.json").read_text()) == stats.to_json()
    text = csv_text(stats)
    wcss_part, cluster_part, evidence_part = text.split("\n\n")
    wcss_rows = list(csv.reader(io.StringIO(wcss_part)))
    assert wcss_rows[0] == ["k", "wcss", "drop_percent", "chosen"]
    assert [r[0] for r in wcss_rows[1:]] == ["2", "3", "4"] and wcss_rows[2][3] == "yes"
    assert wcss_rows[3][2] == ""  # no step from the largest K
    cluster_rows = list(csv.reader(io.StringIO(cluster_part)))
    assert cluster_rows[0][:4] == ["label", "name", "color", "pixels"]
    assert cluster_rows[1][:4] == ["1", "Trees 1", "#1b9e77", "50"] and float(cluster_rows[1][4]) == 50.0
    assert [row[:3] for row in csv.reader(io.StringIO(evidence_part))][1:] == [
        ["1", "yes", "height"], ["2", "no", "height"], ["3", "no", "empty"]]
    page = html_text(stats)
    assert "<svg" in page and page.count("<circle") == 3 and "<script" not in page
    assert "&lt;CRS&gt; &amp; co" in page and "<CRS>" not in page and "&lt;in&gt;.tif" in page
    ET.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])  # noqa: S314 - the SVG is well-formed


@pytest.mark.parametrize("ext", ["json", "csv", "html"])
def test_stats_files_are_those_written_before_the_statistics_were_typed(tmp_path, ext):
    """tests/data/stats-before-typed/ holds the files that the code before the typed statistics (51c65f6) wrote
    for a run with these values (its keys in the order of that code's stats dict): unchanged, byte for byte."""
    write_stats(str(tmp_path / f"stats.{ext}"), _stats())
    expected = REPO / "tests" / "data" / "stats-before-typed" / f"stats.{ext}"
    assert (tmp_path / f"stats.{ext}").read_bytes() == expected.read_bytes()


def test_statistics_json_by_hand():
    """The typed statistics' JSON: percent, area and counts computed from the pixels; non-finite drops as null;
    the tree outputs' counts only when written; key order that of the stats file."""
    stats = _stats()
    data = stats.to_json()
    assert list(data)[:3] == ["chosen_k", "k_mode", "k_min"] and list(data)[-3:] == ["versions", "trees", "legend"]
    assert data["cluster_percent"] == {"1": 50.0, "2": 30.0, "3": 20.0}
    assert data["cluster_area"]["2"] == {"map_units": 30 * 0.25, "hectares": 0.00075}
    assert (data["valid_pixels"], data["nodata_pixels"]) == (100, 7)
    assert data["trees"]["tree_labels"] == [1] and data["trees"]["crowns"] == 3
    assert data["cluster_model"] == {"applied": "/m/<model>.tscm", "saved": "/o/saved.tscm",
                                     "applied_sha256": "cd" * 32}
    unasked = dataclasses.replace(stats.trees, canopy_pixels=None, crowns=None).to_json()
    assert "canopy_pixels" not in unasked and "crowns" not in unasked
    rising = dataclasses.replace(stats.k, wcss_drop_percent={2: float("-inf"), 3: float("nan")})
    assert dataclasses.replace(stats, k=rising).to_json()["wcss_drop_percent"] == {"2": None, "3": None}
    empty = dataclasses.replace(stats.counts, pixels=(9, 0, 0, 0))
    assert dataclasses.replace(stats, counts=empty).to_json()["cluster_percent"] == {"1": 0.0, "2": 0.0, "3": 0.0}


# -- polygons ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["p.gpkg", "p.shp", "p.geojson"])
def test_polygons_have_cluster_and_area(tmp_path, name):
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[2:10, 3:13] = 1
    labels[12:18, 5:25] = 2
    labels[0:4, 20:30] = 1
    raster = tmp_path / "labels.tif"
    _write_labels(raster, labels, 2)
    count = polygonize(str(raster), str(tmp_path / name), Progress())
    assert count == 3
    ds = ogr.Open(str(tmp_path / name))
    layer = ds.GetLayer(0)
    fields = [layer.GetLayerDefn().GetFieldDefn(i) for i in range(layer.GetLayerDefn().GetFieldCount())]
    assert [f.GetName() for f in fields] == ["cluster", "area"]
    assert fields[0].GetType() == ogr.OFTInteger and fields[1].GetType() == ogr.OFTReal
    got = sorted((f.GetField("cluster"), f.GetField("area")) for f in layer)
    assert got == sorted([(1, 80 * 0.25), (1, 40 * 0.25), (2, 120 * 0.25)])
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32617"
    ds = None
    assert not (tmp_path / ".polygonize").exists()


def test_polygonize_cancel_raises_canceled(tmp_path):
    raster = tmp_path / "labels.tif"
    _write_labels(raster, np.ones((50, 50), dtype=np.uint8), 1)

    class Stop(Progress):
        def is_canceled(self) -> bool:
            return True

    with pytest.raises(Canceled):
        polygonize(str(raster), str(tmp_path / "p.gpkg"), Stop())


# -- staging ----------------------------------------------------------------------------------


def test_staging_commits_all_files_main_last(tmp_path):
    dest = tmp_path / "new" / "deeper" / "out.tif"
    with Staging() as staging:
        temp = Path(staging.path(str(dest)))
        assert temp.parent.parent == dest.parent and temp.name == "out.tif"
        temp.write_text("tif")
        (temp.parent / "out.qml").write_text("qml")
        (temp.parent / "features").mkdir()  # folders are never moved
        staging.commit(last="out.tif")
    assert sorted(os.listdir(dest.parent)) == ["out.qml", "out.tif"]


def test_staging_moves_the_main_output_after_every_companion(tmp_path, monkeypatch):
    """The commit order the staging promises: the main output appears only when its companions (in its folder,
    named before or after it, and in other folders staged after it) are in place."""
    moved = []
    real_replace = os.replace

    def recording_replace(src, dst) -> None:
        real_replace(src, dst)
        moved.append(os.path.basename(dst))

    with Staging() as staging:
        main = Path(staging.path(str(tmp_path / "labels.tif")))
        for name in ("labels.tif", "labels.tif.aux.xml", "labels.qml", "z.txt"):
            (main.parent / name).write_text(name)
        Path(staging.path(str(tmp_path / "stats" / "a.json"))).write_text("{}")
        monkeypatch.setattr(os, "replace", recording_replace)
        staging.commit(last="labels.tif")
    assert sorted(moved[:-1]) == ["a.json", "labels.qml", "labels.tif.aux.xml", "z.txt"]
    assert moved[-1] == "labels.tif"


def test_staging_discard_leaves_nothing_and_keeps_existing_files(tmp_path):
    (tmp_path / "out.tif").write_text("old")
    new_folder = tmp_path / "made" / "here"
    with Staging() as staging:
        Path(staging.path(str(tmp_path / "out.tif"))).write_text("new")
        Path(staging.path(str(new_folder / "s.json"))).write_text("{}")
    assert os.listdir(tmp_path) == ["out.tif"] and (tmp_path / "out.tif").read_text() == "old"


def test_staging_failure_during_commit_removes_moved_files(tmp_path, monkeypatch):
    with Staging() as staging:
        temp = Path(staging.path(str(tmp_path / "out.tif")))
        temp.write_text("tif")
        (temp.parent / "out.qml").write_text("qml")
        full_disk_on_replace(monkeypatch, ".tif")
        with pytest.raises(EngineError, match="No space left"):
            staging.commit(last="out.tif")
    assert os.listdir(tmp_path) == []


def test_staging_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with Staging() as staging, pytest.raises(EngineError, match="Cannot create the output folder"):
        staging.path(str(tmp_path / "file" / "out.tif"))
    assert os.listdir(tmp_path) == ["file"]
