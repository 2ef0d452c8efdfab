"""The Tree Inventory model shipped with the provider (processing_provider/models/tree_inventory.model3):
orthophoto -> Canopy Height -> Segment Trees with the heights, the tree mask and the crowns; run headless by the
real qgis_process.bin on the bundled sample with random-weight checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from osgeo import gdal, ogr
from qgis_process_runner import enable_plugin, qgis_process_env, run, run_algorithm

from tests.chmv2_factory import write_hf_chmv2

pytest.importorskip("transformers")
SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "OSBS_029.tif"
MODEL_ID = "treeseg:Tree Inventory"
NODATA = -9999.0


def test_the_provider_offers_the_model_with_its_steps(treeseg_provider):
    from qgis.core import QgsApplication

    model = QgsApplication.processingRegistry().algorithmById(MODEL_ID)
    assert model is not None and model.provider() is treeseg_provider
    assert (model.displayName(), model.group()) == ("Tree Inventory", "Models")
    ok, errors = model.validate()
    assert ok, errors
    assert [model.childAlgorithm(step).algorithmId() for step in model.dependsOnChildAlgorithms("segment_trees")] \
        == ["treeseg:canopyheight"]
    inputs = {parameter.name(): bool(parameter.flags() & parameter.FlagOptional) for parameter in
              model.parameterDefinitions() if not parameter.isDestination()}
    assert inputs == {"orthophoto": False, "chm_weights": True, "chm_backbone": True, "weights": True,
                      "min_crown_area": False}
    assert sorted(output.name() for output in model.outputDefinitions()) == [
        "canopy_height:canopy_height", "segment_trees:crowns", "segment_trees:trees"]


@pytest.mark.slow
def test_run_from_the_desktop_its_layers_are_named_after_the_input_and_grouped(treeseg_provider, processing_iface,
                                                                              tmp_path):
    import processing
    from qgis.core import QgsLayerTreeGroup, QgsProject

    write_hf_chmv2(tmp_path / "chm", seed=11)
    weights = write_meta_pth(tmp_path / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    processing.runAndLoadResults(MODEL_ID, {
        "orthophoto": str(SAMPLE), "weights": str(weights), "chm_weights": str(tmp_path / "chm" / "model.safetensors"),
        "canopy_height:canopy_height": str(tmp_path / "heights.tif"),
        "segment_trees:trees": str(tmp_path / "trees.tif"), "segment_trees:crowns": str(tmp_path / "crowns.gpkg")})
    root = QgsProject.instance().layerTreeRoot()
    try:
        tree = [(node.name(), [child.name() for child in node.children()] if isinstance(node, QgsLayerTreeGroup)
                 else None) for node in root.children()]
        assert tree == [("OSBS_029 canopy height", None), ("OSBS_029", ["OSBS_029 crowns", "OSBS_029 trees"])]
        assert processing_iface.messageBar().currentItem().text().startswith("K = ")
    finally:
        QgsProject.instance().removeAllMapLayers()
        root.removeAllChildren()


def heights_under(feature: ogr.Feature, heights: gdal.Dataset) -> np.ndarray:
    """The heights of the pixels GDAL's rasteriser puts inside ``feature`` (not NoData)."""
    grid = gdal.GetDriverByName("MEM").Create("", heights.RasterXSize, heights.RasterYSize, 1, gdal.GDT_Byte)
    grid.SetGeoTransform(heights.GetGeoTransform())
    grid.SetSpatialRef(heights.GetSpatialRef())
    source = ogr.GetDriverByName("Memory").CreateDataSource("")  # held: a layer outlives no data source
    layer = source.CreateLayer("crown", heights.GetSpatialRef())
    copy = ogr.Feature(layer.GetLayerDefn())
    copy.SetGeometry(feature.GetGeometryRef().Clone())
    layer.CreateFeature(copy)
    gdal.RasterizeLayer(grid, [1], layer, burn_values=[1])
    values = heights.GetRasterBand(1).ReadAsArray()[grid.GetRasterBand(1).ReadAsArray() == 1]
    return values[values != NODATA]


@pytest.mark.slow
def test_the_model_runs_headless_and_writes_crowns_with_heights(plugins_dir, tmp_path):
    write_hf_chmv2(tmp_path / "chm", seed=11)
    weights = write_meta_pth(tmp_path / "dinov3_tiny_random.pth", make_state_dict("tiny", seed=0))
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    help_text = run(["help", MODEL_ID], env)
    assert help_text.returncode == 0 and "orthophoto: Orthophoto (RGB)" in help_text.stdout, help_text.stderr
    outputs = {"canopy_height:canopy_height": tmp_path / "heights.tif",
               "segment_trees:trees": tmp_path / "trees.tif", "segment_trees:crowns": tmp_path / "crowns.gpkg"}
    done, payload = run_algorithm(MODEL_ID, {"orthophoto": SAMPLE, "weights": weights,
                                             "chm_weights": tmp_path / "chm" / "model.safetensors", **outputs}, env)
    assert done.returncode == 0 and payload is not None, done.stdout + done.stderr
    assert {name: payload["results"][name] for name in outputs} == {k: str(v) for k, v in outputs.items()}

    heights = gdal.Open(str(outputs["canopy_height:canopy_height"]))
    assert heights.GetGeoTransform() == gdal.Open(str(SAMPLE)).GetGeoTransform()
    crowns = ogr.Open(str(outputs["segment_trees:crowns"]))
    layer = crowns.GetLayer(0)
    assert layer.GetFeatureCount() > 0
    for feature in layer:
        area, top, mean = (feature.GetField(name) for name in ("area_m2", "height_max", "height_mean"))
        # the true area: within UTM's scale error (under 0.1 % in the zone) of the polygon's planar area
        assert area == pytest.approx(feature.GetGeometryRef().GetArea(), rel=1e-3)
        under = heights_under(feature, heights)
        assert top == pytest.approx(float(under.max()), abs=1e-4)  # the crown's heights came from Canopy Height
        assert 0 < mean <= top
