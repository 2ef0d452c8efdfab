"""Cluster model files: fit once, apply everywhere (issue 14), with tiny random-weight checkpoints on CPU."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_factory import FactoryConfig, make_state_dict, write_hf_folder, write_meta_pth
from data_factory import make_raster
from engine_runs import band_values, segmenter
from osgeo import gdal
from recording_progress import Log
from safetensors import safe_open
from safetensors.numpy import save_file
from treeseg.treeseg_plugin.engine import EngineError, SegmentationConfig
from treeseg.treeseg_plugin.engine.cluster.model_file import METADATA_KEY, load_cluster_model, save_cluster_model
from treeseg.treeseg_plugin.engine.jobs.segmentation import validate_config
from treeseg.treeseg_plugin.engine.raster.palette import Legend

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
TILE, OVERLAP = 64, 16
STEP = TILE - OVERLAP  # neighbouring tiles share the overlap (engine/encode/tiling.py): crops offset by a multiple of
# the step (and of the stride) see the same tiles as the whole raster


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny):
    """Segment Trees on the sample orthophoto, saving its model: (folder, result)."""
    folder = tmp_path_factory.mktemp("fitted")
    result = _run(SAMPLE, folder / "labels.tif", tiny, cluster_model_output=str(folder / "model.tscm"))
    return folder, result


_run = segmenter(tile_size=TILE, overlap=OVERLAP, k_max=5)
_read = band_values


def _crop(path: Path, x0: int, y0: int, width: int, height: int) -> Path:
    gdal.Translate(str(path), str(SAMPLE), srcWin=[x0, y0, width, height])
    return path


def _inner_agreement(full: np.ndarray, crop: np.ndarray, x0: int, y0: int, ring: int) -> float:
    """Share of the crop's pixels, outside a ``ring`` px border, with the full run's label."""
    h, w = crop.shape
    inner = crop[ring:h - ring, ring:w - ring]
    return float(np.mean(inner == full[y0 + ring:y0 + h - ring, x0 + ring:x0 + w - ring]))


# -- applying ---------------------------------------------------------------------------------


def test_applying_the_model_to_its_own_raster_gives_byte_identical_outputs(tmp_path, tiny, fitted):
    folder, fit = fitted
    log = Log()
    applied = _run(SAMPLE, tmp_path / "labels.tif", tiny, log, cluster_model=str(folder / "model.tscm"))
    ours, theirs = (gdal.Open(str(path / "labels.tif")) for path in (tmp_path, folder))
    assert ours.ReadAsArray().tobytes() == theirs.ReadAsArray().tobytes()  # the labels, byte for byte
    assert ours.GetGeoTransform() == theirs.GetGeoTransform() and ours.GetProjection() == theirs.GetProjection()
    ours_band, theirs_band = ours.GetRasterBand(1), theirs.GetRasterBand(1)
    assert ours_band.GetCategoryNames() == theirs_band.GetCategoryNames()
    assert [ours_band.GetColorTable().GetColorEntry(i) for i in range(fit.chosen_k + 1)] == \
        [theirs_band.GetColorTable().GetColorEntry(i) for i in range(fit.chosen_k + 1)]
    for name in ("labels.tif.aux.xml", "labels.qml"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name
    assert "Fitting k-means" not in log.stages and "Encoding tiles" in log.stages
    assert "no k-means fit and no K sweep" in log.text and "WCSS" not in log.text
    assert applied.chosen_k == fit.chosen_k and applied.wcss == fit.wcss
    assert applied.stats["k_mode"] == "model" and applied.stats["patches"]["sampled"] == 0
    assert fit.cluster_model_path == str(folder / "model.tscm") and applied.cluster_model_path is None


def test_a_crop_at_a_tile_step_offset_gets_the_same_labels(tmp_path, tiny, fitted):
    folder, _ = fitted
    x0, y0 = 3 * STEP, 2 * STEP
    crop = _crop(tmp_path / "crop.tif", x0, y0, 240, 224)
    _run(crop, tmp_path / "labels.tif", tiny, cluster_model=str(folder / "model.tscm"))
    agreement = _inner_agreement(_read(folder / "labels.tif"), _read(tmp_path / "labels.tif"), x0, y0, TILE)
    assert agreement >= 0.99


def test_a_crop_at_an_arbitrary_offset_mostly_agrees(tmp_path, tiny, fitted):
    """The figure in docs/cluster-model.md: the patch grid moves, so the features change somewhat."""
    folder, _ = fitted
    x0, y0 = 37, 21
    crop = _crop(tmp_path / "crop.tif", x0, y0, 240, 224)
    _run(crop, tmp_path / "labels.tif", tiny, cluster_model=str(folder / "model.tscm"))
    agreement = _inner_agreement(_read(folder / "labels.tif"), _read(tmp_path / "labels.tif"), x0, y0, TILE)
    print(f"arbitrary-offset agreement: {agreement:.4f}")
    assert agreement >= 0.6


def _seam(tmp_path, tiny, name, **settings):
    left = _crop(tmp_path / f"{name}-left.tif", 0, 0, 192, 400)
    right = _crop(tmp_path / f"{name}-right.tif", 192, 0, 208, 400)
    results = [_run(raster, tmp_path / f"{raster.stem}-labels.tif", tiny, **settings) for raster in (left, right)]
    a, b = (_read(r.output_path) for r in results)
    return a, b, results


def test_adjacent_crops_with_one_model_agree_along_their_edge_and_independent_fits_may_not(tmp_path, tiny, fitted):
    """Along the common edge both crops carry the labels the whole orthophoto gets there (the tiles at a crop's
    edge see no context beyond it, so a few labels change); two independent fits number their own clusters."""
    folder, _ = fitted
    full = _read(folder / "labels.tif")

    def near_edge(left: np.ndarray, right: np.ndarray) -> tuple:
        return (float(np.mean(left[:, -16:] == full[:, 176:192])), float(np.mean(right[:, :16] == full[:, 192:208])))

    left, right, _ = _seam(tmp_path, tiny, "shared", cluster_model=str(folder / "model.tscm"))
    shared = near_edge(left, right)
    assert min(shared) >= 0.9
    ind_left, ind_right, results = _seam(tmp_path, tiny, "independent")
    assert results[0].stats["wcss"] != results[1].stats["wcss"]  # each fitted its own clusters
    assert min(near_edge(ind_left, ind_right)) < min(shared)


def test_the_model_brings_its_stretch_and_colours(tmp_path, tiny):
    a = make_raster(tmp_path / "a.tif", 160, 128, dtype="UInt16", kind="blobs")
    fit = _run(a, tmp_path / "a-labels.tif", tiny, cluster_model_output=str(tmp_path / "m.tscm"))
    model = load_cluster_model(str(tmp_path / "m.tscm"))
    assert fit.stats["input"]["stretch"] == {str(b): {"low": s.low, "high": s.high}
                                             for b, s in model.input.stretch.items()}
    colors = tuple(f"#{10 * i:02x}{20 * i:02x}{30 * i:02x}" for i in range(1, model.k + 1))
    names = ("NoData", *(f"Crown type {i}" for i in range(1, model.k + 1)))
    recoloured = dataclasses.replace(model, legend=Legend(colors, names))
    save_cluster_model(recoloured, str(tmp_path / "recoloured.tscm"))
    b = make_raster(tmp_path / "b.tif", 128, 128, dtype="UInt16", kind="blobs", seed=3)
    log = Log()
    applied = _run(b, tmp_path / "b-labels.tif", tiny, log, cluster_model=str(tmp_path / "recoloured.tscm"))
    assert applied.stats["input"]["stretch"] == fit.stats["input"]["stretch"]
    assert "percentiles" not in log.text and "as in the cluster model" in log.text
    ds = gdal.Open(applied.output_path)
    assert len(ds.GetFileList()) == 2  # also loads the .aux.xml: GDAL 3.6's GeoTIFF band reads it lazily
    band = ds.GetRasterBand(1)
    assert band.GetCategoryNames() == list(names)
    assert [band.GetColorTable().GetColorEntry(i)[:3] for i in range(1, model.k + 1)] == \
        [tuple(int(c[j:j + 2], 16) for j in (1, 3, 5)) for c in colors]
    band = ds = None
    assert "Crown type 1" in Path(applied.style_path).read_text()


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("difference", ["backbone", "weights", "patch stride", "band count"])
def test_a_model_for_another_backbone_stride_or_band_count_is_refused_before_encoding(tmp_path, tiny, fitted,
                                                                                      difference):
    folder, _ = fitted
    raster, model, settings = SAMPLE, tiny, {}
    if difference == "backbone":
        model = str(write_meta_pth(tmp_path / "small.pth", make_state_dict(FactoryConfig(32, 1, 2), seed=0)))
    elif difference == "weights":
        model = str(write_meta_pth(tmp_path / "other.pth", make_state_dict("tiny", seed=1)))
    elif difference == "patch stride":
        settings["stride"] = 8
    else:
        raster = make_raster(tmp_path / "four.tif", 128, 128, bands=4)
        settings["bands"] = [1, 2, 3]
    log = Log()
    out = tmp_path / "new" / "labels.tif"
    with pytest.raises(EngineError, match=f"does not fit this run: {difference}") as error:
        _run(raster, out, model, log, cluster_model=str(folder / "model.tscm"), **settings)
    assert "Encoding tiles" not in log.stages and not out.parent.exists()
    assert "fit a new model" in str(error.value)


def _rewrite(source: Path, target: Path, edit) -> Path:
    with safe_open(str(source), framework="numpy") as handle:
        metadata, centroids = handle.metadata(), handle.get_tensor("centroids")
    sealed = json.loads(metadata[METADATA_KEY])
    sealed["sha256"] = edit(sealed["model"], centroids) or sealed["sha256"]
    save_file({"centroids": centroids}, str(target), metadata={METADATA_KEY: json.dumps(sealed)})
    return target


def _resealed(edit):
    """An edit of ``_rewrite`` that changes the document with ``edit`` and seals it again, with the checksum as the
    format defines it (docs/cluster-model.md): a file made by another program."""
    def reseal(document, centroids):
        edit(document)
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode() + centroids.astype("<f4").tobytes()).hexdigest()

    return reseal


def test_a_model_with_another_input_normalisation_is_refused_before_encoding(tmp_path, tiny, fitted):
    """Only the std of the model's backbone differs (0.5 per channel, not ImageNet's): refused by name."""
    path = _rewrite(fitted[0] / "model.tscm", tmp_path / "std.tscm",
                    _resealed(lambda document: document["backbone"].update(std=[0.5, 0.5, 0.5])))
    log = Log()
    out = tmp_path / "new" / "labels.tif"
    with pytest.raises(EngineError, match="does not fit this run: normalisation"):
        _run(SAMPLE, out, tiny, log, cluster_model=str(path))
    assert "Encoding tiles" not in log.stages and not out.parent.exists()


def test_a_truncated_or_edited_file_is_refused(tmp_path, fitted):
    folder, _ = fitted
    good = folder / "model.tscm"
    data = good.read_bytes()
    (tmp_path / "truncated.tscm").write_bytes(data[:-10])
    with pytest.raises(EngineError, match="not a complete safetensors file"):
        load_cluster_model(str(tmp_path / "truncated.tscm"))
    flipped = bytearray(data)
    flipped[-3] ^= 0x40  # a bit of a centroid
    (tmp_path / "flipped.tscm").write_bytes(bytes(flipped))
    with pytest.raises(EngineError, match="checksum does not match"):
        load_cluster_model(str(tmp_path / "flipped.tscm"))

    def recolour(document, centroids):
        document["labels"]["colors"][0] = "#000000"

    with pytest.raises(EngineError, match="checksum does not match"):
        load_cluster_model(str(_rewrite(good, tmp_path / "edited.tscm", recolour)))
    with pytest.raises(EngineError, match="does not exist"):
        load_cluster_model(str(tmp_path / "missing.tscm"))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(k=1), "'k' is 1, outside 2..64"),
    (lambda d: d["backbone"].update(embed_dim=65), "not float32"),
    (lambda d: d["labels"]["colors"].pop(), "colours written #rrggbb"),
    (lambda d: d.update(schema_version=2), "newer than this TreeSeg reads"),
    (lambda d: d["input"].update(bands=[1, 2]), "must name 3 bands"),
    (lambda d: d["input"]["stretch"].update({"7": {"low": 0, "high": 1}}), "not one of the bands used"),
    (lambda d: d["fit"].update(seed="0"), "'fit.seed' must be int"),
    (lambda d: d["wcss"].update({"2": -1.0}), "values >= 0"),
])
def test_a_well_sealed_file_with_bad_fields_is_refused(tmp_path, fitted, edit, message):
    """Fields are checked even when the checksum was recomputed (a file made by another program)."""
    path = _rewrite(fitted[0] / "model.tscm", tmp_path / "bad.tscm", _resealed(edit))
    with pytest.raises(EngineError, match="cannot be used") as error:
        load_cluster_model(str(path))
    assert message in str(error.value)


class _Trap:
    """Unpickling this creates a marker file: the proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_no_pickle_is_ever_loaded(tmp_path, monkeypatch):
    marker = tmp_path / "unpickled"
    (tmp_path / "pickle.tscm").write_bytes(pickle.dumps(_Trap(marker)))
    torch.save({"centroids": torch.zeros(3, 64), "trap": _Trap(marker)}, str(tmp_path / "torch.tscm"))
    for name in ("pickle.tscm", "torch.tscm"):
        with pytest.raises(EngineError, match="not a complete safetensors file"):
            load_cluster_model(str(tmp_path / name))
    assert not marker.exists()
    # With safetensors weights a whole fit-and-apply needs no pickle: trap every way to load one, then apply.
    weights = str(write_hf_folder(tmp_path / "hf", make_state_dict("tiny", seed=0), "tiny"))
    raster = make_raster(tmp_path / "in.tif", 128, 96, kind="blobs")
    fit = _run(raster, tmp_path / "fit.tif", weights, cluster_model_output=str(tmp_path / "m.tscm"))

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    applied = _run(raster, tmp_path / "applied.tif", weights, cluster_model=str(tmp_path / "m.tscm"))
    assert np.array_equal(_read(applied.output_path), _read(fit.output_path))


