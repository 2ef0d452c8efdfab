"""Issue #13 items 6 and 7: labels overlay a raster without georeferencing exactly as QGIS draws both (also
with an extent, and the polygons); GCP/RPC-only rasters are refused before anything runs; hectares are
ellipsoidal areas whatever the CRS (known values for Web Mercator, UTM, an equal-area CRS and EPSG:4326).

Real GDAL rasters, real QGIS layers, the real engine with a tiny random-weight checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from data_factory import make_raster, pattern
from engine_runs import segmenter
from osgeo import gdal, osr
from recording_progress import Log
from scipy import integrate
from treeseg.treeseg_plugin.engine import EngineError
from treeseg.treeseg_plugin.engine.raster.georef import pixel_area

WGS84_A = 6378137.0
WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
WGS84_SURFACE_KM2 = 510065621.724  # the WGS 84 ellipsoid's surface area


def _srs(epsg: int) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs


_run = segmenter(tile_size=64, overlap=16, k=2)


def _drone_frame(path: Path, width: int = 96, height: int = 80) -> Path:
    """A PNG without any georeferencing, as a drone camera writes it."""
    data = np.round(255 * pattern(height, width, 3, "blobs")).astype(np.uint8)
    mem = gdal.GetDriverByName("MEM").Create("", width, height, 3)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(data[b])
    gdal.GetDriverByName("PNG").CreateCopy(str(path), mem)
    assert gdal.Open(str(path)).GetGeoTransform(can_return_null=True) is None
    return path


def _extent(layer) -> tuple:
    rect = layer.extent()
    return tuple(round(v, 9) for v in (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()))


# -- item 6: rasters without georeferencing --------------------------------------------------------------


def test_labels_of_an_unreferenced_frame_overlay_it_in_qgis(qgis_app, tmp_path, tiny):
    from qgis.core import QgsRasterLayer, QgsVectorLayer

    frame = _drone_frame(tmp_path / "frame.png")
    log = Log()
    result = _run(frame, tmp_path / "labels.tif", tiny, log, polygons_path=str(tmp_path / "labels.gpkg"))
    assert any("no georeferencing" in w and "as QGIS draws" in w for w in log.warnings)
    image, labels = QgsRasterLayer(str(frame), "frame"), QgsRasterLayer(result.output_path, "labels")
    assert image.isValid() and labels.isValid()
    assert _extent(image) == (0.0, -80.0, 96.0, 0.0)  # QGIS: pixel size (1, -1) from (0, 0)
    assert _extent(labels) == _extent(image) and (labels.width(), labels.height()) == (96, 80)
    polygons = QgsVectorLayer(result.polygons_path, "polygons")
    assert polygons.isValid() and _extent(polygons) == _extent(image)  # every pixel is valid: polygons tile it

    # An extent drawn on the frame in QGIS (its frame: y = -row) selects those pixels, and the labels sit there.
    window = _run(frame, tmp_path / "window.tif", tiny, extent=(20.0, -70.0, 84.0, -22.0),
                  polygons_path=str(tmp_path / "window.gpkg"))
    assert window.stats["input"]["window"] == {"x0": 20, "y0": 22, "width": 64, "height": 48}
    assert _extent(QgsRasterLayer(window.output_path, "window")) == (20.0, -70.0, 84.0, -22.0)
    assert _extent(QgsVectorLayer(window.polygons_path, "window polygons")) == (20.0, -70.0, 84.0, -22.0)
    whole, part = gdal.Open(result.output_path), gdal.Open(window.output_path)
    whole, part = whole.ReadAsArray(), part.ReadAsArray()
    assert part.shape == whole[22:70, 20:84].shape and set(np.unique(part)) <= {1, 2}


def _gcp_raster(path: Path) -> Path:
    raster = make_raster(path, 64, 64)
    ds = gdal.Open(str(raster), gdal.GA_Update)
    gcps = [gdal.GCP(500000.0 + 0.1 * c, 3300000.0 - 0.1 * r, 0.0, c, r) for c, r in ((0, 0), (64, 0), (0, 64))]
    ds.SetGCPs(gcps, _srs(32617).ExportToWkt())
    ds = None
    assert gdal.Open(str(raster)).GetGeoTransform(can_return_null=True) is None
    return raster


def _rpc_raster(path: Path) -> Path:
    """A satellite scene with RPCs (Rational Polynomial Coefficients) and no geotransform."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 64, 64, 3)
    ds.WriteArray(np.round(255 * pattern(64, 64, 3, "blobs")).astype(np.uint8))
    ones = " ".join(["1"] + ["0"] * 19)
    ds.SetMetadata({"LINE_OFF": "32", "SAMP_OFF": "32", "LAT_OFF": "45", "LONG_OFF": "7", "HEIGHT_OFF": "0",
                    "LINE_SCALE": "32", "SAMP_SCALE": "32", "LAT_SCALE": "0.01", "LONG_SCALE": "0.01",
                    "HEIGHT_SCALE": "100", "LINE_NUM_COEFF": " ".join(["0", "0", "-1"] + ["0"] * 17),
                    "LINE_DEN_COEFF": ones, "SAMP_NUM_COEFF": " ".join(["0", "1"] + ["0"] * 18),
                    "SAMP_DEN_COEFF": ones}, "RPC")
    ds = None
    return path


