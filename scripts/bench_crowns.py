"""Time the CROWNS step alone (engine/crowns.write_crowns) on a synthetic stand, with or without heights.

    .venv/bin/python scripts/bench_crowns.py 4096 --heights    # a 4096 x 4096 px grid at 0.1 m

The stand: paraboloid crowns of 3-4.5 m radius (tops 8-18 m) on a 6 m grid, one tree cluster (label 1),
the rest label 2, in EPSG:32617. Prints the crowns found, the trees planted, seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from treeseg_plugin.engine.progress import Progress
from treeseg_plugin.engine.raster.georef import Window, pixel_area
from treeseg_plugin.engine.trees.crowns import write_crowns
from treeseg_plugin.engine.trees.evidence import HeightGrid

PIXEL_M, SPACING_PX = 0.1, 60


def stand(side: int) -> tuple[np.ndarray, int]:
    """Heights [side, side] in metres and the number of trees planted."""
    rng = np.random.default_rng(0)
    heights = np.zeros((side, side), np.float32)
    centres = range(SPACING_PX // 2, side, SPACING_PX)
    for cy in centres:
        for cx in centres:
            radius, top = 30 + 15 * rng.random(), 8 + 10 * rng.random()
            y0, x0 = max(0, int(cy - radius)), max(0, int(cx - radius))
            yy, xx = np.mgrid[y0:min(side, int(cy + radius) + 1), x0:min(side, int(cx + radius) + 1)]
            d = np.hypot(yy - cy, xx - cx) / radius
            crown = np.where(d < 1, top - (top - 3) * d ** 2, 0).astype(np.float32)
            heights[y0:y0 + crown.shape[0], x0:x0 + crown.shape[1]] = np.maximum(
                heights[y0:y0 + crown.shape[0], x0:x0 + crown.shape[1]], crown)
    return heights, len(centres) ** 2


def write(path: Path, data: np.ndarray, kind: int, geotransform: tuple, srs: osr.SpatialReference) -> None:
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, kind,
                                                   options=["TILED=YES", "COMPRESS=DEFLATE"])
    dataset.SetGeoTransform(geotransform)
    dataset.SetSpatialRef(srs)
    dataset.GetRasterBand(1).WriteArray(data)
    dataset = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("side", type=int)
    parser.add_argument("--heights", action="store_true", help="watershed on the heights (else the distance)")
    args = parser.parse_args()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32617)
    geotransform = (500000.0, PIXEL_M, 0.0, 3300000.0, 0.0, -PIXEL_M)
    heights, trees = stand(args.side)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder / "labels.tif", np.where(heights > 0, 1, 2).astype(np.uint8), gdal.GDT_Byte, geotransform, srs)
        write(folder / "chm.tif", heights, gdal.GDT_Float32, geotransform, srs)
        del heights
        grid = HeightGrid(str(folder / "chm.tif"), Window(0, 0, args.side, args.side), geotransform, srs) \
            if args.heights else None
        started = time.perf_counter()
        count = write_crowns(str(folder / "labels.tif"), str(folder / "crowns.gpkg"), [1], grid,
                             pixel_area(geotransform, srs), 2.0, 1.0, 2, Progress())
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{args.side} x {args.side} px, {'heights' if args.heights else 'distance'}: {count} crowns "
          f"({trees} trees planted) in {seconds:.1f} s, peak RSS {peak} MiB")


if __name__ == "__main__":
    main()
