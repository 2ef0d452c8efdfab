"""Peak memory of whole Segment Trees runs against raster size (target 4 of docs/benchmarks.md).

Each run is a fresh Python process (so its peak RSS, VmHWM, is its own) on a synthetic RGB GeoTIFF of the
given size (bench_common.blobs: tests/data_factory's "blobs" pattern drawn fast, written by make_raster,
tiled), with the same random-weight model for every size.
A thread in the child samples its RSS every 20 ms, so the peak per stage is shown too. Target: the
peak on 8192 x 8192 px is at most 1.5x the peak on 2048 x 2048 px.

    .venv/bin/python scripts/bench_memory.py                              # ViT-S/16, 2048 and 8192 px
    .venv/bin/python scripts/bench_memory.py --model tiny --sizes 2048 8192 20000 --mosaic

`--mosaic` builds rasters larger than 8192 px as a VRT mosaic of one 4096 px GeoTIFF (no 1.2 GB file to
write; every pixel is still read, encoded, clustered and labelled).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

from bench_common import blobs, describe_machine

MOSAIC_TILE = 4096


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_input(folder: Path, size: int, mosaic: bool) -> Path:
    from data_factory import make_raster
    from osgeo import gdal

    if not mosaic or size <= 8192:
        return make_raster(folder / f"ortho-{size}.tif", size, size, data=blobs(size, size), tiled=True)
    tile = folder / f"tile-{MOSAIC_TILE}.tif"
    if not tile.exists():
        make_raster(tile, MOSAIC_TILE, MOSAIC_TILE, data=blobs(MOSAIC_TILE, MOSAIC_TILE), tiled=True)
    dataset = gdal.Open(str(tile))
    gt, srs = dataset.GetGeoTransform(), dataset.GetProjection()
    dataset = None
    n = -(-size // MOSAIC_TILE)
    # A VRT whose sources are the same file placed on an n x n grid, clipped to size x size.
    vrt = folder / f"mosaic-{size}.vrt"
    lines = [f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}">',
             f"  <GeoTransform>{gt[0]}, {gt[1]}, 0, {gt[3]}, 0, {gt[5]}</GeoTransform>"]
    if srs:
        lines.append(f"  <SRS>{srs.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</SRS>")
    for band in (1, 2, 3):
        lines.append(f'  <VRTRasterBand dataType="Byte" band="{band}">')
        for i in range(n):
            for j in range(n):
                w = min(MOSAIC_TILE, size - j * MOSAIC_TILE)
                h = min(MOSAIC_TILE, size - i * MOSAIC_TILE)
                lines += ["    <SimpleSource>",
                          f'      <SourceFilename relativeToVRT="1">{tile.name}</SourceFilename>',
                          f"      <SourceBand>{band}</SourceBand>",
                          f'      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>',
                          f'      <DstRect xOff="{j * MOSAIC_TILE}" yOff="{i * MOSAIC_TILE}" xSize="{w}" '
                          f'ySize="{h}"/>',
                          "    </SimpleSource>"]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    vrt.write_text("\n".join(lines))
    return vrt


def child(spec: Dict) -> Dict:
    """One run in this process; returns its peak RSS overall and per stage (sampled every 20 ms)."""
    import torch

    from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation

    torch.set_num_threads(spec["threads"])
    stages: Dict[str, float] = {}
    current = ["start"]
    done = threading.Event()

    def sample() -> None:
        stages[current[0]] = max(stages.get(current[0], 0.0), rss_mib())

    def sampler() -> None:
        while not done.wait(0.02):
            sample()

    class Stages(Progress):
        def stage(self, name: str) -> None:
            sample()
            current[0] = name

    start_rss = rss_mib()
    config = SegmentationConfig(input_path=spec["input"], output_path=spec["output"], model=spec["weights"],
                                device="cpu", precision=spec["precision"], batch_size=spec["batch"])
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    tick = time.perf_counter()
    try:
        result = run_segmentation(config, Stages())
    finally:
        done.set()
        thread.join()
    return {"size": spec["size"], "peak_rss_mib": peak_rss_mib(), "rss_before_mib": start_rss,
            "stage_rss_mib": stages, "seconds": time.perf_counter() - tick, "tiles": result.stats["tiles"]["total"],
            "timings_s": result.stats["timings_s"], "chosen_k": result.chosen_k}


def main(argv: List[str] = sys.argv[1:]) -> List[Dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--model", default="vits16")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mosaic", action="store_true", help="sizes above 8192 px as a VRT mosaic")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return []

    from checkpoint_factory import make_state_dict, write_meta_pth

    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-memory-"))
    weights = write_meta_pth(folder / f"{args.model}.pth", make_state_dict(args.model, seed=0))
    print(f"# Memory benchmark, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}; {args.threads} threads")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`")
    print(f"- model {args.model} (random weights), {args.precision}, batch {args.batch}, default tiling; one "
          "fresh process per run\n")
    print("| raster | input | tiles | run s | peak RSS MiB | RSS after start MiB | peak RSS per stage MiB |")
    print("|---|---|---|---|---|---|---|")
    results = []
    for size in args.sizes:
        raster = make_input(folder, size, args.mosaic)
        spec = {"size": size, "input": str(raster), "output": str(folder / f"labels-{size}.tif"),
                "weights": str(weights), "precision": args.precision, "batch": args.batch, "threads": args.threads}
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            print(done.stderr[-3000:])
            raise SystemExit(f"run on {size} px failed")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(row)
        stages = ", ".join(f"{k} {v:.0f}" for k, v in row["stage_rss_mib"].items())
        print(f"| {size} x {size} | {raster.suffix[1:]} | {row['tiles']} | {row['seconds']:.0f} "
              f"| {row['peak_rss_mib']:.0f} | {row['rss_before_mib']:.0f} | {stages} |", flush=True)
        for path in folder.glob(f"labels-{size}*"):
            path.unlink()
        if raster.suffix == ".tif":
            raster.unlink()
    if len(results) > 1:
        first = results[0]
        ratios = [f"peak {r['size']} px / {first['size']} px: {r['peak_rss_mib'] / first['peak_rss_mib']:.2f}x"
                  for r in results[1:]]
        print("\n" + "; ".join(ratios))
    return results


if __name__ == "__main__":
    main()
