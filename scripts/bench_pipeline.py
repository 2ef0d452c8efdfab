"""Whole Segment Trees runs against the backbone's own time (target 3 of docs/benchmarks.md), and the tile
size / overlap choice.

Target 3: a run on a 2299 x 2472 px orthophoto (synthetic "blobs": bench_common.blobs + make_raster) with ViT-S/16
(random weights, tests/checkpoint_factory) costs at most 1.3x the backbone's time for the same pixel count
as non-overlapping 512x512 tiles, start-up (loading the model) excluded. The backbone time is measured
in the same process right before and after each run (batch of `--batch` random 512x512 tiles), so machine
noise hits both alike; the ratio is also given in process CPU time.

    .venv/bin/python scripts/bench_pipeline.py                           # default tiling, fp32 and bf16
    .venv/bin/python scripts/bench_pipeline.py --tiles 512:64 384:32 --precision bf16
    .venv/bin/python scripts/bench_pipeline.py --sweep                   # tile sizes: model time per tile

`--sweep` times the backbone alone on tiles of 256..768 px and predicts, for each tile size and overlap,
the encoding cost of the raster from the real tile plan (engine/encode/tiling.py): the measured basis for the
TILE_SIZE / OVERLAP defaults.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from bench_common import DTYPES, blobs, describe_machine, interleaved


def tile_time(backbone, size: int, batch: int, rounds: int) -> Tuple[float, float]:
    """(wall, CPU) seconds per tile of size x size px, batch of `batch`, median of `rounds`."""
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(size))
    samples = interleaved({"f": lambda: backbone.forward_features(x)}, rounds, warmup=1)["f"]
    return samples.wall_median / batch, samples.cpu_median / batch


def sweep(backbone, width: int, height: int, batch: int, rounds: int, sizes: List[int]) -> None:
    from treeseg_plugin.engine.encode.tiling import plan_tiles

    times = {size: tile_time(backbone, size, batch, rounds) for size in sizes}
    base_cpu = width * height / 512**2 * times[512][1]
    print(f"\nBackbone per tile (batch {batch}) and predicted encoding of {width} x {height} px, relative to "
          "the same pixels as non-overlapping 512 px tiles:\n")
    print("| tile | overlap | tiles | s/tile (wall) | CPU s/tile | CPU s per Mpx | predicted encode / 512-px backbone "
          "(CPU time) |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        wall, cpu = times[size]
        for overlap in (0, 16, 32, 64, 96):
            if 2 * overlap >= size:
                continue
            tiles = plan_tiles(height, width, size, overlap, 16).tiles
            # The last row and column of tiles are shorter: counted by their share of a full tile's pixels.
            full_tiles = sum(t.row.length * t.col.length for t in tiles) / size**2
            print(f"| {size} | {overlap} | {len(tiles)} | {wall:.3f} | {cpu:.3f} | {cpu / (size * size / 1e6):.3f} "
                  f"| {full_tiles * cpu / base_cpu:.3f} |")


class Recorder:
    """Process CPU time of each step of the engine's runs (wraps pipeline functions; bench only)."""

    STEPS = ("load_model", "prepare", "model", "fit", "write")

    def __init__(self) -> None:
        from treeseg_plugin.engine.encode.batcher import TileBatcher
        from treeseg_plugin.engine.runs import segmentation as pipeline
        self.cpu: Dict[str, float] = dict.fromkeys(self.STEPS, 0.0)

        def timing(step: str, function):
            def timed(*args, **kwargs):
                start = time.process_time()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.cpu[step] += time.process_time() - start

            return timed

        pipeline.load_model = timing("load_model", pipeline.load_model)
        pipeline._fit = timing("fit", pipeline._fit)
        pipeline._write_labels = timing("write", pipeline._write_labels)
        TileBatcher._prepare = timing("prepare", TileBatcher._prepare)
        TileBatcher._encode = timing("model", TileBatcher._encode)

    def reset(self) -> None:
        self.cpu = dict.fromkeys(self.STEPS, 0.0)


