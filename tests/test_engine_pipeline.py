"""End-to-end engine runs with tiny random-weight DINOv3 checkpoints (CPU, seconds each)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from engine_runs import band_values, full_disk_on_replace, segmenter
from osgeo import gdal, ogr
from recording_progress import Log
from treeseg.treeseg_plugin.dinov3 import load_backbone
from treeseg.treeseg_plugin.engine import (
    Canceled,
    EngineError,
)
from treeseg.treeseg_plugin.engine.encode import runtime as engine_runtime
from treeseg.treeseg_plugin.engine.encode.features import FeatureStore, TileEncoder
from treeseg.treeseg_plugin.engine.encode.tiling import plan_tiles
from treeseg.treeseg_plugin.engine.raster.georef import Window
from treeseg.treeseg_plugin.engine.raster.input import InputRaster
from treeseg.treeseg_plugin.engine.raster.pixels import RasterSource

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
TOKEN = "hf_NeverWriteMe123"  # noqa: S105 - a fake token that must never be written


class CancelAt(Log):
    """Asks to stop at the ``after``-th cancel check of ``target`` stage (0 = the first)."""

    def __init__(self, target: str, after: int = 0) -> None:
        super().__init__()
        self.target, self.after, self.checks = target, after, 0

    def is_canceled(self) -> bool:
        if self.stages and self.stages[-1] == self.target:
            self.checks += 1
            return self.checks > self.after
        return False


_run = segmenter(tile_size=128, overlap=32, k_max=4)
_read = band_values


def _agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of pixels with the same label under the best relabelling of ``b``."""
    best = 0.0
    for perm in itertools.permutations(range(1, k + 1)):
        mapping = np.arange(k + 1)
        mapping[1:] = perm
        best = max(best, float(np.mean(a == mapping[b])))
    return best


def _half_invalid() -> np.ndarray:
    invalid = np.zeros((160, 192), bool)
    invalid[:, :96] = True
    return invalid


# -- the output raster ----------------------------------------------------------------------


def test_output_grid_labels_style_and_result(tmp_path, tiny):
    invalid = np.zeros((170, 200), bool)
    invalid[20:40, 30:90] = True
    raster = make_raster(tmp_path / "in.tif", 200, 170, nodata=255, invalid=invalid)
    log = Log()
    result = _run(raster, tmp_path / "out" / "labels.tif", tiny, log, stats_path=str(tmp_path / "out" / "s.json"))
    out = tmp_path / "out" / "labels.tif"
    assert sorted(os.listdir(out.parent)) == ["labels.qml", "labels.tif", "labels.tif.aux.xml", "s.json"]
    src, dst = gdal.Open(str(raster)), gdal.Open(str(out))
    assert (dst.RasterXSize, dst.RasterYSize, dst.RasterCount) == (200, 170, 1)
    assert dst.GetGeoTransform() == src.GetGeoTransform()
    assert dst.GetSpatialRef().IsSame(src.GetSpatialRef())
    band = dst.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    labels = band.ReadAsArray()
    k = result.chosen_k
    assert 2 <= k <= 4
    assert np.array_equal(labels == 0, invalid)
    assert set(np.unique(labels[~invalid])) <= set(range(1, k + 1))
    trees = set(result.tree_clusters)
    assert band.GetCategoryNames() == ["NoData"] + [f"Cluster {i}: {'trees' if i in trees else 'not trees'}"
                                                    for i in range(1, k + 1)]
    assert band.GetColorTable().GetColorEntry(0)[3] == 0
    src = dst = band = None
    assert (tmp_path / "out" / "labels.qml").read_text().count("<paletteEntry") == k
    assert result.output_path == str(out) and result.style_path == str(tmp_path / "out" / "labels.qml")
    assert sum(result.cluster_pixels.values()) == int((~invalid).sum())
    assert result.cluster_pixels == {i: int((labels == i).sum()) for i in range(1, k + 1)}
    for i, area in result.cluster_area.items():
        assert area["map_units"] == pytest.approx(result.cluster_pixels[i] * 0.01)
        # ellipsoidal: UTM's planar area over the scale factor squared (0.9996 on the central meridian)
        assert area["hectares"] == pytest.approx(result.cluster_pixels[i] * 0.01 / 1e4 / 0.9996 ** 2)
    assert log.stages == ["Reading input", "Loading model", "Encoding tiles", "Fitting k-means", "Writing labels",
                          "Writing statistics"]
    assert log.percents == sorted(log.percents) and log.percents[-1] == 100
    for needle in ("Device: cpu", "tensors loaded", "tiles of", "skipped 0", "WCSS", f"Chosen K = {k}",
                   "Cluster 1:", "NoData 255"):
        assert needle in log.text, needle


