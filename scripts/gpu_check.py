"""One-shot GPU check (target 6 of docs/benchmarks.md): throughput, precision and OOM back-off on a CUDA GPU.

Prepared for an H100/H200-class machine: one run, well under 10 minutes, no internet (random weights
from tests/checkpoint_factory). It reports, on the first CUDA device:

1. the GPU's dense matmul rate (8192^3) in fp32 (TF32 off, as the backbone runs), bf16 and fp16, and the
   rate of the model's own linear-layer GEMM shapes;
2. ViT-S/16 and ViT-L/16 throughput at 1024x1024 in fp32, bf16 and fp16 (images/s, analytic GFLOP/s,
   fraction of the bf16 matmul rate, peak memory), with the patch-feature cosine against fp32;
3. CHMv2 (one ViT-L/16 forward + DPT head + mixlog, random weights) on one tile of each size (512, Canopy
   Height's default, and 1024) in fp32, bf16 and fp16: seconds per tile, peak memory, and the largest height
   difference against fp32 (metres);
4. that the engine's out-of-memory back-off works: a real Segment Trees run on the GPU whose backbone
   raises torch.cuda.OutOfMemoryError for batches above 1 must halve the batch 4 -> 2 -> 1 and finish
   with the labels of a batch-1 run.

    python scripts/gpu_check.py [--json gpu.json]     # on the GPU machine
    python scripts/gpu_check.py --smoke               # tiny sizes; runs on the CPU too (tested)
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
from bench_common import (
    DTYPES,
    VIT_SHAPES,
    describe_machine,
    linear_gemms,
    meta_checkpoint,
    shaped_matmuls,
    square_matmul,
    sync,
    tokens,
    vit_gflop,
)

FULL = {"models": {"vits16": 16, "vitl16": 4}, "size": 1024, "iterations": 10, "matmul": 8192, "chmv2_tiny": False,
        "chmv2_sizes": (512, 1024)}
SMOKE = {"models": {"tiny": 4}, "size": 64, "iterations": 2, "matmul": 256, "chmv2_tiny": True,
         "chmv2_sizes": (32, 64)}


def log(message: str) -> None:
    print(message, flush=True)


def rate(function, gflop: float, device: torch.device, iterations: int) -> float:
    """GFLOP/s of `function`, best of `iterations` after a warm-up."""
    function()
    sync(device)
    best = float("inf")
    for _ in range(iterations):
        sync(device)
        start = time.perf_counter()
        function()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return gflop / best


def matmul_rates(device: torch.device, precisions: List[str], n: int, iterations: int) -> Dict[str, float]:
    rates = {}
    for precision in precisions:
        call, gflop = square_matmul(DTYPES[precision], device, n)
        rates[precision] = rate(call, gflop, device, iterations)
        log(f"  matmul {n}^3 {precision}: {rates[precision]:.5g} GFLOP/s")
    return rates


def throughput(model: str, batch: int, size: int, device: torch.device, precisions: List[str], iterations: int,
               bf16_peak: float, folder: Path) -> List[Dict[str, Any]]:
    from treeseg_plugin.dinov3 import load_backbone

    shape = VIT_SHAPES[model]
    linear_gf, attention_gf = vit_gflop(shape, size)
    gemm_call, gemm_gf = shaped_matmuls(linear_gemms(shape, batch * tokens(shape, size)), torch.bfloat16, device)
    gemm_rate = rate(gemm_call, gemm_gf, device, iterations)
    del gemm_call
    fp32 = load_backbone(meta_checkpoint(model, folder), device=device)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    reference = fp32.forward_features(x)["x_norm_patchtokens"].float()
    rows = []
    for precision in precisions:
        backbone = fp32 if precision == "fp32" else copy.deepcopy(fp32).to(DTYPES[precision])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def forward(bb=backbone) -> torch.Tensor:
            return bb.forward_features(x)["x_norm_patchtokens"]

        gflops = rate(forward, (linear_gf + attention_gf) * batch, device, iterations)
        patches = forward().float()
        cos = torch.nn.functional.cosine_similarity(patches, reference, dim=-1)
        row = {"model": model, "precision": precision, "batch": batch, "size": size,
               "images_per_s": gflops / (linear_gf + attention_gf), "gflops": gflops,
               "fraction_of_bf16_matmul": gflops / bf16_peak, "fraction_of_bf16_model_gemms": gflops / gemm_rate,
               "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
               "finite": bool(torch.isfinite(patches).all())}
        if device.type == "cuda":
            row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        rows.append(row)
        log(f"  {model} {precision} batch {batch} at {size}px: {row['images_per_s']:.1f} images/s, "
            f"{gflops:.5g} GFLOP/s = {row['fraction_of_bf16_matmul']:.0%} of the bf16 matmul rate "
            f"({row['fraction_of_bf16_model_gemms']:.0%} of the bf16 model-GEMM rate), cosine vs fp32 min "
            f"{row['cosine_min']:.4f} mean {row['cosine_mean']:.5f}"
            + (f", peak memory {row['peak_memory_gib']:.2f} GiB" if "peak_memory_gib" in row else ""))
        if backbone is not fp32:
            del backbone
    del fp32
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def chmv2_check(tiny: bool, sizes: List[int], device: torch.device, precisions: List[str], iterations: int) \
        -> List[Dict[str, Any]]:
    """CHMv2 seconds per tile, peak memory and max height difference against fp32, per tile size and precision."""
    from bench_chmv2 import build

    rows: List[Dict[str, Any]] = []
    references: Dict[int, torch.Tensor] = {}
    for precision in precisions:
        torch.manual_seed(0)  # the same random weights in every precision
        model = build(device, DTYPES[precision], tiny=tiny)
        for size in sizes:
            x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size)).to(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            heights = model(x)
            sync(device)
            started = time.perf_counter()
            for _ in range(iterations):
                model(x)
            sync(device)
            seconds = (time.perf_counter() - started) / iterations
            reference = references.setdefault(size, heights)
            row = {"size": size, "precision": precision, "s_per_tile": seconds,
                   "max_abs_diff_m": float((heights - reference).abs().max()),
                   "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}
            log(f"CHMv2 {'tiny' if tiny else 'ViT-L/16'} 1 x {size}^2 {precision}: {seconds:.3f} s/tile, "
                f"max |h - h_fp32| {row['max_abs_diff_m']:.3f} m"
                + (f", peak {row['peak_gib']:.1f} GiB" if row["peak_gib"] is not None else ""))
            rows.append(row)
        del model
    return rows


def oom_backoff(device: torch.device, folder: Path) -> Dict[str, Any]:
    """A real engine run on `device` whose backbone raises CUDA's OOM error for batches above 1."""
    from data_factory import make_raster
    from osgeo import gdal

    from treeseg_plugin.engine import Progress, SegmentationConfig, run_segmentation
    from treeseg_plugin.engine.runs import segmentation as pipeline
    class Log(Progress):
        def __init__(self) -> None:
            self.warnings: List[str] = []

        def warning(self, msg: str) -> None:
            self.warnings.append(msg)

    class OomAbove:
        def __init__(self, backbone, limit: int) -> None:
            self._backbone, self.limit, self.calls = backbone, limit, []

        def __getattr__(self, name: str):
            return getattr(self._backbone, name)

        def forward_features(self, x):
            self.calls.append(int(x.shape[0]))
            if x.shape[0] > self.limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
            return self._backbone.forward_features(x)

    weights = meta_checkpoint("tiny", folder)
    raster = make_raster(folder / "in.tif", 300, 260, kind="blobs")
    real = pipeline.load_model
    wrapped: List[OomAbove] = []

    def load(config, progress):
        backbone, used_device, precision = real(config, progress)
        wrapped.append(OomAbove(backbone, 1))
        return wrapped[-1], used_device, precision

    def run(name: str, batch: int) -> Any:
        config = SegmentationConfig(input_path=str(raster), output_path=str(folder / name), model=str(weights),
                                    device=device.type, precision="fp32", tile_size=128, overlap=32, k=3,
                                    batch_size=batch)
        progress = Log()
        run_segmentation(config, progress)
        ds = gdal.Open(str(folder / name))
        labels = ds.GetRasterBand(1).ReadAsArray()
        ds = None
        return labels, progress.warnings

    expected, _ = run("one.tif", 1)
    pipeline.load_model = load
    try:
        labels, warnings = run("oom.tif", 4)
    finally:
        pipeline.load_model = real
    calls = wrapped[0].calls
    ok = calls[:3] == [4, 2, 1] and set(calls[3:]) <= {1} and bool((labels == expected).all())
    result = {"batch_sizes": calls, "warnings": [w for w in warnings if w.startswith("Out of memory")],
              "labels_equal_batch_1_run": bool((labels == expected).all()), "ok": ok}
    log(f"  batch sizes seen by the model: {calls}")
    for line in result["warnings"]:
        log(f"  log: {line}")
    log(f"OOM back-off: {'ok' if ok else 'FAILED'}")
    return result


