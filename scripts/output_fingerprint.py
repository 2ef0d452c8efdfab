"""Fingerprints of every raster and vector TreeSeg writes, for proving a refactor changed no output.

Runs the engine in this process (fp32, CPU, random-weight checkpoints written here with the tests'
factories; seed 0) on the bundled sample and on a second, synthetic raster with a NoData border:

* Segment Trees with default settings, plus the tree mask, crowns and polygons, saving the cluster model;
* the saved cluster model applied to the second raster;
* Canopy Height (random tiny CHMv2) on the sample, then Segment Trees with those heights, tree mask and crowns;
* Canopy Height on the second raster without NoData.

Prints one line per output: the SHA-256 of its pixel values (rasters: every band's bytes, the geotransform,
the CRS, NoData) or of its features (vectors: geometry WKB and attributes, in order). Run it before and after
a change and compare the two listings (``diff``)::

    .venv/bin/python scripts/output_fingerprint.py > before.txt
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
SAMPLE = REPO_ROOT / "sample" / "OSBS_029.tif"


def raster_digest(path: Path) -> str:
    """SHA-256 of a raster's values and georeferencing."""
    from osgeo import gdal

    ds = gdal.Open(str(path))
    digest = hashlib.sha256(repr((ds.GetGeoTransform(), ds.GetProjection())).encode())
    for index in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(index)
        digest.update(repr((band.DataType, band.GetNoDataValue())).encode())
        digest.update(band.ReadRaster())
    return digest.hexdigest()


def vector_digest(path: Path) -> str:
    """SHA-256 of a vector file's features: geometry and attributes, in order."""
    from osgeo import ogr

    ds = ogr.Open(str(path))
    digest = hashlib.sha256()
    for layer in ds:
        for feature in layer:
            digest.update(feature.GetGeometryRef().ExportToWkb())
            digest.update(repr(sorted(feature.items().items())).encode())
    return digest.hexdigest()


def second_raster(path: Path) -> Path:
    """A 256 x 192 synthetic scene (tests' pattern) with a 12-px NoData border, in EPSG:32617 at 0.2 m."""
    import numpy as np
    from data_factory import pattern
    from osgeo import gdal, osr

    values = 1 + np.round(254 * pattern(192, 256, 3, kind="blobs", seed=3))
    values[:, :12, :] = 0
    values[:, :, -12:] = 0
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 256, 192, 3, gdal.GDT_Byte)
    ds.SetGeoTransform((402000.0, 0.2, 0.0, 3284000.0, 0.0, -0.2))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32617)
    ds.SetProjection(srs.ExportToWkt())
    for index in range(3):
        band = ds.GetRasterBand(index + 1)
        band.SetNoDataValue(0)
        band.WriteArray(np.asarray(values[index], dtype=np.uint8))
    ds = None
    return path


def second_raster_without_nodata(path: Path) -> Path:
    from data_factory import make_raster

    return Path(make_raster(path, 160, 128))


def run_all(work: Path) -> list[tuple[str, Path]]:
    """Run every job; the outputs to fingerprint, by name."""
    from checkpoint_factory import make_state_dict, write_meta_pth
    from chmv2_factory import write_hf_chmv2, write_meta_chmv2

    from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation
    from treeseg_plugin.engine.jobs.canopy_height import CanopyHeightConfig
    from treeseg_plugin.engine.runs.canopy_height import run_canopy_height

    weights = write_meta_pth(work / "vits16_random.pth", make_state_dict("vits16", seed=0))
    _, chm_model = write_hf_chmv2(work / "chm-hf", seed=7)
    decoder, chm_backbone = write_meta_chmv2(work / "chm-meta", chm_model)
    other = second_raster(work / "other.tif")
    plain = second_raster_without_nodata(work / "plain.tif")
    common = {"model": str(weights), "device": "cpu", "precision": "fp32"}
    quiet = Progress()
    out: list[tuple[str, Path]] = []

    a = work / "a"
    run_segmentation(SegmentationConfig(str(SAMPLE), str(a / "labels.tif"), trees_path=str(a / "trees.tif"),
                                        crowns_path=str(a / "crowns.gpkg"), polygons_path=str(a / "polygons.gpkg"),
                                        cluster_model_output=str(a / "model.tscm"), **common), quiet)
    out += [("sample labels", a / "labels.tif"), ("sample trees", a / "trees.tif"),
            ("sample crowns", a / "crowns.gpkg"), ("sample polygons", a / "polygons.gpkg")]

    b = work / "b"
    run_segmentation(SegmentationConfig(str(other), str(b / "labels.tif"), cluster_model=str(a / "model.tscm"),
                                        trees_path=str(b / "trees.tif"), **common), quiet)
    out += [("other labels (model applied)", b / "labels.tif"), ("other trees (model applied)", b / "trees.tif")]

    c = work / "c"
    chm = {"model": str(decoder), "backbone": str(chm_backbone), "device": "cpu", "precision": "fp32"}
    run_canopy_height(CanopyHeightConfig(str(SAMPLE), str(c / "heights.tif"), tile_size=64, overlap=16, **chm), quiet)
    run_segmentation(SegmentationConfig(str(SAMPLE), str(c / "labels.tif"), canopy_height_path=str(c / "heights.tif"),
                                        trees_path=str(c / "trees.tif"), crowns_path=str(c / "crowns.gpkg"),
                                        **common), quiet)
    out += [("sample heights", c / "heights.tif"), ("sample labels with heights", c / "labels.tif"),
            ("sample trees with heights", c / "trees.tif"), ("sample crowns with heights", c / "crowns.gpkg")]

    d = work / "d"
    run_canopy_height(CanopyHeightConfig(str(plain), str(d / "heights.tif"), resolution=0, tile_size=64, overlap=16,
                                         **chm), quiet)
    out.append(("plain heights", d / "heights.tif"))
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)  # one thread: the same reductions on any machine with the same CPU kind
    with tempfile.TemporaryDirectory(prefix="treeseg-fingerprint-") as scratch:
        for name, path in run_all(Path(scratch)):
            digest = vector_digest(path) if path.suffix == ".gpkg" else raster_digest(path)
            print(f"{digest}  {name}")


if __name__ == "__main__":
    main()
