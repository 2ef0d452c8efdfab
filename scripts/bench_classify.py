"""What fitting a classifier adds to a run: Segment Trees against Classify from Examples (fit + apply) on the same
raster and settings (issue 27: the fit adds at most 10 % to a Segment Trees run).

The raster is synthetic "blobs" (bench_common.blobs: crowns on textured ground), the model random-weight ViT-S/16
(tests/checkpoint_factory), both runs in this process on the CPU with the backbone kept loaded between runs
(start-up excluded from both alike), alternating, medians of ``--repeats``. The examples are squares over the
raster, "crown" where their green is above the middle of the squares' range, "ground" below, ``--examples`` of
each, cross-validated by example as by default. The fit share is Classify from Examples' fitting stages (the
classifier and its cross-validation, from its own per-stage timings) divided by the whole Segment Trees run; the
whole-run ratio is given too. CPU = process CPU seconds (all threads), less sensitive to other load than wall time.

    .venv/bin/python scripts/bench_classify.py                    # 1024 x 1024 px, 3 repeats
    .venv/bin/python scripts/bench_classify.py --width 2048 --height 2048 --examples 20
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np
import torch
from bench_common import blobs, describe_machine, write_results

FIT_STAGES = ("Fitting classifier",)
"""Classify from Examples' stages (ClassifyResult.timings_s keys, engine/runs/classify.py: STAGES) that fitting
adds: the classifier and its cross-validation; the others it shares with Segment Trees' run (reading, encoding,
writing)."""


def write_examples(path: Path, raster: np.ndarray, gt: tuple, per_class: int, side: int = 24) -> Dict[str, int]:
    """Squares of ``side`` px on a 64 px grid over ``raster`` ([3, h, w]) as a GeoPackage in EPSG:32617, the
    greenest "crown", the least green "ground", ``per_class`` of each; the count per class."""
    from osgeo import ogr, osr

    height, width = raster.shape[1:]
    squares = [(row, col) for row in range(8, height - side, 64) for col in range(8, width - side, 64)]
    green = np.array([raster[1, r:r + side, c:c + side].mean() for r, c in squares])
    order = np.argsort(green)
    chosen = {"ground": order[:per_class], "crown": order[::-1][:per_class]}
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32617)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("examples", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
    for name, indices in chosen.items():
        for index in indices:
            row, col = squares[index]
            x0, y0 = gt[0] + col * gt[1], gt[3] + row * gt[5]
            x1, y1 = x0 + side * gt[1], y0 + side * gt[5]
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("class", name)
            feature.SetGeometry(ogr.CreateGeometryFromWkt(
                f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
            layer.CreateFeature(feature)
    dataset = None
    return {name: len(indices) for name, indices in chosen.items()}


def measured(run: Callable[[], Any]) -> Dict[str, Any]:
    """Wall and process CPU seconds of ``run()``, with its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "result": result}


def main(argv: List[str] | None = None) -> Dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--model", default="vits16", help="checkpoint_factory shape (random weights)")
    parser.add_argument("--examples", type=int, default=10, help="example squares per class")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from checkpoint_factory import make_state_dict, write_meta_pth
    from data_factory import make_raster

    from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation
    from treeseg_plugin.engine.encode.runtime import keep_models_loaded
    from treeseg_plugin.engine.jobs.classify import ClassifyConfig
    from treeseg_plugin.engine.runs.classify import STAGES, run_classify

    assert set(FIT_STAGES) <= set(STAGES), STAGES
    torch.set_num_threads(args.threads)
    keep_models_loaded()
    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-classify-"))
    weights = write_meta_pth(folder / f"{args.model}.pth", make_state_dict(args.model, seed=0))
    pixels = blobs(args.height, args.width)
    raster = make_raster(folder / "ortho.tif", args.width, args.height, data=pixels, tiled=True)
    from osgeo import gdal

    counts = write_examples(folder / "examples.gpkg", pixels, gdal.Open(str(raster)).GetGeoTransform(),
                            args.examples)
    settings = {"model": str(weights), "device": "cpu", "precision": "fp32"}
    segment = SegmentationConfig(str(raster), str(folder / "labels.tif"), **settings)
    classify = ClassifyConfig(str(raster), str(folder / "classes.tif"), examples_path=str(folder / "examples.gpkg"),
                              class_field="class", **settings)
    run_segmentation(segment, Progress())  # loads the backbone once, for both
    runs: Dict[str, List[Dict[str, Any]]] = {"segment": [], "classify": []}
    for _ in range(args.repeats):
        runs["segment"].append(measured(lambda: run_segmentation(segment, Progress())))
        runs["classify"].append(measured(lambda: run_classify(classify, Progress())))
    return report(args, argv, counts, runs)


def report(args: argparse.Namespace, argv: List[str], counts: Dict[str, int],
           runs: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """Print the Markdown for docs/benchmarks.md; the medians as a dict (and ``--json``)."""
    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    def fit(key: str) -> float:  # "wall" -> timings_s, "cpu" -> cpu_s
        return statistics.median(sum(seconds for stage, seconds in
                                     getattr(run["result"], "timings_s" if key == "wall" else "cpu_s").items()
                                     if stage in FIT_STAGES) for run in runs["classify"])

    last = runs["classify"][-1]["result"]
    results = {key: {"segment_s": median("segment", key), "classify_s": median("classify", key), "fit_s": fit(key)}
               for key in ("wall", "cpu")}
    for row in results.values():
        row["fit_share"] = row["fit_s"] / row["segment_s"]
        row["ratio"] = row["classify_s"] / row["segment_s"]
    print(f"# Classify from Examples: the fit's share, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}; {args.threads} threads")
    print(f"- command: `.venv/bin/python scripts/{Path(__file__).name} {' '.join(argv)}`".replace("  ", " "))
    print(f"- input: {args.width} x {args.height} px synthetic 'blobs', model {args.model} (random weights), fp32, "
          f"Segment Trees' default settings (automatic K 2..10) for both; examples {counts} squares of 24 px, "
          f"cross-validated ({(last.accuracy or {}).get('scheme', 'none')}); medians of {args.repeats} runs each\n")
    print("| | Segment Trees run s | Classify from Examples run s | fit stages s | **fit / Segment Trees run** "
          "| Classify / Segment Trees |")
    print("|---|---|---|---|---|---|")
    for key, row in results.items():
        print(f"| {key} | {row['segment_s']:.2f} | {row['classify_s']:.2f} | {row['fit_s']:.2f} "
              f"| **{100 * row['fit_share']:.1f} %** | {row['ratio']:.2f}x |")
    print(f"\nClassify from Examples' stages (last run, wall s): "
          f"{', '.join(f'{k} {v:.2f}' for k, v in last.timings_s.items())}")
    if args.json:
        write_results(args.json, args, results)
    return results


if __name__ == "__main__":
    main()