def test_same_input_gives_byte_identical_files(tmp_path, tiny):
    raster = make_raster(tmp_path / "in.tif", 180, 150, kind="blobs")
    first = _run(raster, tmp_path / "a" / "labels.tif", tiny)
    second = _run(raster, tmp_path / "b" / "labels.tif", tiny)
    for name in ("labels.tif", "labels.tif.aux.xml", "labels.qml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.wcss == second.wcss


def test_one_big_tile_and_many_small_tiles_agree(tmp_path, tiny):
    raster = make_raster(tmp_path / "in.tif", 320, 288, kind="regions")
    big = _run(raster, tmp_path / "big.tif", tiny, tile_size=512, overlap=64, k=3)
    small = _run(raster, tmp_path / "small.tif", tiny, tile_size=96, overlap=32, k=3)
    assert big.stats["tiles"]["total"] == 1 and small.stats["tiles"]["total"] == 20
    assert _agreement(_read(tmp_path / "big.tif"), _read(tmp_path / "small.tif"), 3) >= 0.98


# -- masks, stretch, bands, extent ------------------------------------------------------------


@pytest.mark.parametrize("how", ["nodata", "alpha", "mask"])
def test_invalid_pixels_are_written_0_and_left_out_of_the_fit(tmp_path, tiny, how):
    invalid = _half_invalid()
    if how == "nodata":
        raster = make_raster(tmp_path / "in.tif", 192, 160, nodata=255, invalid=invalid)
    elif how == "alpha":
        raster = make_raster(tmp_path / "in.tif", 192, 160, alpha=np.where(invalid, 0, 255).astype(np.uint8))
    else:
        raster = make_raster(tmp_path / "in.tif", 192, 160, mask=~invalid)
    result = _run(raster, tmp_path / "labels.tif", tiny, k=2)
    labels = _read(tmp_path / "labels.tif")
    assert np.array_equal(labels == 0, invalid)
    # 10 x 6 patch cells lie in the valid right half: only they are fitted
    assert result.stats["patches"] == {"valid": 60, "sampled": 60}
    assert result.stats["nodata_pixels"] == int(invalid.sum())


@pytest.mark.parametrize("how", ["nodata", "alpha", "mask"])
def test_values_under_invalid_pixels_do_not_change_any_label(tmp_path, tiny, how):
    """Two rasters that differ only under NoData (one band at the NoData value), under alpha 0 or under a mask
    band give identical labels: invalid pixels reach the model as zeros whatever their values."""
    rng = np.random.default_rng(7)
    invalid = rng.random((160, 192)) < 0.15
    invalid[40:90, 60:130] = True
    first = make_raster(tmp_path / "first.tif", 192, 160, kind="blobs")
    data = gdal.Open(str(first)).ReadAsArray()
    other = data.copy()
    other[:, invalid] = rng.integers(0, 255, (3, int(invalid.sum())))
    rasters = []
    for name, values in (("a", data), ("b", other)):
        values = values.copy()
        if how == "nodata":
            values[0][invalid] = 255
            values[0][~invalid] = np.minimum(values[0][~invalid], 254)
            rasters.append(make_raster(tmp_path / f"{name}.tif", 192, 160, nodata=255, data=values))
        elif how == "alpha":
            alpha = np.where(invalid, 0, 255).astype(np.uint8)
            rasters.append(make_raster(tmp_path / f"{name}.tif", 192, 160, alpha=alpha, data=values))
        else:
            rasters.append(make_raster(tmp_path / f"{name}.tif", 192, 160, mask=~invalid, data=values))
    for name, raster in zip("ab", rasters):
        _run(raster, tmp_path / f"{name}_labels.tif", tiny, k=3)
    a, b = _read(tmp_path / "a_labels.tif"), _read(tmp_path / "b_labels.tif")
    assert np.array_equal(a == 0, invalid)
    assert np.array_equal(a, b)


def test_a_patch_cell_is_fitted_only_when_more_than_half_valid(tmp_path, tiny):
    """The fit-validity boundary on both sides: a 16 x 16 cell (stride 16) with exactly 128 of 256 pixels valid
    is left out of the fit, one with 129 valid is fitted."""
    invalid = np.zeros((128, 128), bool)
    invalid[0:8, :] = True  # cell row 0: 8 of 16 pixel rows NoData, exactly half valid
    invalid[16:23, :] = True  # cell row 1: 7 full pixel rows ...
    invalid[23, :] = np.arange(128) % 16 < 15  # ... and 15 pixels of each cell's 8th: 127 NoData, 129 valid
    raster = make_raster(tmp_path / "in.tif", 128, 128, nodata=255, invalid=invalid)
    result = _run(raster, tmp_path / "labels.tif", tiny, k=2)
    assert result.stats["patches"]["valid"] == 8 * 8 - 8  # all but cell row 0


@pytest.mark.parametrize("dtype", ["UInt16", "Int16", "Float32"])
def test_non_byte_rasters_are_stretched(tmp_path, tiny, dtype):
    invalid = np.zeros((128, 128), bool)
    invalid[:8, :8] = True
    nodata = {"UInt16": 0, "Int16": -32768}.get(dtype)  # Float32: NaN pixels, no NoData declared
    raster = make_raster(tmp_path / "in.tif", 128, 128, dtype=dtype, nodata=nodata, invalid=invalid)
    log = Log()
    result = _run(raster, tmp_path / "labels.tif", tiny, log, k=3)
    assert "2-98 % percentiles" in log.text
    assert set(result.stats["input"]["stretch"]) == {"1", "2", "3"}
    labels = _read(tmp_path / "labels.tif")
    assert np.array_equal(labels == 0, invalid)


def test_single_band_and_band_choice(tmp_path, tiny):
    grey = make_raster(tmp_path / "grey.tif", 96, 96, bands=1)
    assert _run(grey, tmp_path / "g.tif", tiny, k=2).stats["input"]["bands"] == [1, 1, 1]
    multi = make_raster(tmp_path / "multi.tif", 96, 96, bands=5)
    log = Log()
    assert _run(multi, tmp_path / "m.tif", tiny, log, k=2).stats["input"]["bands"] == [1, 2, 3]
    assert any("5 image bands" in w for w in log.warnings)
    assert _run(multi, tmp_path / "c.tif", tiny, k=2, bands=[5, 4, 1]).stats["input"]["bands"] == [5, 4, 1]
    with pytest.raises(EngineError, match="Band 6 does not exist: this raster has bands 1 to 5"):
        _run(multi, tmp_path / "new" / "x.tif", tiny, bands=[6])
    assert not (tmp_path / "new").exists()


def test_extent_is_snapped_outward_to_the_input_grid(tmp_path, tiny):
    raster = make_raster(tmp_path / "in.tif", 200, 150, pixel_size=0.5)
    x0, y0 = 500000.0, 3300000.0
    extent = (x0 + 10.2, y0 - 40.3, x0 + 50.0, y0 - 5.01)  # cols 20.4..100 -> 20..100, rows 10.02..80.6 -> 10..81
    result = _run(raster, tmp_path / "labels.tif", tiny, k=2, extent=extent)
    ds = gdal.Open(result.output_path)
    assert (ds.RasterXSize, ds.RasterYSize) == (80, 71)
    assert ds.GetGeoTransform() == (x0 + 10.0, 0.5, 0.0, y0 - 5.0, 0.0, -0.5)
    ds = None
    with pytest.raises(EngineError, match="does not overlap"):
        _run(raster, tmp_path / "new" / "x.tif", tiny, extent=(0.0, 0.0, 10.0, 10.0))
    assert not (tmp_path / "new").exists()


def test_geographic_crs_gets_ellipsoidal_hectares(tmp_path, tiny):
    raster = make_raster(tmp_path / "in.tif", 96, 96, epsg=4326, pixel_size=1e-5, origin=(10.0, 60.0))
    result = _run(raster, tmp_path / "labels.tif", tiny, k=2)
    total_ha = sum(a["hectares"] for a in result.cluster_area.values())
    # 96 x 96 pixels of ~0.557 m x 1.113 m at 60 degrees north
    assert total_ha == pytest.approx(96 * 96 * 0.5566 * 1.1132 / 1e4, rel=0.01)
    assert "Geographic CRS" in result.stats["area_note"]


def test_tiny_rasters(tmp_path, tiny):
    small = make_raster(tmp_path / "small.tif", 20, 20, kind="noise")
    result = _run(small, tmp_path / "s.tif", tiny, k=2, stride=4, tile_size=512, overlap=64)
    assert _read(tmp_path / "s.tif").shape == (20, 20) and result.stats["patches"]["valid"] == 4
    one = make_raster(tmp_path / "one.tif", 12, 12)
    with pytest.raises(EngineError, match="too small: 12 x 12 px is a single 16 x 16 px patch"):
        _run(one, tmp_path / "o.tif", tiny)
    assert not (tmp_path / "o.tif").exists()


def test_k_max_is_lowered_to_the_number_of_patches(tmp_path, tiny):
    raster = make_raster(tmp_path / "in.tif", 48, 48, kind="noise")  # 3 x 3 patches
    log = Log()
    result = _run(raster, tmp_path / "labels.tif", tiny, log, k_max=12)
    assert max(result.wcss) == 9 and "maximum K lowered from 12 to 9" in log.text


# -- clustering results -----------------------------------------------------------------------


def test_wcss_decreases_and_differs_between_images(tmp_path, tiny):
    a = _run(make_raster(tmp_path / "a.tif", 160, 160, kind="regions"), tmp_path / "a_out.tif", tiny, k_max=5)
    b = _run(make_raster(tmp_path / "b.tif", 160, 160, kind="blobs"), tmp_path / "b_out.tif", tiny, k_max=5)
    for result in (a, b):
        assert sorted(result.wcss) == [2, 3, 4, 5]
        values = [result.wcss[k] for k in sorted(result.wcss)]
        assert all(later <= earlier * (1 + 1e-6) for earlier, later in zip(values, values[1:]))
        assert sorted(result.wcss_drop) == [2, 3, 4]
    assert a.wcss != b.wcss


def test_fixed_k_fits_only_that_k_at_stride_8(tmp_path, tiny):
    result = _run(make_raster(tmp_path / "in.tif", 96, 96), tmp_path / "labels.tif", tiny, k=3, stride=8)
    assert result.chosen_k == 3 and list(result.wcss) == [3] and result.wcss_drop == {}
    assert result.stats["k_mode"] == "fixed" and result.stats["stride"] == 8
    assert (result.stats["tiles"]["grid_rows"], result.stats["tiles"]["grid_cols"]) == (11, 11)
    assert result.stats["patches"]["valid"] == 121 and (_read(tmp_path / "labels.tif") > 0).all()


def test_features_are_finite_unit_vectors_and_empty_tiles_are_skipped(tmp_path, tiny):
    invalid = np.zeros((160, 256), bool)
    invalid[:, :128] = True
    raster = make_raster(tmp_path / "in.tif", 256, 160, nodata=255, invalid=invalid)
    source = RasterSource(InputRaster(str(raster), None, Log()), Window(0, 0, 256, 160), Log(), lambda fraction: None)
    backbone = load_backbone(tiny, device="cpu")
    plan = plan_tiles(160, 256, 64, 16, 16)
    with FeatureStore(str(tmp_path), plan.grid_rows, plan.grid_cols, backbone.embed_dim) as store:
        encoder = TileEncoder(backbone, source, Window(0, 0, 256, 160), plan, store, batch_size=3)
        encoder.run(Log(), lambda fraction: None)
        features = store.read(0, plan.grid_rows, 0, plan.grid_cols)
        assert encoder.skipped == 6  # two tile columns x three tile rows see no valid pixel
        assert np.isfinite(features).all()
        norms = np.linalg.norm(features, axis=-1)
        assert np.allclose(norms[:, 9:], 1.0, atol=2e-3)  # patches whose cells are in the valid half
        assert np.all(norms[:, :5] == 0.0)  # patches only skipped tiles keep
        assert store.count_valid() == plan.grid_rows * 8
        sample = store.sample(1000, seed=0)
        assert sample.shape == (plan.grid_rows * 8, 64) and np.allclose(np.linalg.norm(sample, axis=1), 1, atol=2e-3)
        folder = store.folder
    assert not os.path.exists(folder)
    source.raster.close()


# -- stats and polygons -----------------------------------------------------------------------


def test_stats_files_and_polygons(tmp_path, tiny):
    raster = make_raster(tmp_path / "in.tif", 160, 128, kind="blobs")
    out = tmp_path / "out"
    log = Log()
    result = _run(raster, out / "labels.tif", tiny, log, stats_path=str(out / "stats.json"),
                  polygons_path=str(out / "poly.gpkg"), token=TOKEN)
    stats = json.loads((out / "stats.json").read_text())
    assert stats == json.loads(json.dumps(result.stats))
    for key in ("wcss", "wcss_drop_percent", "chosen_k", "cluster_pixels", "cluster_area", "model", "device",
                "precision", "stride", "tile_size", "overlap", "tiles", "seed", "elbow_threshold", "timings_s",
                "versions"):
        assert key in stats, key
    assert stats["model"]["weights_path"] == tiny
    assert stats["model"]["weights_sha256"] == hashlib.sha256(Path(tiny).read_bytes()).hexdigest()
    assert set(stats["timings_s"]) == set(stats["cpu_s"]) == {"load_model", "read_encode", "fit", "predict_write",
                                                              "total"}
    cpu_stages = [seconds for stage, seconds in stats["cpu_s"].items() if stage != "total"]
    assert 0 < sum(cpu_stages) <= stats["cpu_s"]["total"] + 0.01  # process CPU: the stages lie within the run
    assert stats["tiles"]["total"] == 2 and stats["tiles"]["skipped"] == 0
    assert stats["versions"]["torch"]
    assert TOKEN not in (out / "stats.json").read_text() and TOKEN not in log.text
    ds = ogr.Open(str(out / "poly.gpkg"))
    layer = ds.GetLayer(0)
    defn = layer.GetLayerDefn()
    assert [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())] == ["cluster", "area"]
    areas = {}
    for feature in layer:
        areas[feature.GetField("cluster")] = areas.get(feature.GetField("cluster"), 0) + feature.GetField("area")
    ds = None
    assert areas == pytest.approx({k: v["map_units"] for k, v in result.cluster_area.items()})
    assert result.polygons_path == str(out / "poly.gpkg")

    for ext in ("csv", "html"):
        again = _run(raster, tmp_path / ext / "labels.tif", tiny, stats_path=str(tmp_path / ext / f"stats.{ext}"))
        text = (tmp_path / ext / f"stats.{ext}").read_text()
        assert f"Cluster {again.chosen_k}" in text and "wcss" in text.lower()
    assert "<svg" in (tmp_path / "html" / "stats.html").read_text()


