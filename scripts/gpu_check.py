"""One-shot GPU check (issue 28, target 6 of docs/benchmarks.md): throughput, precision and OOM back-off on a GPU.

Prepared for an H100/H200-class machine: one run under 10 minutes, no internet (random weights written by
tests/checkpoint_factory in Meta's .pth format). It reports, on the first CUDA device:

1. the GPU's dense matmul rate (8192^3) in fp32 (TF32 off, as the backbone runs), bf16 and fp16;
2. ViT-S/16, ViT-B/16, ViT-L/16 and ViT-7B/16 on tiles of 512, 1024 and 2048 px in fp32, bf16 and fp16, at the
   batch the engine starts with (SegmentationConfig.batch_size), halved on out-of-memory as the engine does:
   images/s, analytic GFLOP/s, the share of the bf16 matmul rate and of the bf16 rate of the model's own GEMM
   shapes, peak memory, and the patch-feature cosine against fp32;
3. CHMv2 (ViT-L/16 + DPT head + mixlog, random weights) on one tile of 512, 1024 and 2048 px in each precision:
   seconds per tile, peak memory, the largest height difference against fp32 (metres);
4. that the engine's out-of-memory back-off works: a real Segment Trees run on the GPU whose backbone raises
   torch.cuda.OutOfMemoryError for batches above 1 must halve the batch 4 -> 2 -> 1 and finish with the labels of
   a batch-1 run;
5. a whole Segment Trees run through the worker process (as QGIS runs it) on the GPU, ViT-L/16, auto precision:
   wall time, the stages' times and the pixels per second.

4 and 5 need GDAL's Python bindings (osgeo); without them they are reported as skipped. Each measurement stops
after its time budget (at least one timed call after the warm-up), and the JSON report is written after every
section, so a run cut short still leaves what it measured.

    python scripts/gpu_check.py --json gpu.json                        # on the GPU machine
    python scripts/gpu_check.py --models vits16,vitl16 --sizes 1024    # a part of it
    python scripts/gpu_check.py --smoke               # tiny sizes; runs on the CPU too (tested)
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

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

FULL = {"models": ["vits16", "vitb16", "vitl16", "vit7b16"], "sizes": [512, 1024, 2048], "iterations": 10,
        "budget_s": 3.0, "matmul": 8192, "chmv2_tiny": False, "chmv2_sizes": [512, 1024, 2048],
        "run_model": "vitl16", "run_size": 4096}
LAST = {"vit7b16"}
"""Measured after everything else: writing its random 27 GB checkpoint and three loads take minutes."""
SMOKE = {"models": ["tiny"], "sizes": [64, 96], "iterations": 2, "budget_s": 1.0, "matmul": 256, "chmv2_tiny": True,
         "chmv2_sizes": [32, 64], "run_model": "tiny", "run_size": 160}


def log(message: str) -> None:
    print(message, flush=True)


def best_seconds(function: Callable[[], Any], device: torch.device, iterations: int, budget_s: float) -> float:
    """The fastest of up to ``iterations`` timed calls of ``function`` (the caller has warmed it up), stopping once
    ``budget_s`` seconds have been spent; at least one call."""
    best, spent = float("inf"), 0.0
    for _ in range(iterations):
        sync(device)
        start = time.perf_counter()
        function()
        sync(device)
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent >= budget_s:
            break
    return best


def rate(function: Callable[[], Any], gflop: float, device: torch.device, iterations: int,
         budget_s: float = 3.0) -> float:
    """GFLOP/s of ``function``, best of its timed calls after a warm-up."""
    function()
    return gflop / best_seconds(function, device, iterations, budget_s)


def matmul_rates(device: torch.device, precisions: List[str], n: int, iterations: int) -> Dict[str, float]:
    rates = {}
    for precision in precisions:
        call, gflop = square_matmul(DTYPES[precision], device, n)
        rates[precision] = rate(call, gflop, device, iterations)
        log(f"  matmul {n}^3 {precision}: {rates[precision]:.5g} GFLOP/s")
    return rates


def engine_batch() -> int:
    """The batch the engine starts with (it halves it on out-of-memory)."""
    from treeseg_plugin.engine import SegmentationConfig

    return SegmentationConfig(input_path="", output_path="").batch_size


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _patches_at_largest_batch(backbone: Any, images: torch.Tensor, device: torch.device) -> Optional[torch.Tensor]:
    """Patch features of the largest leading slice of ``images`` that fits, halving on out-of-memory as the
    engine does; None when even one image does not fit."""
    batch = images.shape[0]
    while batch >= 1:
        try:
            return backbone.forward_features(images[:batch])["x_norm_patchtokens"]
        except torch.cuda.OutOfMemoryError:
            batch //= 2
            _free(device)
    return None


def throughput(model: str, plan: Dict[str, Any], device: torch.device, precisions: List[str], bf16_peak: float,
               folder: Path) -> List[Dict[str, Any]]:
    """One row per (precision, tile size): see the module's doc, section 2. fp32 runs first: the references."""
    from treeseg_plugin.dinov3 import load_backbone

    shape, batch = VIT_SHAPES[model], engine_batch()
    weights = meta_checkpoint(model, folder)
    images = {size: torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(size)).to(device)
              for size in plan["sizes"]}
    references: Dict[int, torch.Tensor] = {}
    rows = []
    with torch.inference_mode():
        for precision in precisions:
            backbone = load_backbone(weights, device=device, dtype=DTYPES[precision])
            for size in plan["sizes"]:
                _free(device)
                rows.append(_measure(backbone, shape, size, precision, images[size], references, plan, device,
                                     bf16_peak))
            del backbone
            _free(device)
    weights.unlink()  # ViT-7B/16's file is 27 GB
    return rows


