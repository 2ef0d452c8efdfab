"""A cluster model records how its features were encoded (device, precision, tiling); applying it with another
precision or tiling warns, and the HTML report names the model applied (file name, checksum) or saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recording_progress import Log
from safetensors import safe_open
from safetensors.numpy import save_file
from treeseg.treeseg_plugin.engine import SegmentationConfig, run_segmentation
from treeseg.treeseg_plugin.engine.cluster.model import Encoding
from treeseg.treeseg_plugin.engine.cluster.model_file import METADATA_KEY, checksum, load_cluster_model

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
TILE, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny) -> Path:
    """The model a fp32 Segment Trees run on the CPU saved (tiles 64 px, overlap 16), with an HTML report."""
    folder = tmp_path_factory.mktemp("fitted")
    _run(folder / "labels.tif", tiny, Log(), cluster_model_output=str(folder / "model.tscm"),
         stats_path=str(folder / "report.html"))
    return folder


def _run(out: Path, model: str, log: Log, **settings):
    settings = {"tile_size": TILE, "overlap": OVERLAP, "k": 3, "device": "cpu", "precision": "fp32", **settings}
    return run_segmentation(SegmentationConfig(input_path=str(SAMPLE), output_path=str(out), model=model,
                                               **settings), log)


def test_the_saved_model_records_its_encoding_and_the_report_its_path(fitted):
    model = load_cluster_model(str(fitted / "model.tscm"))
    assert model.fit.encoding == Encoding("cpu", "fp32", TILE, OVERLAP)
    report = (fitted / "report.html").read_text(encoding="utf-8")
    assert f"<td>Cluster model saved</td><td>{fitted / 'model.tscm'}</td>" in report
    assert "Cluster model applied" not in report


def test_the_same_encoding_applies_without_a_warning_and_the_report_names_the_model(tmp_path, tiny, fitted):
    log = Log()
    result = _run(tmp_path / "labels.tif", tiny, log, cluster_model=str(fitted / "model.tscm"),
                  stats_path=str(tmp_path / "report.html"))
    sealed = load_cluster_model(str(fitted / "model.tscm")).sha256
    assert log.warnings == [] and result.stats["cluster_model"]["applied_sha256"] == sealed
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"<td>Cluster model applied</td><td>model.tscm (checksum {sealed[:12]}…)</td>" in report
    assert "Cluster model saved" not in report


@pytest.mark.parametrize(("settings", "expected"), [
    ({"precision": "bf16"}, "fitted on fp32 features, this run computes bf16 features: they differ slightly"),
    ({"tile_size": 96}, "fitted on tiles of 64 px with 16 px overlap, this run uses 96 px with 16 px"),
    ({"overlap": 0}, "this run uses 64 px with 0 px"),
])
def test_another_precision_or_tiling_warns_what_differs_and_what_to_do(tmp_path, tiny, fitted, settings, expected):
    log = Log()
    _run(tmp_path / "labels.tif", tiny, log, cluster_model=str(fitted / "model.tscm"), **settings)
    [warning] = log.warnings
    assert expected in warning
    fix = "set Precision to fp32" if "precision" in settings else "set Tile size 64 and Overlap 16"
    assert fix in warning and "or fit the model again" in warning


def test_a_model_without_a_recorded_encoding_says_it_cannot_compare(tmp_path, tiny, fitted):
    """Files of TreeSeg versions before the encoding was recorded still load and apply."""
    with safe_open(str(fitted / "model.tscm"), framework="numpy") as handle:
        metadata, centroids = handle.metadata(), handle.get_tensor("centroids")
    sealed = json.loads(metadata[METADATA_KEY])
    del sealed["model"]["fit"]["encoding"]
    sealed["sha256"] = checksum(sealed["model"], centroids)
    older = tmp_path / "older.tscm"
    save_file({"centroids": centroids}, str(older), metadata={METADATA_KEY: json.dumps(sealed)})
    assert load_cluster_model(str(older)).fit.encoding is None
    log = Log()
    _run(tmp_path / "labels.tif", tiny, log, cluster_model=str(older), precision="bf16")
    assert log.warnings == [] and "does not record the precision and tiling" in log.text