# -- cancel and failures leave nothing behind ---------------------------------------------------


class CountChecks(Log):
    """Counts the cancel checks of every stage."""

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict = {}

    def is_canceled(self) -> bool:
        if self.stages:
            self.checks[self.stages[-1]] = self.checks.get(self.stages[-1], 0) + 1
        return False


def _count_checks(raster: Path, out: Path, model: str) -> dict:
    counter = CountChecks()
    _run(raster, out, model, counter, k=2, stats_path=str(out.parent / "s.html"),
         polygons_path=str(out.parent / "p.gpkg"))
    return counter.checks


@pytest.fixture(scope="module")
def cancel_case(tmp_path_factory, tiny):
    folder = tmp_path_factory.mktemp("cancel")
    raster = make_raster(folder / "in.tif", 300, 260, kind="blobs")
    return raster, _count_checks(raster, folder / "probe" / "labels.tif", tiny)


@pytest.mark.parametrize(("stage", "after"), [
    ("Reading input", 0), ("Loading model", 0), ("Encoding tiles", 0), ("Encoding tiles", 5),
    ("Fitting k-means", 0), ("Fitting k-means", 4), ("Writing labels", 0), ("Writing labels", 4),
    ("Writing polygons", 0), ("Writing polygons", -1), ("Writing statistics", -1),
])
def test_cancel_at_any_stage_leaves_the_destination_untouched(tmp_path, tiny, cancel_case, stage, after):
    raster, checks = cancel_case
    assert checks["Writing labels"] == 5  # the stage start and 4 blocks
    assert checks["Writing polygons"] >= 3  # the stage start, polygonize callbacks and the copy
    after = checks[stage] - 1 if after < 0 else after
    assert after < checks[stage]
    out = tmp_path / "dest"
    out.mkdir()
    (out / "labels.tif").write_bytes(b"previous result")
    progress = CancelAt(stage, after)
    with pytest.raises(Canceled):
        _run(raster, out / "labels.tif", tiny, progress, k=2, stats_path=str(out / "s.html"),
             polygons_path=str(out / "p.gpkg"))
    assert os.listdir(out) == ["labels.tif"] and (out / "labels.tif").read_bytes() == b"previous result"


