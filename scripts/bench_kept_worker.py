"""Repeated runs in one QGIS desktop session (under Xvfb): five `processing.run` of Segment Trees on a small raster
with the same model, with the worker kept between runs (the default) and with it switched off
(``treeseg/keep_worker`` false), each in its own desktop session (docs/benchmarks.md, "Repeated runs in the
desktop"). Reported: every run's wall time, its start-up (the wall time less the engine's work after the model
is loaded, from the run's statistics file: Python's start, the imports, reading the weights, QGIS's part), and
runs 2-5 against run 1 (target: at most half).

    .venv/bin/python scripts/bench_kept_worker.py                  # 256 x 256 px, random-weight ViT-S/16
    .venv/bin/python scripts/bench_kept_worker.py --model tiny --runs 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Dict, List, Tuple

from bench_common import REPO_ROOT, blobs, describe_machine
from bench_qgis import engine_seconds
from qgis_process_runner import enable_plugin, qgis_process_env

# Run by `qgis --code` once the plugin is loaded: the setting, then the runs through processing.run on QGIS's
# main thread (as the Python console would), each timed; the times (or the error) go to a JSON file.
DESKTOP_SCRIPT = textwrap.dedent("""
    import json, os, time
    import processing
    from qgis.core import QgsSettings
    QgsSettings().setValue("treeseg/keep_worker", os.environ["TREESEG_BENCH_KEEP"] == "1")
    params = json.loads(os.environ["TREESEG_BENCH_PARAMETERS"])
    walls = []
    try:
        for index in range(int(os.environ["TREESEG_BENCH_RUNS"])):
            tick = time.perf_counter()
            processing.run("treeseg:segmenttrees", {**params, "OUTPUT": params["OUTPUT"].format(index),
                                                    "STATS": params["STATS"].format(index)})
            walls.append(time.perf_counter() - tick)
        outcome = {"walls": walls}
    except Exception as exc:
        outcome = {"error": repr(exc)}
    with open(os.environ["TREESEG_BENCH_OUTCOME"], "w") as stream:
        json.dump(outcome, stream)
    os._exit(0)
""")


def desktop_session(folder: Path, parameters: Dict[str, str], runs: int, keep: bool) -> List[Tuple[float, float]]:
    """(wall s, start-up s) of ``runs`` processing.run in one fresh desktop session (``keep``: the kept worker);
    start-up is the wall time less the engine's own work after loading the model (its statistics file)."""
    env = qgis_process_env(folder / f"home-{keep}", folder / "plugins")
    enable_plugin("treeseg", env)
    env.pop("QT_QPA_PLATFORM")
    script, outcome_path = folder / "desktop_runs.py", folder / "outcome.json"
    script.write_text(DESKTOP_SCRIPT)
    env.update({"TREESEG_BENCH_PARAMETERS": json.dumps(parameters), "TREESEG_BENCH_OUTCOME": str(outcome_path),
                "TREESEG_BENCH_RUNS": str(runs), "TREESEG_BENCH_KEEP": "1" if keep else "0"})
    subprocess.run(["xvfb-run", "-a", "qgis", "--nologo", "--noversioncheck", "--code", str(script)],
                   env=env, check=False, capture_output=True, timeout=1800)
    outcome = json.loads(outcome_path.read_text()) if outcome_path.exists() else {"error": "no outcome"}
    outcome_path.unlink(missing_ok=True)
    if "error" in outcome:
        raise SystemExit(f"QGIS desktop session failed: {outcome['error']}")
    engine = [engine_seconds(Path(parameters["STATS"].format(index)))[0] for index in range(runs)]
    return [(wall, wall - work) for wall, work in zip(outcome["walls"], engine)]


def main(argv: List[str] = sys.argv[1:]) -> Dict[str, List[Tuple[float, float]]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="raster width and height, px")
    parser.add_argument("--model", default="vits16")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if not shutil.which("xvfb-run"):
        raise SystemExit("needs xvfb-run: apt-get install xvfb xauth")

    from checkpoint_factory import make_state_dict, write_meta_pth
    from data_factory import make_raster

    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-kept-"))
    (folder / "plugins").mkdir()
    (folder / "plugins" / "treeseg").symlink_to(REPO_ROOT)
    weights = write_meta_pth(folder / f"{args.model}.pth", make_state_dict(args.model, seed=0))
    raster = make_raster(folder / "ortho.tif", args.size, args.size, data=blobs(args.size, args.size))
    parameters = {"INPUT": str(raster), "WEIGHTS": str(weights), "OUTPUT": str(folder / "labels-{}.tif"),
                  "STATS": str(folder / "stats-{}.json")}

    print(f"# Repeated runs in one QGIS desktop session, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`; xvfb-run qgis --code, processing.run")
    print(f"- input: {args.size} x {args.size} px RGB Byte GeoTIFF, synthetic 'blobs'; model {args.model}, "
          f"random weights, Meta .pth; defaults otherwise; {args.runs} runs per session\n")
    print("| worker | every run, wall s | of which start-up s | runs 2+ ÷ run 1: median, largest |")
    print("|---|---|---|---|")
    report = {}
    for keep in (True, False):
        runs = desktop_session(folder, parameters, args.runs, keep)
        walls = [wall for wall, _ in runs]
        ratios = [wall / walls[0] for wall in walls[1:]]
        name = "kept between runs" if keep else "fresh per run (`keep_worker` off)"
        print(f"| {name} | {' '.join(f'{wall:.2f}' for wall in walls)} | "
              f"{' '.join(f'{start:.2f}' for _, start in runs)} | "
              f"{statistics.median(ratios):.2f}x, {max(ratios):.2f}x |")
        report[name] = runs
    shutil.rmtree(folder, ignore_errors=True)
    return report


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