def main(argv: List[str] = sys.argv[1:]) -> List[Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=2299)
    parser.add_argument("--height", type=int, default=2472)
    parser.add_argument("--model", default="vits16")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--tiles", nargs="+", default=None, help="tile:overlap pairs (default: the config's)")
    parser.add_argument("--batch", type=int, default=None, help="default: the config's batch size")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=3, help="backbone timing rounds between runs")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (medians reported)")
    parser.add_argument("--sweep", action="store_true", help="time tile sizes 256..768 (no full runs)")
    parser.add_argument("--sweep-sizes", type=int, nargs="+", default=[256, 320, 384, 448, 512, 640, 768])
    args = parser.parse_args(argv)

    from checkpoint_factory import make_state_dict, write_meta_pth
    from data_factory import make_raster

    from treeseg_plugin.dinov3 import load_backbone
    from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation

    torch.set_num_threads(args.threads)
    defaults = SegmentationConfig(input_path="", output_path="")
    batch = args.batch or defaults.batch_size
    tiles = [tuple(int(v) for v in t.split(":")) for t in args.tiles] if args.tiles else [
        (defaults.tile_size, defaults.overlap)]
    folder = Path(tempfile.mkdtemp(prefix="treeseg-bench-pipeline-"))
    weights = write_meta_pth(folder / f"{args.model}.pth", make_state_dict(args.model, seed=0))
    print(f"# Pipeline benchmark, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}; {args.threads} threads")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`")
    tick = time.perf_counter()
    raster = make_raster(folder / "ortho.tif", args.width, args.height, data=blobs(args.height, args.width),
                         tiled=True)
    print(f"- input: {args.width} x {args.height} px RGB Byte GeoTIFF, tiled, synthetic 'blobs' (bench_common) "
          f"(written in {time.perf_counter() - tick:.1f} s); model {args.model}, random weights; batch {batch}")
    results = []
    recorder = Recorder() if not args.sweep else None
    header = False
    for precision in args.precision:
        backbone = load_backbone(weights, dtype=DTYPES[precision])
        if args.sweep:
            print(f"\n## {precision}")
            sweep(backbone, args.width, args.height, batch, args.rounds, args.sweep_sizes)
            continue
        pixels = args.width * args.height
        for tile, overlap in tiles:
            runs = []
            baseline = [tile_time(backbone, 512, batch, args.rounds)]
            for _ in range(args.repeats):
                recorder.reset()
                config = SegmentationConfig(input_path=str(raster), output_path=str(folder / "labels.tif"),
                                            model=str(weights), device="cpu", precision=precision,
                                            tile_size=tile, overlap=overlap, batch_size=batch)
                cpu = time.process_time()
                result = run_segmentation(config, Progress())
                cpu = time.process_time() - cpu
                baseline.append(tile_time(backbone, 512, batch, args.rounds))
                timings = result.stats["timings_s"]
                runs.append({"wall": timings["total"] - timings["load_model"],
                             "cpu": cpu - recorder.cpu["load_model"], **recorder.cpu,
                             "tiles": result.stats["tiles"]["total"]})
            med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            bb_wall = pixels / 512**2 * statistics.median(b[0] for b in baseline)
            bb_cpu = pixels / 512**2 * statistics.median(b[1] for b in baseline)
            other = med["cpu"] - med["model"]
            row = {"precision": precision, "tile": tile, "overlap": overlap, "tiles": int(med["tiles"]),
                   "run_s": med["wall"], "backbone_s": bb_wall, "ratio": med["wall"] / bb_wall,
                   "run_cpu_s": med["cpu"], "backbone_cpu_s": bb_cpu, "cpu_ratio": med["cpu"] / bb_cpu,
                   "model_cpu_s": med["model"], "prepare_cpu_s": med["prepare"], "fit_cpu_s": med["fit"],
                   "write_cpu_s": med["write"], "other_cpu_s": other - med["prepare"] - med["fit"] - med["write"],
                   "load_cpu_s": med["load_model"], "repeats": len(runs)}
            results.append(row)
            if not header:
                print("\nMedians of the runs; CPU = process CPU seconds (all threads), robust to other load.\n")
                print("| precision | tile / overlap | tiles | run CPU s (no start-up) | backbone CPU s, same px as "
                      "512-px tiles | **ratio (CPU)** | model CPU s in run (÷ backbone) | reading + preparing "
                      "| k-means K=2..10 | labels + writing | rest | run wall s / backbone wall s (ratio) "
                      "| start-up CPU s (excluded) |")
                print("|" + "---|" * 13)
                header = True
            r = row
            print(f"| {precision} | {tile} / {overlap} | {r['tiles']} | {r['run_cpu_s']:.1f} | {bb_cpu:.1f} "
                  f"| **{r['cpu_ratio']:.2f}x** | {r['model_cpu_s']:.1f} ({r['model_cpu_s'] / bb_cpu:.2f}x) "
                  f"| {r['prepare_cpu_s']:.1f} | {r['fit_cpu_s']:.1f} | {r['write_cpu_s']:.1f} "
                  f"| {r['other_cpu_s']:.1f} | {r['run_s']:.1f} / {bb_wall:.1f} ({r['ratio']:.2f}x) "
                  f"| {r['load_cpu_s']:.1f} |", flush=True)
    return results


if __name__ == "__main__":
    main()