def test_cancel_removes_a_destination_folder_it_created(tmp_path, tiny, cancel_case):
    with pytest.raises(Canceled):
        _run(cancel_case[0], tmp_path / "a" / "b" / "labels.tif", tiny, CancelAt("Writing labels", 1), k=2)
    assert os.listdir(tmp_path) == []


def test_write_failure_leaves_nothing(tmp_path, tiny, monkeypatch):
    raster = make_raster(tmp_path / "in.tif", 96, 96)
    (tmp_path / "file").write_text("x")
    with pytest.raises(EngineError, match="Cannot create the output folder"):
        _run(raster, tmp_path / "file" / "labels.tif", tiny, k=2)
    (tmp_path / "folder.tif").mkdir()
    with pytest.raises(EngineError, match="is a folder"):
        _run(raster, tmp_path / "folder.tif", tiny, k=2)
    out = tmp_path / "out"
    out.mkdir()
    full_disk_on_replace(monkeypatch, "labels.tif")
    with pytest.raises(EngineError, match="No space left on device"):
        _run(raster, out / "labels.tif", tiny, k=2, stats_path=str(out / "s.csv"))
    assert os.listdir(out) == []


def test_settings_are_checked_before_the_model_or_the_destination(tmp_path, tiny, monkeypatch):
    raster = make_raster(tmp_path / "in.tif", 64, 64)

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(engine_runtime, "load_backbone", no_model)
    for bad in ({"tile_size": 100}, {"overlap": 64, "tile_size": 128}, {"k_min": 8, "k_max": 4},
                {"stride": 5}, {"batch_size": 0}, {"precision": "fp16", "device": "cpu"}):
        with pytest.raises(EngineError):
            _run(raster, tmp_path / "new" / "labels.tif", tiny, **bad)
    assert not (tmp_path / "new").exists()


