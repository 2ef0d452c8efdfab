"""Issue #5 "Nothing lost, nothing silent", through Processing: inputs, outputs, parameters and faults.

Every failure is one QgsProcessingException whose message names the problem and the fix, with no Python
traceback in it or in the log; the destination folder is left exactly as it was (no half-written output,
no ``.treeseg-*`` temporary folder); and the provider keeps working afterwards. The odd inputs that can
work (no CRS, EPSG:4326, one band, RGBA collar, 16-bit and float rasters) do, and say what they did.

Real QGIS 3.22 ``processing.run`` and ``qgis_process.bin``; tiny random-weight checkpoints, small rasters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data_factory import make_raster, trap_vrt
from osgeo import gdal, ogr, osr
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback
from qgis_process_runner import enable_plugin, qgis_process_env, run_algorithm
from recording_progress import RecordingFeedback

ALGORITHM = "treeseg:segmenttrees"
STAGES = ("Reading input", "Loading model", "Encoding tiles", "Fitting k-means", "Writing labels",
          "Writing polygons", "Writing statistics")
CUDA = 1  # index of "cuda" in the DEVICE enum


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Inputs apart from the destinations (QGIS writes .aux.xml statistics beside the rasters it loads)."""
    return tmp_path_factory.mktemp("inputs")


@pytest.fixture(scope="module")
def ortho(inputs) -> Path:
    return make_raster(inputs / "ortho.tif", 96, 96, kind="blobs")


def params(tiny: str, raster, output, **more) -> dict:
    return {"INPUT": str(raster), "WEIGHTS": tiny, "TILE_SIZE": 64, "OVERLAP": 16, "K": 2,
            "OUTPUT": str(output), **more}


