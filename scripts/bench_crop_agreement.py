"""Label agreement of crops labelled with one shared cluster model (docs/cluster-model.md, "Agreement across
crops").

One model is fitted on the bundled sample (sample/OSBS_029.tif) with the tiny random-weight backbone
(tests/checkpoint_factory "tiny") and applied to 256 x 256 px crops at offsets that are multiples of the tile
step (TILE_SIZE - OVERLAP), multiples of the stride only, and arbitrary (seeded); for each, the share of
pixels with the whole run's label, outside the crop's outermost ring of tiles and over the whole crop.

    .venv/bin/python scripts/bench_crop_agreement.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from bench_common import REPO_ROOT, describe_machine
from checkpoint_factory import make_state_dict, write_meta_pth
from osgeo import gdal

from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation

SAMPLE = str(REPO_ROOT / "sample" / "OSBS_029.tif")
TILE, OVERLAP, CROP = 64, 16, 256


def read(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    labels = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    return labels


def main() -> None:
    print(describe_machine())
    folder = Path(tempfile.mkdtemp(prefix="crop-agreement-"))
    weights = str(write_meta_pth(folder / "tiny.pth", make_state_dict("tiny", seed=0)))
    settings = {"model": weights, "tile_size": TILE, "overlap": OVERLAP, "k_max": 5}
    model = str(folder / "model.tscm")
    run_segmentation(SegmentationConfig(SAMPLE, str(folder / "full.tif"), cluster_model_output=model, **settings),
                     Progress())
    full = read(folder / "full.tif")
    step, rng = TILE - OVERLAP, np.random.default_rng(0)
    cases = {"tile step": [(step, step), (2 * step, step), (step, 2 * step)],
             "stride, not step": [(16, 32), (64, 16), (32, 80)],
             "arbitrary": [tuple(int(v) for v in rng.integers(1, 120, 2)) for _ in range(6)]}
    for name, offsets in cases.items():
        inner, whole = [], []
        for x0, y0 in offsets:
            gdal.Translate(str(folder / "crop.tif"), SAMPLE, srcWin=[x0, y0, CROP, CROP])
            run_segmentation(SegmentationConfig(str(folder / "crop.tif"), str(folder / "crop-labels.tif"),
                                                cluster_model=model, **settings), Progress())
            crop, part = read(folder / "crop-labels.tif"), full[y0:y0 + CROP, x0:x0 + CROP]
            whole.append(np.mean(crop == part))
            inner.append(np.mean(crop[TILE:-TILE, TILE:-TILE] == part[TILE:-TILE, TILE:-TILE]))
        print(f"{name}: offsets {offsets}: outside the outer ring {min(inner):.4f}..{max(inner):.4f}, mean "
              f"{np.mean(inner):.4f}; whole crop mean {np.mean(whole):.4f}")


if __name__ == "__main__":
    main()