def test_model_errors_become_engine_errors(tmp_path):
    raster = make_raster(tmp_path / "in.tif", 64, 64)
    with pytest.raises(EngineError, match=r"missing\.pth"):
        _run(raster, tmp_path / "new" / "labels.tif", str(tmp_path / "missing.pth"))
    assert not (tmp_path / "new").exists()
    with pytest.raises(EngineError, match="cuda"):
        _run(raster, tmp_path / "new" / "labels.tif", "vits16", device="cuda")


# -- the real sample with a ViT-S/16-size model ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE.exists(), reason="shared sample OSBS_029.tif not available")
def test_real_sample_with_a_vits16_size_model(tmp_path):
    weights = write_meta_pth(tmp_path / "w" / "vits16-random.pth", make_state_dict("vits16", seed=1))
    log = Log()
    result = _run(SAMPLE, tmp_path / "out" / "osbs.tif", str(weights), log, tile_size=512, overlap=64, k_max=6,
                  stats_path=str(tmp_path / "out" / "osbs.html"))
    src, dst = gdal.Open(str(SAMPLE)), gdal.Open(result.output_path)
    assert (dst.RasterXSize, dst.RasterYSize) == (400, 400)
    assert dst.GetGeoTransform() == src.GetGeoTransform() and dst.GetSpatialRef().IsSame(src.GetSpatialRef())
    rgb = src.ReadAsArray()
    labels = dst.GetRasterBand(1).ReadAsArray()
    src = dst = None
    nodata = (rgb == 255).any(axis=0)
    assert np.array_equal(labels == 0, nodata)
    assert 2 <= result.chosen_k <= 6 and result.stats["model"]["embed_dim"] == 384
    assert result.stats["tiles"] == {"total": 1, "skipped": 0, "tile_width": 400, "tile_height": 400,
                                     "grid_cols": 25, "grid_rows": 25}
    total_ha = sum(a["hectares"] for a in result.cluster_area.values())
    scale = 0.9996 * (1 + 95.8e3 ** 2 / (2 * 6.373e6 ** 2))  # UTM's scale factor 95.8 km west of its meridian
    assert total_ha == pytest.approx((~nodata).sum() * 0.01 / 1e4 / scale ** 2, rel=1e-5)
