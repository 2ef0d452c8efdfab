"""Batch throughput (docs/benchmarks.md, "Many rasters"): the batch command in this process and on a local
Dask cluster of 1 and 2 worker processes, on the same folder of synthetic orthophotos.

Each run is the command a user types (``python -m treeseg_plugin FOLDER -o OUT --cluster-model M``), with
one cluster model fitted beforehand so that only the labelling, which is what scales out, is timed. The
fit is timed once on its own. Random-weight ViT-S/16 (tests/checkpoint_factory), fp32.

    .venv/bin/python scripts/bench_batch.py --rasters 6 --size 1024
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess  # nosec B404
import sys
import tempfile
import time
from pathlib import Path
from typing import List

from bench_common import REPO_ROOT, blobs, describe_machine


def command(folder: Path, out: Path, weights: Path, *extra: str) -> float:
    """Wall seconds of one batch command."""
    tick = time.perf_counter()
    subprocess.run([sys.executable, "-m", "treeseg_plugin", str(folder), "-o", str(out), "--model", str(weights),  # nosec B603
                    "--precision", "fp32", *extra], cwd=REPO_ROOT, check=True, env={**os.environ, "PYTHONPATH": ""},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - tick


def main(argv: List[str] = sys.argv[1:]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rasters", type=int, default=6)
    parser.add_argument("--size", type=int, default=1024, help="side of each square raster, px")
    parser.add_argument("--model", default="vits16")
    args = parser.parse_args(argv)

    from checkpoint_factory import make_state_dict, write_meta_pth
    from data_factory import make_raster

    work = Path(tempfile.mkdtemp(prefix="treeseg-bench-batch-"))
    weights = write_meta_pth(work / f"{args.model}.pth", make_state_dict(args.model, seed=0))
    folder = work / "tiles"
    folder.mkdir()
    for i in range(args.rasters):
        make_raster(folder / f"tile_{i}.tif", args.size, args.size, data=blobs(args.size, args.size, seed=i))
    megapixels = args.rasters * args.size**2 / 1e6
    print(f"# Batch benchmark, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`")
    print(f"- input: {args.rasters} rasters of {args.size} x {args.size} px ({megapixels:.1f} Mpx), synthetic "
          f"'blobs'; {args.model}, random weights, fp32, default tiling\n")
    fit = command(folder, work / "fit", weights)
    model = work / "fit" / "cluster-model.tscm"
    print(f"Fit + label in this process (the whole command): {fit:.1f} s\n")
    print("| where | wall s (labelling only) | Mpx/s | vs. this process |")
    print("|---|---|---|---|")
    base = None
    for name, extra in (("this process", []), ("Dask, 1 worker", ["--workers", "1"]),
                        ("Dask, 2 workers", ["--workers", "2"])):
        seconds = command(folder, work / name.replace(" ", "_").replace(",", ""), weights,
                          "--cluster-model", str(model), *extra)
        base = base or seconds
        print(f"| {name} | {seconds:.1f} | {megapixels / seconds:.2f} | {base / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
