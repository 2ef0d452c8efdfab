"""Segment Trees where analysts run it: through ``qgis_process.bin`` and in the QGIS desktop (under Xvfb),
next to the same engine in a plain Python process and the backbone alone, in one run (docs/benchmarks.md,
"Inside QGIS").

Every way runs the same job (the bench raster, random-weight ViT-S/16 from tests/checkpoint_factory,
the config's default tiling) in turn, `--repeats` times, with the backbone timed in this process before
and after each round on batches of random 512 x 512 tiles, so machine noise hits all alike. Reported per
way: the engine's own wall and process CPU time from the statistics file (start-up, i.e. loading the
model, excluded, as in scripts/bench_pipeline.py) and the whole wall time of the command, against the
backbone's time for the same pixel count as non-overlapping 512 px tiles timed around that round, and
the engine's against plain Python's in the same round (medians over the rounds; `summarise`).

    .venv/bin/python scripts/bench_qgis.py                       # qgis_process and plain Python
    .venv/bin/python scripts/bench_qgis.py --desktop             # and the QGIS desktop (needs xvfb-run)
    .venv/bin/python scripts/bench_qgis.py --fixed-cost          # and the fixed cost of a qgis_process run

With ``--fixed-cost`` every round also runs the same command on a 64 x 64 px raster (the fixed cost of a run:
QGIS's start-up, the worker's, loading the model) and a native QGIS algorithm on it, and reports the whole
command less that fixed cost against the backbone (issue 28).
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
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
from bench_common import DTYPES, REPO_ROOT, blobs, describe_machine
from bench_pipeline import tile_time
from qgis_process_runner import QGIS_PROCESS, enable_plugin, qgis_process_env, run_algorithm

ALGORITHM = "treeseg:segmenttrees"
NATIVE = "native:rasterlayerstatistics"
SMALL = 64  # px, the raster whose run is all fixed cost

# Run by `qgis --code`: the algorithm through processing.run on QGIS's main thread, as the Python console
# or a script in the desktop would; writes its wall time and QGIS's own CPU time meanwhile (or the error) and
# leaves at once.
DESKTOP_SCRIPT = textwrap.dedent("""
    import json, os, time
    import processing
    params = json.loads(os.environ["TREESEG_BENCH_PARAMETERS"])
    tick, cpu = time.perf_counter(), time.process_time()
    try:
        processing.run("treeseg:segmenttrees", params)
        outcome = {"wall": time.perf_counter() - tick, "qgis_cpu": time.process_time() - cpu}
    except Exception as exc:
        outcome = {"error": repr(exc)}
    with open(os.environ["TREESEG_BENCH_OUTCOME"], "w") as stream:
        json.dump(outcome, stream)
    os._exit(0)
