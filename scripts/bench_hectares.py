"""Hectares per minute of Segment Trees through ``qgis_process.bin`` on drone-like imagery, at the raster's own
2.5 cm and with ``WORKING_RESOLUTION=0.1`` (issue 25, item 5; docs/benchmarks.md, "Hectares per minute").

The 10 cm raster is the bundled sample (sample/OSBS_029.tif, a 40 m NEON orthophoto) extended by its mirror
images to ``--side`` px (or cut to it); the 2.5 cm raster is that upsampled 4x by nearest neighbour, so a
10 cm working resolution sees exactly the 10 cm pixels. The area should span several 10 cm tiles (a 384 px
tile covers 38.4 m there): on one tile, the partial tiles at the edges weigh more at 10 cm than at 2.5 cm.
Per model, three runs in turn, ``--repeats`` rounds: the 10 cm raster itself, the 2.5 cm raster at its own
resolution, and the 2.5 cm raster at 0.1 m. The checkpoints are written by tests/checkpoint_factory in
Meta's .pth format with random weights: the architecture and its cost are real, the weights (and so the
labels' meaning) are not. fp32, default threads and tiling, as scripts/bench_qgis.py.

Reported per run: the tiles encoded, the whole command's wall time and the engine's (from its statistics
file, loading the model excluded; also its process CPU time), hectares per minute on each, the load
averages before and after (the machine may be shared: figures under load are upper bounds on the time),
and for the 0.1 m run its time against the native run's (the issue's acceptance: at most a tenth) and its
labels' agreement with the 10 cm raster's own labels upsampled 4x (at least 99 %).

    .venv/bin/python scripts/bench_hectares.py                           # ViT-S/16 and ViT-L/16, 0.64 ha
    .venv/bin/python scripts/bench_hectares.py --models tiny --side 48   # seconds (the smoke test)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from bench_common import REPO_ROOT, describe_machine, load_average, meta_checkpoint, write_results
from bench_qgis import ALGORITHM, engine_seconds
from qgis_process_runner import QGIS_PROCESS, enable_plugin, qgis_process_env, run_algorithm

SAMPLE = REPO_ROOT / "sample" / "OSBS_029.tif"
NATIVE_M, COARSE_M, FACTOR = 0.025, 0.1, 4
WAYS = ("10 cm raster", "2.5 cm native", "2.5 cm at 0.1 m")


def drone_rasters(folder: Path, side: int) -> Dict[str, Path]:
    """A ``side`` px square at 10 cm from the sample (its top-left corner; mirrored beyond its 400 px, so a
    larger area is the plot and its mirror images, seamless), and the same upsampled 4x by nearest neighbour."""
    from data_factory import make_raster
    from osgeo import gdal

    sample = gdal.Open(str(SAMPLE))
    ortho = sample.ReadAsArray()
    x0, _, _, y0, _, _ = sample.GetGeoTransform()
    sample = None
    extra = max(0, side - ortho.shape[1])
    ortho = np.pad(ortho, ((0, 0), (0, extra), (0, extra)), mode="symmetric")[:, :side, :side]
    fine = np.repeat(np.repeat(ortho, FACTOR, axis=1), FACTOR, axis=2)
    return {"coarse": make_raster(folder / "10cm.tif", side, side, pixel_size=COARSE_M, data=ortho, origin=(x0, y0),
                                  tiled=True),
            "fine": make_raster(folder / "2.5cm.tif", side * FACTOR, side * FACTOR, pixel_size=NATIVE_M, data=fine,
                                origin=(x0, y0), tiled=True)}


def labels(path: Path) -> np.ndarray:
    from osgeo import gdal

    ds = gdal.Open(str(path))
    values = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    return values


def run_way(folder: Path, env: Dict[str, str], parameters: Dict[str, str], name: str) -> Dict[str, float]:
    """One qgis_process run: whole wall s, engine s (model loading excluded), model loading s, load averages."""
    outputs = {"OUTPUT": str(folder / f"{name}.tif"), "STATS": str(folder / f"{name}.json")}
    before = load_average()
    tick = time.perf_counter()
    done, payload = run_algorithm(ALGORITHM, {**parameters, **outputs}, env, timeout=3600)
    wall = time.perf_counter() - tick
    if done.returncode != 0 or payload is None:
        raise SystemExit(f"qgis_process failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    stats = json.loads(Path(outputs["STATS"]).read_text())
    engine, engine_cpu = engine_seconds(Path(outputs["STATS"]))
    return {"wall_s": wall, "engine_s": engine, "engine_cpu_s": engine_cpu, "tiles": stats["tiles"]["total"],
            "load_model_s": stats["timings_s"]["load_model"], "read_encode_s": stats["timings_s"]["read_encode"],
            "stages_s": stats["timings_s"], "load_before": before, "load_after": load_average()}


def one_model(folder: Path, env: Dict[str, str], model: str, rasters: Dict[str, Path], repeats: int) -> Dict:
    """Every way ``repeats`` times in turn for one model; the agreement of the 0.1 m run's labels."""
    from treeseg_plugin.settings import DEVICES, PRECISIONS

    weights = meta_checkpoint(model, folder)
    common = {"WEIGHTS": str(weights), "DEVICE": str(DEVICES.index("cpu")), "PRECISION": str(PRECISIONS.index("fp32"))}
    parameters = {WAYS[0]: {**common, "INPUT": str(rasters["coarse"])},
                  WAYS[1]: {**common, "INPUT": str(rasters["fine"])},
                  WAYS[2]: {**common, "INPUT": str(rasters["fine"]), "WORKING_RESOLUTION": str(COARSE_M)}}
    runs: Dict[str, List[Dict[str, float]]] = {way: [] for way in WAYS}
    for _ in range(repeats):
        for index, way in enumerate(WAYS):
            runs[way].append(run_way(folder, env, parameters[way], f"{model}-{index}"))
    expected = np.repeat(np.repeat(labels(folder / f"{model}-0.tif"), FACTOR, axis=0), FACTOR, axis=1)
    agreement = float((labels(folder / f"{model}-2.tif") == expected).mean())
    weights.unlink()
    return {"runs": runs, "agreement": agreement}