def _measure(backbone: Any, shape: Any, size: int, precision: str, images: torch.Tensor,
             references: Dict[int, torch.Tensor], plan: Dict[str, Any], device: torch.device,
             bf16_peak: float) -> Dict[str, Any]:
    row: Dict[str, Any] = {"model": shape.name, "precision": precision, "size": size}
    patches = _patches_at_largest_batch(backbone, images, device)  # also the warm-up
    if patches is None:
        log(f"  {shape.name} {precision} at {size}px: out of memory at batch 1")
        return {**row, "batch": 0, "out_of_memory": True}
    batch = patches.shape[0]
    reference = references.setdefault(size, patches.float())
    linear_gf, attention_gf = vit_gflop(shape, size)
    seconds = best_seconds(lambda: backbone.forward_features(images[:batch]), device, plan["iterations"],
                           plan["budget_s"])
    gflops = (linear_gf + attention_gf) * batch / seconds
    gemm_call, gemm_gf = shaped_matmuls(linear_gemms(shape, batch * tokens(shape, size)), torch.bfloat16, device)
    gemm_rate = rate(gemm_call, gemm_gf, device, plan["iterations"], plan["budget_s"])
    del gemm_call
    common = min(batch, reference.shape[0])
    cos = torch.nn.functional.cosine_similarity(patches[:common].float(), reference[:common], dim=-1)
    row.update({"batch": batch, "images_per_s": batch / seconds, "gflops": gflops,
                "fraction_of_bf16_matmul": gflops / bf16_peak, "fraction_of_bf16_model_gemms": gflops / gemm_rate,
                "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
                "finite": bool(torch.isfinite(patches).all())})
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    log(f"  {shape.name} {precision} batch {batch} at {size}px: {row['images_per_s']:.2f} images/s, "
        f"{gflops:.5g} GFLOP/s = {row['fraction_of_bf16_matmul']:.0%} of the bf16 matmul rate "
        f"({row['fraction_of_bf16_model_gemms']:.0%} of the bf16 model-GEMM rate), cosine vs fp32 min "
        f"{row['cosine_min']:.4f} mean {row['cosine_mean']:.5f}"
        + (f", peak memory {row['peak_memory_gib']:.2f} GiB" if "peak_memory_gib" in row else ""))
    return row


