"""Evaluate Segment Trees' crowns and canopy mask against DeepForest's NEON tree boxes for OSBS_029.

    .venv/bin/python scripts/eval_crowns.py --weights dinov3_vits16_pretrain_lvd1689m-08c60483.pth
    .venv/bin/python scripts/eval_crowns.py --random-weights --json result.json   # a pipeline check only

The annotations: ``deepforest/data/OSBS_029.csv`` (61 boxes in pixel coordinates of the bundled
sample/OSBS_029.tif), read out of the DeepForest wheel that ``pip download --no-deps deepforest==2.1.0``
fetches from PyPI (DeepForest itself is not installed), or a CSV given with ``--annotations``.

Crowns, NeonTreeEvaluation's protocol (as DeepForest's evaluate): each crown's bounding box is a predicted
box; predictions and annotations are matched one to one by the Hungarian algorithm on IoU
(scipy.optimize.linear_sum_assignment), a match counts when IoU >= 0.4; precision = matches / crowns,
recall = matches / annotations. Canopy: the TREES mask against the union of the boxes on the pixel grid
(precision, recall and IoU of canopy pixels; NoData pixels left out). The boxes cover crowns only
roughly, so the canopy figures are a coarse check. ``--random-weights`` uses a random-weight ViT-S/16
(tests/checkpoint_factory.py): its clusters follow colour and texture, so its figures check the pipeline,
not the method; real figures need the gated DINOv3 weights.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess  # nosec B404
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from osgeo import gdal, ogr
from scipy.optimize import linear_sum_assignment

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample" / "OSBS_029.tif"
DEEPFOREST = "deepforest==2.1.0"
ANNOTATIONS_IN_WHEEL = "deepforest/data/OSBS_029.csv"
IOU_THRESHOLD = 0.4
Box = Tuple[float, float, float, float]  # xmin, ymin, xmax, ymax in pixels

gdal.UseExceptions()


class PyPIUnreachableError(RuntimeError):
    """pip could not reach PyPI (the only reason the test may skip)."""


def fetch_annotations(folder: Path) -> str:
    """OSBS_029.csv's text, out of the DeepForest wheel downloaded from PyPI into ``folder``."""
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",  # nosec B603
                           DEEPFOREST, "-d", str(folder)], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        text = done.stdout + done.stderr
        if any(word in text for word in ("NewConnectionError", "Temporary failure", "Network is unreachable",
                                         "No matching distribution", "ConnectTimeout", "ProxyError")):
            raise PyPIUnreachableError(f"pip could not fetch {DEEPFOREST} from PyPI: {text.strip()[-300:]}")
        raise RuntimeError(f"pip download {DEEPFOREST} failed: {text.strip()[-500:]}")
    [wheel] = folder.glob("deepforest-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(ANNOTATIONS_IN_WHEEL).decode("utf-8")


def read_boxes(text: str, image_name: str) -> List[Box]:
    """The boxes of ``image_name`` in a DeepForest annotation CSV."""
    rows = csv.DictReader(io.StringIO(text))
    return [(float(r["xmin"]), float(r["ymin"]), float(r["xmax"]), float(r["ymax"])) for r in rows
            if r["image_path"] == image_name]


def crown_boxes(crowns_path: str, geotransform: Tuple[float, ...]) -> List[Box]:
    """Each crown's bounding box in pixel coordinates of the image (north-up geotransform)."""
    vector = ogr.Open(crowns_path)
    boxes = []
    for feature in vector.GetLayer(0):
        xmin, xmax, ymin, ymax = feature.GetGeometryRef().GetEnvelope()
        boxes.append(((xmin - geotransform[0]) / geotransform[1], (ymax - geotransform[3]) / geotransform[5],
                      (xmax - geotransform[0]) / geotransform[1], (ymin - geotransform[3]) / geotransform[5]))
    return boxes


def iou_matrix(predicted: List[Box], truth: List[Box]) -> np.ndarray:
    """IoU [n_predicted, n_truth] of axis-aligned boxes."""
    p, t = np.array(predicted, float).reshape(-1, 4), np.array(truth, float).reshape(-1, 4)
    ix = np.clip(np.minimum(p[:, None, 2], t[None, :, 2]) - np.maximum(p[:, None, 0], t[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(p[:, None, 3], t[None, :, 3]) - np.maximum(p[:, None, 1], t[None, :, 1]), 0, None)
    inter = ix * iy
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    return inter / (area_p[:, None] + area_t[None, :] - inter)


def box_scores(predicted: List[Box], truth: List[Box]) -> Dict[str, Any]:
    """Precision and recall at IoU >= 0.4 after one-to-one Hungarian matching."""
    matches = 0
    if predicted and truth:
        iou = iou_matrix(predicted, truth)
        rows, cols = linear_sum_assignment(-iou)
        matches = int((iou[rows, cols] >= IOU_THRESHOLD).sum())
    return {"crowns": len(predicted), "annotations": len(truth), "matches": matches,
            "precision": matches / len(predicted) if predicted else 0.0,
            "recall": matches / len(truth) if truth else 0.0, "iou_threshold": IOU_THRESHOLD}


def mask_scores(mask_path: str, truth: List[Box]) -> Dict[str, Any]:
    """The canopy mask against the union of the boxes (pixels; NoData left out)."""
    dataset = gdal.Open(mask_path)
    mask = dataset.GetRasterBand(1).ReadAsArray()
    union = np.zeros(mask.shape, bool)
    for xmin, ymin, xmax, ymax in truth:
        union[round(ymin):round(ymax), round(xmin):round(xmax)] = True
    valid = mask != 255
    canopy = (mask == 1) & valid
    union &= valid
    both = int((canopy & union).sum())
    return {"canopy_pixels": int(canopy.sum()), "box_pixels": int(union.sum()),
            "precision": both / max(1, int(canopy.sum())), "recall": both / max(1, int(union.sum())),
            "iou": both / max(1, int((canopy | union).sum()))}


def segment(image: Path, weights: str, folder: Path) -> Dict[str, Any]:
    """Segment Trees on ``image`` with TREES and CROWNS in ``folder``; the engine's result."""
    sys.path.insert(0, str(REPO))
    from treeseg_plugin import engine

    config = engine.SegmentationConfig(input_path=str(image), output_path=str(folder / "labels.tif"), model=weights,
                                       trees_path=str(folder / "trees.tif"), crowns_path=str(folder / "crowns.gpkg"))
    return engine.run_segmentation(config).stats


def random_weights(folder: Path) -> str:
    """A random-weight ViT-S/16 in Meta's layout (a pipeline check, never real figures)."""
    sys.path.insert(0, str(REPO / "tests"))
    from checkpoint_factory import make_state_dict, write_meta_pth

    return str(write_meta_pth(folder / "dinov3_vits16_random.pth", make_state_dict("vits16", seed=0)))


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", help="DINOv3 checkpoint (.pth / .safetensors) or a model name")
    which.add_argument("--random-weights", action="store_true", help="a random-weight ViT-S/16: a pipeline check")
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--annotations", type=Path, help="DeepForest CSV (default: from the DeepForest wheel)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="treeseg-eval-") as tmp:
        folder = Path(tmp)
        try:
            text = args.annotations.read_text() if args.annotations else fetch_annotations(folder)
        except PyPIUnreachableError as exc:
            print(f"PyPI unreachable: {exc}", file=sys.stderr)
            return 3
        truth = read_boxes(text, args.image.name)
        weights = random_weights(folder) if args.random_weights else args.weights
        stats = segment(args.image, weights, folder)
        geotransform = gdal.Open(str(args.image)).GetGeoTransform()
        figures = {"image": args.image.name, "weights": "random ViT-S/16" if args.random_weights else weights,
                   "chosen_k": stats["chosen_k"], "tree_clusters": stats["trees"]["tree_labels"],
                   "crowns": box_scores(crown_boxes(str(folder / "crowns.gpkg"), geotransform), truth),
                   "canopy": mask_scores(str(folder / "trees.tif"), truth)}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