def summarise(model: str, report: Dict, hectares: float) -> Dict[str, Dict[str, float]]:
    """Print one model's rows (medians over the rounds) and return them."""
    rows = {}
    for way, runs in report["runs"].items():
        wall, engine = (statistics.median(run[key] for run in runs) for key in ("wall_s", "engine_s"))
        rows[way] = {"wall_s": wall, "engine_s": engine, "ha_per_min_wall": hectares / wall * 60,
                     "ha_per_min_engine": hectares / engine * 60,
                     "load_model_s": statistics.median(run["load_model_s"] for run in runs),
                     "read_encode_s": statistics.median(run["read_encode_s"] for run in runs),
                     "engine_cpu_s": statistics.median(run["engine_cpu_s"] for run in runs), "tiles": runs[0]["tiles"],
                     "loads": [f"{run['load_before']} -> {run['load_after']}" for run in runs]}
        row = rows[way]
        every = " ".join(f"{run['engine_s']:.1f}" for run in runs)
        print(f"| {model} | {way} | {row['tiles']} | {row['wall_s']:.1f} | {row['ha_per_min_wall']:.3f} "
              f"| {row['engine_s']:.1f} | {row['ha_per_min_engine']:.3f} | {every} | {row['engine_cpu_s']:.1f} "
              f"| {row['load_model_s']:.2f} | {'; '.join(row['loads'])} |",
              flush=True)
    native, working = rows[WAYS[1]], rows[WAYS[2]]
    ratios = {key: working[f"{key}_s"] / native[f"{key}_s"] for key in ("wall", "engine", "engine_cpu", "read_encode")}
    print(f"\n{model}: 0.1 m ÷ native 2.5 cm: **{ratios['wall']:.3f}** whole command, **{ratios['engine']:.3f}** "
          f"engine ({ratios['engine_cpu']:.3f} in CPU s), {ratios['read_encode']:.3f} reading and encoding "
          f"(target ≤ 0.1); labels agree with the 10 cm "
          f"raster's upsampled 4x on "
          f"**{100 * report['agreement']:.2f} %** of the pixels (target ≥ 99 %)\n", flush=True)
    return {"rows": rows, "ratio_to_native": ratios, "agreement": report["agreement"], "runs": report["runs"]}


def main(argv: List[str] = sys.argv[1:]) -> Dict[str, Dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vits16", "vitl16"])
    parser.add_argument("--side", type=int, default=800,
                        help="the 10 cm raster's side, px: the sample (400 px) and its mirror images")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three runs per model (medians)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-hectares-"))
    (folder / "plugins").mkdir()
    (folder / "plugins" / "treeseg").symlink_to(REPO_ROOT)
    env = qgis_process_env(folder / "home", folder / "plugins")
    enable_plugin("treeseg", env)
    rasters = drone_rasters(folder, args.side)
    hectares = (args.side * COARSE_M) ** 2 / 1e4
    print(f"# Hectares per minute through qgis_process, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`; {QGIS_PROCESS}")
    print(f"- input: {args.side} x {args.side} px at 10 cm from sample/OSBS_029.tif (mirrored beyond its 400 px) "
          f"= {hectares:.4f} ha; "
          f"the same upsampled 4x by nearest neighbour: {args.side * FACTOR} x {args.side * FACTOR} px at 2.5 cm; "
          f"random-weight checkpoints (real architecture), fp32, default tiling; {args.repeats} round(s)\n")
    print("| model | run | tiles | whole command s | ha/min (whole) | engine s, model loading excluded "
          "| ha/min (engine) | every engine s | engine CPU s | model loading s | load average before -> after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = {model: summarise(model, one_model(folder, env, model, rasters, args.repeats), hectares)
               for model in args.models}
    if args.json:
        write_results(args.json, args, {"hectares": hectares, "models": results})
    shutil.rmtree(folder, ignore_errors=True)
    return results


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