def run(parameters: dict, feedback: QgsProcessingFeedback | None = None) -> dict:
    import processing

    return processing.run(ALGORITHM, parameters, feedback=feedback or RecordingFeedback())


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` (hidden ones included), or None when the folder does not exist."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fails(parameters: dict, *fragments: str, feedback: RecordingFeedback | None = None) -> str:
    """Run, expect a QgsProcessingException with every fragment and no traceback; the destination untouched."""
    feedback = feedback or RecordingFeedback()
    folder = Path(parameters["OUTPUT"]).parent
    before = snapshot(folder) if folder != Path("/proc") else None
    with pytest.raises(QgsProcessingException) as raised:
        run(parameters, feedback)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message and "Traceback" not in feedback.text
    assert (snapshot(folder) if folder != Path("/proc") else None) == before
    return message


# -- inputs --------------------------------------------------------------------------------------------


def _vector(path: Path, driver: str) -> Path:
    source = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    source.CreateLayer("fields", srs=osr.SpatialReference(), geom_type=ogr.wkbPolygon)
    source = None
    return path


def test_inputs_that_are_not_rasters_are_named(treeseg_provider, tiny, inputs, tmp_path):
    text = inputs / "readme.txt"
    text.write_text("an orthophoto, honest\n")
    header = inputs / "garbage-after-header.tif"
    header.write_bytes(make_raster(inputs / "valid.tif", 32, 32).read_bytes()[:16] + b"\x00\xff" * 3000)
    cases = [
        (inputs / "missing.tif", "the file does not exist. Check the path"),
        (text, "GDAL does not recognise it or cannot read it"),
        (header, "GDAL does not recognise it or cannot read it"),
        (_vector(inputs / "fields.gpkg", "GPKG"), "it is a vector dataset (GPKG), not an image. Choose the "
                                                  "orthophoto raster"),
        (_vector(inputs / "fields.shp", "ESRI Shapefile"), "it is a vector dataset (ESRI Shapefile)"),
    ]
    for path, fragment in cases:
        message = fails(params(tiny, path, tmp_path / "out" / "labels.tif"), f"Cannot open '{path}' as a raster:",
                        fragment)
        assert "not found" not in message  # QGIS's own check would only have said "... not found"


@pytest.mark.parametrize("damage", ["truncated", "corrupt tiles"])
def test_a_damaged_geotiff_is_a_clear_error(treeseg_provider, tiny, inputs, dest, damage):
    raster = make_raster(inputs / f"damaged-{damage}.tif", 128, 128, kind="noise", tiled=True,
                         creation_options=["COMPRESS=DEFLATE", "BLOCKXSIZE=64", "BLOCKYSIZE=64"])
    data = bytearray(raster.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2:len(data) // 2 + 2000] = bytes(range(250)) * 8
    raster.write_bytes(bytes(data))
    fails(params(tiny, raster, dest / "labels.tif"), f"Cannot read band 1 of '{raster}'",
          "The file is damaged or incomplete", "gdalinfo -checksum")


def test_no_crs_works_with_a_warning(treeseg_provider, tiny, inputs, tmp_path):
    raster = make_raster(inputs / "no-crs.tif", 64, 64, epsg=None)
    feedback = RecordingFeedback()
    results = run(params(tiny, raster, tmp_path / "labels.tif"), feedback)
    assert any(w.startswith("The raster has no CRS") and "assign the CRS" in w for w in feedback.warnings)
    assert gdal.Open(results["OUTPUT"]).GetSpatialRef() is None


def test_geographic_crs_areas_in_the_json(treeseg_provider, tiny, inputs, tmp_path):
    raster = make_raster(inputs / "wgs84.tif", 64, 64, epsg=4326, pixel_size=1e-5, origin=(10.0, 60.0))
    stats_path = tmp_path / "stats.json"
    run(params(tiny, raster, tmp_path / "labels.tif", STATS=str(stats_path)))
    stats = json.loads(stats_path.read_text())
    assert stats["input"]["crs"] == "EPSG:4326"
    assert stats["area_note"].startswith("Geographic CRS: map-unit areas are in degrees². Hectares are ellipsoidal")
    areas = stats["cluster_area"].values()
    assert sum(a["map_units"] for a in areas) == pytest.approx(64 * 64 * 1e-10)
    # 64 x 64 pixels of 1e-5 degrees at 60 degrees north: about 0.557 m x 1.113 m each
    assert sum(a["hectares"] for a in areas) == pytest.approx(64 * 64 * 0.5566 * 1.1132 / 1e4, rel=0.01)


def test_too_small_and_empty_inputs_are_refused_with_the_fix(treeseg_provider, tiny, inputs, tmp_path):
    out = tmp_path / "new" / "labels.tif"
    fails(params(tiny, make_raster(inputs / "16px.tif", 16, 16), out, K=0),
          "The raster is too small: 16 x 16 px is a single 16 x 16 px patch",
          "Use a raster or extent larger than 16 x 16 px")
    empty = np.ones((64, 64), bool)
    fails(params(tiny, make_raster(inputs / "nodata-byte.tif", 64, 64, nodata=0, invalid=empty), out),
          "No valid pixels in the raster (all NoData or masked): there is nothing to segment",
          "Check the NoData value, the alpha band or the mask")
    fails(params(tiny, make_raster(inputs / "nodata-uint16.tif", 64, 64, dtype="UInt16", nodata=0, invalid=empty),
                 out), "No valid pixels in the raster", "there is nothing to segment")


def _collar(size: int, width: int) -> np.ndarray:
    alpha = np.zeros((size, size), np.uint8)
    alpha[width:size - width, width:size - width] = 255
    return alpha


@pytest.mark.parametrize("kind", ["one band", "RGBA collar", "UInt16", "Int16", "Float32 NaN"])
def test_unusual_rasters_work_and_say_how(treeseg_provider, tiny, inputs, tmp_path, kind):
    invalid = np.zeros((96, 96), bool)
    invalid[:10, :20] = True
    if kind == "one band":
        raster, invalid = make_raster(inputs / "grey.tif", 96, 96, bands=1), np.zeros((96, 96), bool)
    elif kind == "RGBA collar":
        alpha = _collar(96, 16)
        raster, invalid = make_raster(inputs / "rgba.tif", 96, 96, alpha=alpha), alpha == 0
    elif kind == "Float32 NaN":
        raster = make_raster(inputs / "float.tif", 96, 96, dtype="Float32", invalid=invalid)
    else:
        raster = make_raster(inputs / f"{kind}.tif", 96, 96, dtype=kind, nodata=0 if kind == "UInt16" else -32768,
                             invalid=invalid)
    feedback = RecordingFeedback()
    stats_path = tmp_path / "stats.json"
    results = run(params(tiny, raster, tmp_path / "labels.tif", STATS=str(stats_path)), feedback)
    dataset = gdal.Open(results["OUTPUT"])
    labels = dataset.GetRasterBand(1).ReadAsArray()
    dataset = None
    assert np.array_equal(labels == 0, invalid)
    stats = json.loads(stats_path.read_text())
    if kind == "one band":
        assert "Using band 1 as grey (repeated to RGB)." in feedback.text and stats["input"]["bands"] == [1, 1, 1]
    elif kind == "RGBA collar":
        assert "alpha band 4" in feedback.text and stats["input"]["bands"] == [1, 2, 3]
        assert stats["patches"]["valid"] == 16  # the 4 x 4 patches inside the collar: the collar is not fitted
    else:
        assert feedback.text.count("stretched to 0..1 between its 2-98 % percentiles") == 3
        assert set(stats["input"]["stretch"]) == {"1", "2", "3"}


def test_bands_and_extents_outside_the_raster(treeseg_provider, tiny, ortho, tmp_path):
    out = tmp_path / "new" / "labels.tif"
    fails(params(tiny, ortho, out, BANDS=[1, 2, 4]),
          "Band(s) [4] do not exist: the input has bands 1 to 3. Choose band numbers in that range.")
    fails(params(tiny, ortho, out, EXTENT="0,10,0,10 [EPSG:32617]"),
          "The extent (0, 0, 10, 10) does not overlap the raster", "Choose an extent inside the raster")


def test_a_huge_raster_with_an_extent_reads_only_that_part(treeseg_provider, tiny, inputs, tmp_path):
    x0 = y0 = 12000  # of a 20000 x 20000 px VRT whose pixels outside x0..x0+320, y0..y0+320 cannot be read
    vrt = trap_vrt(inputs, x0, y0, 320)
    left, top = 500000 + (x0 + 96) * 0.1, 3300000 - (y0 + 96) * 0.1
    feedback = RecordingFeedback()
    results = run(params(tiny, vrt, tmp_path / "labels.tif", EXTENT=f"{left},{left + 12.8},{top - 12.8},{top} "
                                                                    "[EPSG:32617]"), feedback)
    dataset = gdal.Open(results["OUTPUT"])
    assert (dataset.RasterXSize, dataset.RasterYSize) == (128, 128)
    assert "(16384 sampled pixels)" in feedback.text  # the stretch sampled the extent, not 400 million pixels


# -- outputs -------------------------------------------------------------------------------------------


def test_output_formats_are_restricted_and_temporary_outputs_are_files(treeseg_provider, tiny, ortho, tmp_path):
    assert treeseg_provider.supportedOutputRasterLayerExtensions() == ["tif"]
    assert treeseg_provider.supportedOutputVectorLayerExtensions() == ["gpkg", "shp", "geojson"]
    assert not treeseg_provider.supportsNonFileBasedOutput()
    results = run(params(tiny, ortho, "TEMPORARY_OUTPUT", OUTPUT_POLYGONS="TEMPORARY_OUTPUT",
                         STATS="TEMPORARY_OUTPUT"))
    assert results["OUTPUT"].endswith(".tif") and gdal.Open(results["OUTPUT"]).GetDriver().ShortName == "GTiff"
    assert results["OUTPUT_POLYGONS"].endswith(".gpkg") and results["STATS"].endswith(".json")
    out = tmp_path / "new"
    fails(params(tiny, ortho, out / "labels.png"), "The output must be a GeoTIFF", "Change the output file name")
    fails(params(tiny, ortho, out / "labels.tif", OUTPUT_POLYGONS=str(out / "p.kml")),
          "must end in .gpkg, .shp or .geojson")
    fails(params(tiny, ortho, out / "labels.tif", STATS=str(out / "stats.txt")), "must end in .json, .csv or .html")


def test_a_missing_destination_folder_is_created_and_removed_on_failure(treeseg_provider, tiny, ortho, tmp_path):
    out = tmp_path / "a" / "b" / "labels.tif"
    fails(params(tiny, ortho, out), "Canceled by the user; no output was written.",
          feedback=RecordingFeedback(cancel_at="Writing labels"))
    assert not (tmp_path / "a").exists()
    assert Path(run(params(tiny, ortho, out))["OUTPUT"]).is_file()


def test_unwritable_destinations_are_named(treeseg_provider, tiny, ortho, tmp_path):
    (tmp_path / "labels.tif").mkdir()
    fails(params(tiny, ortho, tmp_path / "labels.tif"), "is a folder. Give a file name ending in .tif.")
    (tmp_path / "notes.txt").write_text("a file")
    fails(params(tiny, ortho, tmp_path / "notes.txt" / "labels.tif"), "'notes.txt' is a file, not a folder"[1:],
          "Choose an output path in a folder")
    fails(params(tiny, ortho, "/proc/labels.tif"), "Cannot write in the output folder '/proc'",
          "Choose a folder you can write to")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif", "notes.txt"]


def test_a_vanishing_destination_is_named_and_not_recreated(treeseg_provider, tiny, ortho, tmp_path):
    out = tmp_path / "share" / "labels.tif"
    out.parent.mkdir()
    feedback = RecordingFeedback()
    dropped = tmp_path / "dropped"
    # the network share drops at once (a rename: the worker runs on while the hook runs, so an rmtree
    # would show it a half-emptied folder that no real share shows)
    feedback.on_stage["Writing labels"] = lambda: out.parent.rename(dropped)
    with pytest.raises(QgsProcessingException) as raised:
        run(params(tiny, ortho, out), feedback)
    assert f"The output folder '{out.parent}' is gone" in str(raised.value)
    assert "Traceback" not in str(raised.value) and not out.parent.exists()


# -- parameters ----------------------------------------------------------------------------------------


def test_parameters_that_cannot_work(treeseg_provider, tiny, inputs, ortho, tmp_path):
    out = tmp_path / "new" / "labels.tif"
    fails(params(tiny, ortho, out, K=0, K_MIN=6, K_MAX=3), "Minimum K (6) is larger than maximum K (3): swap them.")
    assert run(params(tiny, ortho, tmp_path / "k.tif", K=3, K_MIN=6, K_MAX=3))["CHOSEN_K"] == 3  # unused with K
    fails(params(tiny, ortho, out, TILE_SIZE=100), "Tile size 100 is not a multiple of 16: use 96.")
    fails(params(tiny, ortho, out, TILE_SIZE=64, OVERLAP=32), "must be less than half the tile size (64)",
          "lower the overlap or raise the tile size")
    fails(params(tiny, ortho, out, K=40), "The raster is too small: 96 x 96 px holds 36 patches at stride 16, fewer "
                                         "than the 40 clusters asked for", "or fewer clusters")
    invalid = np.ones((64, 64), bool)
    invalid[:32, :32] = False  # 2 x 2 valid patches
    sparse = make_raster(inputs / "mostly-nodata.tif", 64, 64, nodata=0, invalid=invalid)
    fails(params(tiny, sparse, out, K=6), "K = 6 but only 4 distinct valid patches exist. Lower K")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused_not_silently_slow(treeseg_provider, tiny, ortho, tmp_path):
    fails(params(tiny, ortho, tmp_path / "new" / "labels.tif", DEVICE=CUDA),
          "Device 'cuda' was asked for, but this PyTorch", "sees no CUDA GPU. Use device 'auto' or 'cpu'")
    help_text = QgsApplication.processingRegistry().algorithmById(ALGORITHM).shortHelpString()
    assert "cuda</i> stops with a message" in help_text


# -- faults ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uint16(inputs) -> Path:
    return make_raster(inputs / "uint16-blobs.tif", 96, 80, dtype="UInt16", kind="blobs")


@pytest.mark.parametrize("stage", STAGES)
def test_cancel_at_every_stage_leaves_the_previous_result(treeseg_provider, tiny, uint16, dest, stage):
    feedback = RecordingFeedback(cancel_at=stage)
    fails(params(tiny, uint16, dest / "labels.tif", STATS=str(dest / "stats.json"),
                 OUTPUT_POLYGONS=str(dest / "polygons.gpkg")), "Canceled by the user; no output was written.",
          feedback=feedback)
    # the worker runs on until the cancel reaches its next check (on this 96 x 80 px raster that can be a
    # later stage); the outputs are committed only after the parent's last word, so the cancel always wins
    assert stage in feedback.stages


def test_a_failure_while_writing_is_one_line_and_leaves_nothing(treeseg_provider, tiny, uint16, dest):
    logged = []

    def keep(message, tag, level):
        logged.append((tag, message))

    log = QgsApplication.messageLog()
    log.messageReceived.connect(keep)
    try:
        message = fails(params(tiny, uint16, dest / "labels.tif", STATS=str(dest / "stats.json")),
                        "Segment Trees stopped on an unexpected error (RuntimeError: injected failure in the "
                        "progress callback). Nothing was written.", "please report it",
                        feedback=RecordingFeedback(fail_at_percent=85))  # in "Writing labels"
    finally:
        log.messageReceived.disconnect(keep)
    assert "'TreeSeg' tab of the Log Messages panel" in message
    assert any(tag == "TreeSeg" and "Traceback" in text and "injected failure" in text for tag, text in logged)


def test_the_provider_still_works_after_all_these_failures(treeseg_provider, tiny, ortho, tmp_path):
    results = run(params(tiny, ortho, tmp_path / "labels.tif", K=3))
    assert results["CHOSEN_K"] == 3 and Path(results["OUTPUT"]).is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".treeseg-")] == []


@pytest.mark.slow
def test_qgis_process_prints_the_message_and_no_traceback(tiny, inputs, tmp_path, plugins_dir):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    dest = tmp_path / "dest"
    dest.mkdir()
    truncated = inputs / "truncated-for-qgis-process.tif"
    raster = make_raster(truncated, 128, 128, kind="noise", tiled=True, creation_options=["COMPRESS=DEFLATE"])
    raster.write_bytes(raster.read_bytes()[:6000])
    cases = [(inputs / "nowhere.tif", "the file does not exist. Check the path"),  # refused by the parameter check
             (truncated, "The file is damaged or incomplete")]  # an engine error while reading
    for path, fragment in cases:
        done, _ = run_algorithm(ALGORITHM, params(tiny, path, dest / "labels.tif"), env)
        output = done.stdout + done.stderr
        assert done.returncode != 0
        assert f"Cannot {'open' if 'nowhere' in str(path) else 'read band 1 of'} '{path}'" in output, output
        assert fragment in output and "Traceback" not in output
        assert list(dest.iterdir()) == []