@pytest.mark.parametrize(("make", "how", "fix"), [(_gcp_raster, "ground control points (GCPs)", "gdalwarp -tps"),
                                                  (_rpc_raster, "RPCs", "gdalwarp -rpc")])
def test_gcp_and_rpc_georeferencing_is_refused_before_anything_runs(tmp_path, tiny, make, how, fix):
    raster = make(tmp_path / "in.tif")
    assert gdal.Open(str(raster)).GetGeoTransform(can_return_null=True) is None
    log = Log()
    with pytest.raises(EngineError) as raised:
        _run(raster, tmp_path / "out" / "labels.tif", tiny, log)
    message = str(raised.value)
    assert f"georeferenced by {how} only" in message and fix in message and "Raster > Projections > Warp" in message
    assert log.stages == ["Reading input"] and not (tmp_path / "out").exists()


# -- item 7: ellipsoidal hectares ------------------------------------------------------------------------


def _mercator_y(lat_deg: float) -> float:
    return WGS84_A * math.log(math.tan(math.pi / 4 + math.radians(lat_deg) / 2))


def _mercator_true_over_planar(y: np.ndarray) -> np.ndarray:
    """Ellipsoidal / planar area of EPSG:3857 at northing y: nu * rho * cos(lat)² / a² (lat geodetic)."""
    lat = 2 * np.arctan(np.exp(y / WGS84_A)) - math.pi / 2
    s2 = np.sin(lat) ** 2
    return (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 2 * np.cos(lat) ** 2


def test_web_mercator_hectares_are_true_areas_not_2_4_times_larger():
    y0 = _mercator_y(50.0)
    area = pixel_area((1000.0, 1.0, 0.0, y0, 0.0, -1.0), _srs(3857), 300, 300)
    ha = area.block_hectares(0, 0, 256, 300)
    assert ha.shape == (256, 300)
    centres = y0 - (np.arange(256) + 0.5)
    assert np.allclose(ha[:, 0] * 1e4, _mercator_true_over_planar(centres), rtol=1e-5)
    assert ha.sum() * 1e4 / (256 * 300) == pytest.approx(math.cos(math.radians(50)) ** 2, rel=2e-3)
    assert area.map_units == 1.0
    assert "Hectares are ellipsoidal (WGS 84 ellipsoid" in area.note and "2.417 x the true area" in area.note


def test_utm_hectares_are_planar_over_the_scale_factor_squared():
    at_meridian = pixel_area((500000.0, 0.1, 0.0, 3300000.0, 0.0, -0.1), _srs(32617), 400, 400)
    assert at_meridian.block_hectares(0, 0, 256, 256) == pytest.approx(np.full((256, 256), 1e-6 / 0.9996 ** 2),
                                                                       rel=1e-7)
    # 300 km east of the meridian the scale factor is about k0 (1 + x² / (2 R²)) = 1.00070.
    east = pixel_area((800000.0, 0.1, 0.0, 3300000.0, 0.0, -0.1), _srs(32617), 400, 400)
    k = 0.9996 * (1 + 300e3 ** 2 / (2 * 6.373e6 ** 2))
    assert east.block_hectares(0, 0, 16, 16).mean() == pytest.approx(1e-6 / k ** 2, rel=2e-5)
    equal_area = pixel_area((4000000.0, 1.0, 0.0, 3000000.0, 0.0, -1.0), _srs(3035), 400, 400)
    assert equal_area.block_hectares(0, 0, 256, 256) == pytest.approx(np.full((256, 256), 1e-4), rel=1e-7)


def test_geographic_hectares_match_the_ellipsoid():
    world = pixel_area((-180.0, 1.0, 0.0, 90.0, 0.0, -1.0), _srs(4326), 360, 180)
    assert world.block_hectares(0, 0, 180, 360).sum() / 100 == pytest.approx(WGS84_SURFACE_KM2, rel=1e-9)
    assert world.note.startswith("Geographic CRS: map-unit areas are in degrees². Hectares are ellipsoidal")

    def band(lat: float) -> float:  # d(area)/d(lat) per radian of longitude: rho * nu * cos(lat)
        s2 = math.sin(lat) ** 2
        return WGS84_A ** 2 * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 2 * math.cos(lat)

    pixel = pixel_area((10.0, 1e-3, 0.0, 60.0, 0.0, -1e-3), _srs(4326), 100, 100).block_hectares(0, 0, 1, 1)
    expected, _ = integrate.quad(band, math.radians(60.0 - 1e-3), math.radians(60.0))
    assert pixel[0, 0] * 1e4 == pytest.approx(expected * math.radians(1e-3), rel=1e-9)


def test_pipeline_reports_ellipsoidal_hectares_and_keeps_map_units(tmp_path, tiny):
    raster = make_raster(tmp_path / "mercator.tif", 64, 64, epsg=3857, pixel_size=1.0,
                         origin=(1000.0, _mercator_y(50.0)))
    log = Log()
    result = _run(raster, tmp_path / "labels.tif", tiny, log)
    areas = result.cluster_area.values()
    assert sum(a["map_units"] for a in areas) == pytest.approx(64 * 64)
    rows = _mercator_y(50.0) - (np.arange(64) + 0.5)
    assert sum(a["hectares"] for a in areas) == pytest.approx(64 * _mercator_true_over_planar(rows).sum() / 1e4,
                                                              rel=1e-6)
    assert "ellipsoidal" in result.stats["area_note"] and "2.417 x the true area" in result.stats["area_note"]
    first = result.cluster_area[1]
    assert f"{first['hectares']:.4f} ha" in log.text and f"{first['map_units']:.6g} map units²" in log.text


def test_segment_trees_in_processing_overlays_an_unreferenced_frame(treeseg_provider, tmp_path, tiny):
    """The user's path: Processing's Segment Trees, with an extent drawn on the frame in QGIS."""
    import processing
    from qgis.core import QgsRasterLayer

    frame = _drone_frame(tmp_path / "frame.png")
    results = processing.run("treeseg:segmenttrees", {
        "INPUT": str(frame), "WEIGHTS": tiny, "TILE_SIZE": 64, "OVERLAP": 16, "K": 2,
        "EXTENT": "20,84,-70,-22", "OUTPUT": str(tmp_path / "labels.tif")})
    assert _extent(QgsRasterLayer(results["OUTPUT"], "labels")) == (20.0, -70.0, 84.0, -22.0)