def chmv2_check(plan: Dict[str, Any], device: torch.device, precisions: List[str]) -> List[Dict[str, Any]]:
    """CHMv2 seconds per tile, peak memory and max height difference against fp32, per tile size and precision."""
    from bench_chmv2 import build

    rows: List[Dict[str, Any]] = []
    references: Dict[int, torch.Tensor] = {}
    with torch.inference_mode():
        for precision in precisions:
            torch.manual_seed(0)  # the same random weights in every precision
            model = build(device, DTYPES[precision], tiny=plan["chmv2_tiny"])
            for size in plan["chmv2_sizes"]:
                x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size)).to(device)
                _free(device)
                try:
                    heights = model(x)
                except torch.cuda.OutOfMemoryError:
                    _free(device)
                    log(f"CHMv2 1 x {size}^2 {precision}: out of memory")
                    rows.append({"size": size, "precision": precision, "out_of_memory": True})
                    continue
                seconds = best_seconds(lambda m=model, x=x: m(x), device, plan["iterations"], plan["budget_s"])
                reference = references.setdefault(size, heights.float())
                row = {"size": size, "precision": precision, "s_per_tile": seconds,
                       "max_abs_diff_m": float((heights.float() - reference).abs().max()),
                       "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}
                log(f"CHMv2 {'tiny' if plan['chmv2_tiny'] else 'ViT-L/16'} 1 x {size}^2 {precision}: {seconds:.3f} "
                    f"s/tile, max |h - h_fp32| {row['max_abs_diff_m']:.3f} m"
                    + (f", peak {row['peak_gib']:.1f} GiB" if row["peak_gib"] is not None else ""))
                rows.append(row)
            del model
            _free(device)
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


def segment_trees_through_the_worker(plan: Dict[str, Any], device: torch.device, folder: Path) -> Dict[str, Any]:
    """A whole Segment Trees run as QGIS runs it (worker process, default settings, auto precision) on ``device``."""
    from data_factory import make_raster

    from treeseg_plugin.engine import SegmentationConfig
    from treeseg_plugin.worker.client import run_job

    size = plan["run_size"]
    raster = make_raster(folder / "run.tif", size, size, kind="blobs")
    weights = meta_checkpoint(plan["run_model"], folder)
    config = SegmentationConfig(input_path=str(raster), output_path=str(folder / "run-labels.tif"),
                                stats_path=str(folder / "run-stats.json"), model=str(weights), device=device.type)
    started = time.perf_counter()
    run_job(config)
    wall = time.perf_counter() - started
    stats = json.loads((folder / "run-stats.json").read_text())
    megapixels = size * size / 1e6
    result = {"model": plan["run_model"], "size": size, "wall_s": wall, "megapixels_per_s": megapixels / wall,
              "precision": stats.get("precision"), "device": stats.get("device"), "timings_s": stats["timings_s"]}
    log(f"  {plan['run_model']} on {size} x {size} px through the worker ({result['device']}, {result['precision']}): "
        f"{wall:.1f} s, {result['megapixels_per_s']:.2f} Mpx/s; stages (s): "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in stats["timings_s"].items()))
    return result


def needs_gdal(section: Callable[[], Dict[str, Any]], name: str) -> Dict[str, Any]:
    """``section()``, or a report that it was skipped where GDAL's Python bindings (the engine's) are missing."""
    try:
        import osgeo  # noqa: F401
    except ImportError as exc:
        log(f"{name}: SKIPPED ({exc}); install GDAL's Python bindings to run it")
        return {"ok": False, "skipped": str(exc)}
    return section()


def main(argv: List[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; uses the CPU when there is no GPU")
    parser.add_argument("--models", help="comma-separated backbones (default: vits16,vitb16,vitl16,vit7b16)")
    parser.add_argument("--sizes", help="comma-separated tile sizes in px (default: 512,1024,2048)")
    parser.add_argument("--json", type=Path, help="also write the report here (after every section)")
    args = parser.parse_args(argv)
    plan = dict(SMOKE if args.smoke else FULL)
    if args.models:
        plan["models"] = args.models.split(",")
    if args.sizes:
        plan["sizes"] = [int(size) for size in args.sizes.split(",")]
    unknown = [model for model in plan["models"] if model not in VIT_SHAPES]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(VIT_SHAPES)}")
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
                              "device": str(device), "smoke": args.smoke, "plan": plan}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
    log(f"# gpu_check {report['date']}: {report.get('gpu', 'CPU smoke run')}; {report['machine']}")
    folder = Path(tempfile.mkdtemp(prefix="treeseg-gpu-check-"))

    def section(title: str, key: str, measure: Callable[[], Any]) -> None:
        log(f"\n## {title}")
        tick = time.perf_counter()
        report[key] = measure()
        report["seconds"] = time.perf_counter() - started
        log(f"({title}: {time.perf_counter() - tick:.0f} s)")
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))

    section("matmul rates", "matmul_gflops",
            lambda: matmul_rates(device, precisions, plan["matmul"], plan["iterations"]))
    report["throughput"] = []

    def backbones(models: List[str]) -> None:
        for model in models:
            section(f"backbone throughput: {model}", "throughput", lambda m=model: report["throughput"] + throughput(
                m, plan, device, precisions, report["matmul_gflops"]["bf16"], folder))

    backbones([model for model in plan["models"] if model not in LAST])
    section("CHMv2 canopy height", "chmv2", lambda: chmv2_check(plan, device, precisions))
    section("out-of-memory back-off (injected)", "oom_backoff",
            lambda: needs_gdal(lambda: oom_backoff(device, folder), "OOM back-off"))
    section("Segment Trees through the worker", "segment_trees",
            lambda: needs_gdal(lambda: segment_trees_through_the_worker(plan, device, folder), "Segment Trees run"))
    backbones([model for model in plan["models"] if model in LAST])
    log(f"\ndone in {report['seconds']:.0f} s")
    return 0 if report["oom_backoff"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