# -- settings and staging ---------------------------------------------------------------------


def test_cluster_model_settings_are_checked_and_listed_as_outputs(tmp_path):
    base = {"input_path": "in.tif", "output_path": str(tmp_path / "out.tif")}
    config = SegmentationConfig(**base, cluster_model_output=str(tmp_path / "m.tscm"))
    assert config.output_paths()[-1] == str(tmp_path / "m.tscm")
    assert SegmentationConfig(**base, cluster_model=str(tmp_path / "m.tscm")).output_paths() == [base["output_path"]]
    for settings, message in (({"cluster_model": "m.pkl"}, "must end in .tscm"),
                              ({"cluster_model_output": "m.json"}, "must end in .tscm"),
                              ({"cluster_model": "a.tscm", "cluster_model_output": "b.tscm"}, "fits nothing"),
                              ({"cluster_model_output": "s.tscm", "stats_path": "s.tscm"}, "must end in .json")):
        with pytest.raises(EngineError, match=message):
            validate_config(SegmentationConfig(**base, **settings))


def test_a_canceled_run_leaves_no_model_behind(tmp_path, tiny):
    from test_engine_pipeline import CancelAt

    raster = make_raster(tmp_path / "in.tif", 128, 128)
    with pytest.raises(EngineError, match="Canceled"):
        _run(raster, tmp_path / "out" / "labels.tif", tiny, CancelAt("Writing labels"),
             cluster_model_output=str(tmp_path / "models" / "m.tscm"))
    assert not (tmp_path / "models").exists() and not (tmp_path / "out").exists()