""")


def engine_seconds(stats_path: Path) -> tuple:
    """The engine's wall and process CPU seconds of one run without start-up (loading the model), from its
    statistics file."""
    stats = json.loads(stats_path.read_text())
    return tuple(stats[key]["total"] - stats[key]["load_model"] for key in ("timings_s", "cpu_s"))


class Ways:
    """The ways of running one Segment Trees job; each returns (engine wall s, engine CPU s, whole wall s)."""

    def __init__(self, folder: Path, parameters: Dict[str, str], precision: str) -> None:
        self.folder = folder
        self.parameters = parameters
        self.precision = precision
        self.desktop_qgis_cpu: List[float] = []  # CPU s of the desktop's own process during each run
        self.small_raster = folder / "small.tif"
        self.env = qgis_process_env(folder / "home", folder / "plugins")
        (folder / "plugins").mkdir()
        (folder / "plugins" / "treeseg").symlink_to(REPO_ROOT)
        enable_plugin("treeseg", self.env)

    def _outputs(self, name: str) -> Dict[str, str]:
        for stale in self.folder.glob(f"{name}.*"):
            stale.unlink()
        return {"OUTPUT": str(self.folder / f"{name}.tif"), "STATS": str(self.folder / f"{name}.json")}

    def plain_python(self) -> tuple:
        """run_segmentation in a fresh `.venv/bin/python` (no QGIS libraries loaded)."""
        outputs = self._outputs("plain")
        p = self.parameters
        code = textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(REPO_ROOT)!r})
            from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation
            run_segmentation(SegmentationConfig(input_path={p['INPUT']!r}, output_path={outputs['OUTPUT']!r},
                stats_path={outputs['STATS']!r}, model={p['WEIGHTS']!r}, device="cpu",
                precision={self.precision!r}), Progress())
        """)
        tick = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return (*engine_seconds(Path(outputs["STATS"])), time.perf_counter() - tick)

    def _timed(self, algorithm: str, parameters: Dict[str, str]) -> float:
        """Wall seconds of ``qgis_process.bin --json run ALGORITHM``; SystemExit with its output if it fails."""
        tick = time.perf_counter()
        done, payload = run_algorithm(algorithm, parameters, self.env)
        wall = time.perf_counter() - tick
        if done.returncode != 0 or payload is None:
            raise SystemExit(f"{algorithm} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return wall

    def qgis_process(self) -> tuple:
        """qgis_process.bin --json run treeseg:segmenttrees (the worker process inside)."""
        outputs = self._outputs("qgis-process")
        wall = self._timed(ALGORITHM, {**self.parameters, **outputs})
        return (*engine_seconds(Path(outputs["STATS"])), wall)

    def qgis_process_small(self) -> tuple:
        """The same qgis_process command on a 64 x 64 px raster: what a run costs whatever its size."""
        outputs = self._outputs("qgis-process-small")
        wall = self._timed(ALGORITHM, {**self.parameters, "INPUT": str(self.small_raster), **outputs})
        return (*engine_seconds(Path(outputs["STATS"])), wall)

    def native_small(self) -> tuple:
        """A native QGIS algorithm on the 64 x 64 px raster (QGIS's own fixed cost); no engine times."""
        return (0.0, 0.0, self._timed(NATIVE, {"INPUT": str(self.small_raster), "BAND": "1"}))

    def desktop(self) -> tuple:
        """`xvfb-run qgis --code`: processing.run in the QGIS desktop, the plugin loaded at start-up."""
        outputs = self._outputs("desktop")
        script = self.folder / "desktop_run.py"
        script.write_text(DESKTOP_SCRIPT)
        outcome_path = self.folder / "desktop.outcome.json"
        env = {**self.env, "TREESEG_BENCH_PARAMETERS": json.dumps({**self.parameters, **outputs}),
               "TREESEG_BENCH_OUTCOME": str(outcome_path)}
        env.pop("QT_QPA_PLATFORM")
        tick = time.perf_counter()
        subprocess.run(["xvfb-run", "-a", "qgis", "--nologo", "--noversioncheck", "--code", str(script)],
                       env=env, check=False, capture_output=True, timeout=900)
        wall = time.perf_counter() - tick
        outcome = json.loads(outcome_path.read_text()) if outcome_path.exists() else {"error": "no outcome"}
        outcome_path.unlink(missing_ok=True)
        if "error" in outcome:
            raise SystemExit(f"QGIS desktop run failed: {outcome['error']}")
        self.desktop_qgis_cpu.append(outcome["qgis_cpu"])
        return (*engine_seconds(Path(outputs["STATS"])), wall)


def _median_ratio(runs: List[tuple], field: int, others: List[tuple], other_field: int) -> float:
    """Median over rounds of ``run[field] / other[other_field]``, round by round."""
    return statistics.median(run[field] / other[other_field] for run, other in zip(runs, others))


def summarise(samples: Dict[str, List[tuple]], backbone: List[tuple]) -> Dict[str, Dict[str, float]]:
    """Print the table: each way's medians and its ratios. A round's ratio is its time against the backbone's
    (same pixels) timed right before and after it, and against plain Python's run of the same round: the
    machine's drift over minutes then cancels out. Wall is what users wait; process CPU (all threads) is
    robust to other load on the machine. Ratios are medians over the rounds."""
    around = [((b[0] + a[0]) / 2, (b[1] + a[1]) / 2) for b, a in zip(backbone, backbone[1:])]
    plain = samples["plain Python"]
    wall, cpu = (statistics.median(b[i] for b in backbone) for i in (0, 1))
    print(f"\nBackbone alone, same pixels as non-overlapping 512 px tiles: **{wall:.1f} s** wall, {cpu:.1f} CPU s "
          f"(medians of {len(backbone)} timings around the rounds).\n")
    print("| way | engine wall s, start-up excluded | ÷ backbone | ÷ plain Python | engine CPU s | ÷ backbone "
          "| ÷ plain Python | whole command wall s | ÷ backbone | every engine wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    report = {}
    for name, runs in samples.items():
        row = {"engine_s": statistics.median(r[0] for r in runs), "engine_cpu_s": statistics.median(r[1] for r in runs),
               "wall_s": statistics.median(r[2] for r in runs),
               "to_backbone": _median_ratio(runs, 0, around, 0), "to_plain": _median_ratio(runs, 0, plain, 0),
               "cpu_to_backbone": _median_ratio(runs, 1, around, 1), "cpu_to_plain": _median_ratio(runs, 1, plain, 1),
               "wall_to_backbone": _median_ratio(runs, 2, around, 0)}
        report[name] = row
        print(f"| {name} | {row['engine_s']:.1f} | **{row['to_backbone']:.2f}x** | **{row['to_plain']:.2f}x** "
              f"| {row['engine_cpu_s']:.1f} | **{row['cpu_to_backbone']:.2f}x** | **{row['cpu_to_plain']:.2f}x** "
              f"| {row['wall_s']:.1f} | {row['wall_to_backbone']:.2f}x | {' '.join(f'{r[0]:.1f}' for r in runs)} |",
              flush=True)
    return report


def summarise_fixed_cost(whole: List[tuple], small: List[tuple], native: List[tuple],
                         backbone: List[tuple]) -> Dict[str, float]:
    """Print the whole qgis_process command less the same command on 64 x 64 px, against the backbone timed
    around the round (medians of round-by-round ratios), and the 64 x 64 px command beside a native
    algorithm's."""
    around = [(b[0] + a[0]) / 2 for b, a in zip(backbone, backbone[1:])]
    less_fixed = [w[2] - s[2] for w, s in zip(whole, small)]
    row = {"small_s": statistics.median(s[2] for s in small), "native_s": statistics.median(n[2] for n in native),
           "less_fixed_s": statistics.median(less_fixed),
           "less_fixed_to_backbone": statistics.median(d / b for d, b in zip(less_fixed, around))}
    print(f"\nFixed cost: qgis_process on {SMALL} x {SMALL} px **{row['small_s']:.2f} s** (every round: "
          f"{' '.join(f'{s[2]:.2f}' for s in small)}), {NATIVE} on the same raster **{row['native_s']:.2f} s** "
          f"({' '.join(f'{n[2]:.2f}' for n in native)}).\n")
    print(f"Whole qgis_process command less the {SMALL} x {SMALL} px command: **{row['less_fixed_s']:.1f} s**, "
          f"**{row['less_fixed_to_backbone']:.2f}x** the backbone (every round: "
          f"{' '.join(f'{d:.1f}' for d in less_fixed)} s).", flush=True)
    return row


def main(argv: List[str] = sys.argv[1:]) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=2299)
    parser.add_argument("--height", type=int, default=2472)
    parser.add_argument("--model", default="vits16")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of all ways (medians reported)")
    parser.add_argument("--rounds", type=int, default=3, help="backbone timing rounds between runs")
    parser.add_argument("--desktop", action="store_true", help="also the QGIS desktop under xvfb-run")
    parser.add_argument("--fixed-cost", action="store_true",
                        help=f"also qgis_process and {NATIVE} on {SMALL} x {SMALL} px in every round")
    args = parser.parse_args(argv)
    if args.desktop and not shutil.which("xvfb-run"):
        raise SystemExit("--desktop needs xvfb-run: apt-get install xvfb xauth")

    from checkpoint_factory import make_state_dict, write_meta_pth
    from data_factory import make_raster

    from treeseg_plugin.dinov3 import load_backbone
    from treeseg_plugin.engine import SegmentationConfig
    from treeseg_plugin.settings import DEVICES, PRECISIONS

    batch = SegmentationConfig(input_path="", output_path="").batch_size
    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-qgis-"))
    weights = write_meta_pth(folder / f"{args.model}.pth", make_state_dict(args.model, seed=0))
    raster = make_raster(folder / "ortho.tif", args.width, args.height, data=blobs(args.height, args.width),
                         tiled=True)
    parameters = {"INPUT": str(raster), "WEIGHTS": str(weights), "DEVICE": str(DEVICES.index("cpu")),
                  "PRECISION": str(PRECISIONS.index(args.precision))}
    ways = Ways(folder, parameters, args.precision)
    make_raster(ways.small_raster, SMALL, SMALL, data=blobs(SMALL, SMALL))
    chosen: Dict[str, Callable[[], tuple]] = {"plain Python": ways.plain_python, "qgis_process": ways.qgis_process}
    if args.desktop:
        chosen["QGIS desktop (Xvfb)"] = ways.desktop

    print(f"# Segment Trees inside QGIS, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}; torch threads {torch.get_num_threads()} (default everywhere)")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`; {QGIS_PROCESS}")
    print(f"- input: {args.width} x {args.height} px RGB Byte GeoTIFF, synthetic 'blobs'; model {args.model}, "
          f"random weights; {args.precision}; default tiling; batch {batch}; {args.repeats} rounds")
    backbone = load_backbone(weights, dtype=DTYPES[args.precision])
    baseline = [tile_time(backbone, 512, batch, args.rounds)]  # (wall, CPU) s per tile
    fixed: Dict[str, Callable[[], tuple]] = {"small": ways.qgis_process_small, "native": ways.native_small} \
        if args.fixed_cost else {}
    samples: Dict[str, List[tuple]] = {name: [] for name in [*chosen, *fixed]}
    for _ in range(args.repeats):
        for name, way in [*chosen.items(), *fixed.items()]:
            samples[name].append(way())
        baseline.append(tile_time(backbone, 512, batch, args.rounds))
    same_pixels = [(args.width * args.height / 512**2 * wall, args.width * args.height / 512**2 * cpu)
                   for wall, cpu in baseline]
    report = summarise({name: samples[name] for name in chosen}, same_pixels)
    if fixed:
        report["fixed cost"] = summarise_fixed_cost(samples["qgis_process"], samples["small"], samples["native"],
                                                    same_pixels)
    if ways.desktop_qgis_cpu:
        print(f"\nThe QGIS desktop's own process during processing.run: "
              f"{' '.join(f'{cpu:.2f}' for cpu in ways.desktop_qgis_cpu)} CPU s (the worker did the work).")
    shutil.rmtree(folder, ignore_errors=True)
    return report


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