def main(argv: List[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; uses the CPU when there is no GPU")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif args.smoke:
        device = torch.device("cpu")
    else:
        log("No CUDA GPU visible to this PyTorch: run with --smoke for a CPU dry run.")
        return 2
    started = time.perf_counter()
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as the backbone runs
    torch.backends.cudnn.allow_tf32 = False
    precisions = ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    report: Dict[str, Any] = {"date": str(datetime.date.today()), "machine": describe_machine(),
                              "device": str(device), "smoke": args.smoke}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
    log(f"# gpu_check {report['date']}: {report.get('gpu', 'CPU smoke run')}; {report['machine']}")
    folder = Path(tempfile.mkdtemp(prefix="treeseg-gpu-check-"))
    log("\n## matmul rates")
    report["matmul_gflops"] = matmul_rates(device, precisions, plan["matmul"], plan["iterations"])
    log("\n## backbone throughput")
    report["throughput"] = []
    for model, batch in plan["models"].items():
        report["throughput"] += throughput(model, batch, plan["size"], device, precisions, plan["iterations"],
                                           report["matmul_gflops"]["bf16"], folder)
    log("\n## CHMv2 canopy height")
    report["chmv2"] = chmv2_check(plan["chmv2_tiny"], plan["chmv2_sizes"], device, precisions, plan["iterations"])
    log("\n## out-of-memory back-off (injected)")
    try:
        report["oom_backoff"] = oom_backoff(device, folder)
    except ImportError as exc:  # the engine needs GDAL's Python bindings (osgeo)
        log(f"OOM back-off: SKIPPED ({exc}); install GDAL's Python bindings to run it")
        report["oom_backoff"] = {"ok": False, "skipped": str(exc)}
    report["seconds"] = time.perf_counter() - started
    log(f"\ndone in {report['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["oom_backoff"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
