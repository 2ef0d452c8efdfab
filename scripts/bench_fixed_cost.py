"""The fixed cost of one Segment Trees run through ``qgis_process.bin`` (issue 28; docs/benchmarks.md,
"The fixed cost per qgis_process run"): what a run on a tiny raster pays besides the engine's work.

Per round (``--repeats``, medians reported), in turn, on a ``--size`` px synthetic raster:

* ``qgis_process.bin run treeseg:segmenttrees`` (random-weight ``--model`` in Meta's .pth, fp32): the whole
  command's wall time, and from its statistics file the engine's model loading and the rest of its work;
* ``qgis_process.bin run native:rasterlayerstatistics`` on the same raster, with the TreeSeg plugin enabled
  and in a profile without it: QGIS's own start-up with a native algorithm, and the plugin's load (the
  difference).

With ``--trace N`` (needs strace) N more Segment Trees runs are timed under ``strace -f`` (execve, exit_group
and write only, filtered in the kernel by seccomp-bpf), which splits the command into: QGIS's start-up and the
algorithm's checks until the worker is launched (the interpreter check included), the worker's interpreter
start (through any launcher script such as a pyenv shim), its Python start until it reads the job, its
imports until the run's first stage, the engine's run (model loading included), the worker's exit after its
result, and qgis_process's exit (medians over the N runs). strace slows a traced run; its phases are shares of
that run.

    .venv/bin/python scripts/bench_fixed_cost.py --repeats 5 --trace 5
    .venv/bin/python scripts/bench_fixed_cost.py --model tiny --repeats 1     # seconds (the smoke test)
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
import time
from pathlib import Path
from typing import Dict, List, Optional

from bench_common import REPO_ROOT, blobs, describe_machine, load_average, meta_checkpoint, write_results
from bench_qgis import ALGORITHM
from qgis_process_runner import QGIS_PROCESS, enable_plugin, qgis_process_env, run

NATIVE = "native:rasterlayerstatistics"
WORKER = "treeseg_plugin.worker.process"
PROBE = "import sys; print(sys.version_info"


def timed_command(args: List[str], env: Dict[str, str]) -> float:
    tick = time.perf_counter()
    done = run(args, env)
    wall = time.perf_counter() - tick
    if done.returncode != 0:
        raise SystemExit(f"qgis_process {args[:3]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-2000:]}")
    return wall


def segment_args(parameters: Dict[str, str]) -> List[str]:
    return ["--json", "run", ALGORITHM, "--"] + [f"{name}={value}" for name, value in parameters.items()]


def one_round(envs: Dict[str, Dict[str, str]], raster: Path, parameters: Dict[str, str]) -> Dict[str, float]:
    """Segment Trees, then the native algorithm with and without the plugin; seconds and load averages."""
    before = load_average()
    whole = timed_command(segment_args(parameters), envs["plugin"])
    timings = json.loads(Path(parameters["STATS"]).read_text())["timings_s"]
    native = [NATIVE, "--", f"INPUT={raster}", "BAND=1"]
    return {"whole_s": whole, "load_model_s": timings["load_model"],
            "engine_work_s": timings["total"] - timings["load_model"],
            "native_with_plugin_s": timed_command(["--json", "run", *native], envs["plugin"]),
            "native_without_plugin_s": timed_command(["--json", "run", *native], envs["bare"]),
            "load_before": before, "load_after": load_average()}


def _events(trace: Path) -> List[tuple]:
    """(pid, seconds, rest of the line) of every line strace wrote with ``-ttt``."""
    found = []
    for line in trace.read_text(errors="replace").splitlines():
        pid, stamp, rest = [*line.split(None, 2), "", ""][:3]
        try:
            found.append((int(pid), float(stamp), rest))
        except ValueError:
            continue
    return found


def _first(events: List[tuple], pid: Optional[int], *needles: str, last: bool = False) -> float:
    hits = [t for p, t, rest in events if (pid is None or p == pid) and all(n in rest for n in needles)]
    if not hits:
        raise SystemExit(f"strace output has no {needles} for pid {pid}")
    return hits[-1] if last else hits[0]


def phases(trace: Path) -> Dict[str, float]:
    """The traced run's phases, in seconds (see the module docstring), from strace's timestamps."""
    events = _events(trace)
    root, start = events[0][0], events[0][1]
    worker = next(p for p, _, rest in events if rest.startswith("execve(") and WORKER in rest)
    worker_exec = _first(events, worker, "execve(", WORKER)
    python_exec = _first(events, worker, "execve(", WORKER, ") = 0", last=True)
    started = _first(events, worker, "write(", '\\"event\\": \\"started\\"')
    stage = _first(events, worker, "write(", '\\"event\\": \\"stage\\"')
    result = _first(events, worker, "write(", '\\"event\\": \\"result\\"')
    worker_exit = _first(events, worker, "exit_group(")
    end = _first(events, root, "+++ exited", last=True)
    probes = [t for p, t, rest in events if rest.startswith("execve(") and PROBE in rest]
    return {"QGIS start-up and the algorithm's checks": worker_exec - start,
            "of which the interpreter check": (worker_exec - probes[0]) if probes else 0.0,
            "worker: interpreter launch (launcher scripts)": python_exec - worker_exec,
            "worker: Python start until the job is read": started - python_exec,
            "worker: imports until the first stage": stage - started,
            "worker: engine run (model loading included)": result - stage,
            "worker: exit after the result": worker_exit - result,
            "qgis_process: end after the worker": end - worker_exit,
            "whole traced command": end - start}


def traced_run(folder: Path, env: Dict[str, str], parameters: Dict[str, str]) -> Dict[str, float]:
    trace = folder / "strace.txt"
    command = ["strace", "-f", "--seccomp-bpf", "-ttt", "-s", "64", "-e", "trace=execve,exit_group,write",
               "-o", str(trace), QGIS_PROCESS, *segment_args(parameters)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"traced run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return phases(trace)


def summarise(rounds: List[Dict[str, float]], traced: Optional[Dict[str, float]]) -> Dict[str, float]:
    """Print the medians, the fixed cost's parts and the traced run's phases; return the medians."""
    keys = ("whole_s", "load_model_s", "engine_work_s", "native_with_plugin_s", "native_without_plugin_s")
    medians = {key: statistics.median(r[key] for r in rounds) for key in keys}
    medians["fixed_s"] = medians["whole_s"] - medians["engine_work_s"]
    medians["plugin_load_s"] = medians["native_with_plugin_s"] - medians["native_without_plugin_s"]
    print("| round | Segment Trees whole s | model loading s | engine's other work s | native algorithm s, "
          "plugin enabled | native algorithm s, no plugin | load average before -> after |")
    print("|---|---|---|---|---|---|---|")
    for index, r in enumerate(rounds, 1):
        print(f"| {index} | {r['whole_s']:.2f} | {r['load_model_s']:.2f} | {r['engine_work_s']:.2f} | "
              f"{r['native_with_plugin_s']:.2f} | {r['native_without_plugin_s']:.2f} | "
              f"{r['load_before']} -> {r['load_after']} |")
    print(f"| **median** | **{medians['whole_s']:.2f}** | {medians['load_model_s']:.2f} | "
          f"{medians['engine_work_s']:.2f} | **{medians['native_with_plugin_s']:.2f}** | "
          f"{medians['native_without_plugin_s']:.2f} | |\n")
    print(f"Fixed cost (whole command less the engine's work after loading the model): **{medians['fixed_s']:.2f} s**"
          f"; a native algorithm's whole command {medians['native_with_plugin_s']:.2f} s; the plugin's load "
          f"{medians['plugin_load_s']:+.2f} s.\n")
    if traced:
        print("| phase of a traced run (medians) | s | share |\n|---|---|---|")
        for name, seconds in traced.items():
            print(f"| {name} | {seconds:.2f} | {100 * seconds / traced['whole traced command']:.0f} % |")
    return medians


def main(argv: List[str] = sys.argv[1:]) -> Dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="raster width and height, px")
    parser.add_argument("--model", default="vits16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trace", type=int, default=0, metavar="N",
                        help="also N runs under strace, split into phases (medians)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.trace and not shutil.which("strace"):
        raise SystemExit("--trace needs strace: apt-get install strace")

    from data_factory import make_raster

    from treeseg_plugin.settings import DEVICES, PRECISIONS

    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-fixed-"))
    (folder / "plugins").mkdir()
    (folder / "plugins" / "treeseg").symlink_to(REPO_ROOT)
    envs = {"plugin": qgis_process_env(folder / "home", folder / "plugins"),
            "bare": qgis_process_env(folder / "home-bare", folder / "plugins")}
    enable_plugin("treeseg", envs["plugin"])
    raster = make_raster(folder / "tiny.tif", args.size, args.size, data=blobs(args.size, args.size))
    parameters = {"INPUT": str(raster), "WEIGHTS": str(meta_checkpoint(args.model, folder)),
                  "DEVICE": str(DEVICES.index("cpu")), "PRECISION": str(PRECISIONS.index("fp32")),
                  "OUTPUT": str(folder / "labels.tif"), "STATS": str(folder / "stats.json")}
    print(f"# The fixed cost of a qgis_process run, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`; {QGIS_PROCESS}")
    print(f"- input: {args.size} x {args.size} px RGB Byte GeoTIFF, synthetic 'blobs'; model {args.model}, random "
          f"weights, Meta .pth; fp32; {args.repeats} round(s); native algorithm {NATIVE}\n")
    rounds = [one_round(envs, raster, parameters) for _ in range(args.repeats)]
    traces = [traced_run(folder, envs["plugin"], parameters) for _ in range(args.trace)]
    traced = {name: statistics.median(t[name] for t in traces) for name in traces[0]} if traces else None
    medians = summarise(rounds, traced)
    if args.json:
        write_results(args.json, args, {"rounds": rounds, "medians": medians, "traced": traced})
    shutil.rmtree(folder, ignore_errors=True)
    return {"medians": medians, "traced": traced}


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
