"""Backbone throughput: TreeSeg's DINOv3 vs transformers' DINOv3ViTModel (sdpa), same weights, same run.

Performance targets 1 and 2 of docs/benchmarks.md: ViT-S/16, batch 2 at 512x512 on the CPU, fp32 and bf16.
Every round times, in a rotating order, TreeSeg's forward, transformers' forward (fp32, or fp32 weights
under torch.autocast(bfloat16) for bf16), a 2048^3 matmul and the model's own linear-layer GEMMs (same
M, K, N as QKV, proj, fc1, fc2; no bias) in the same dtype: machine noise hits all four alike. Figures are
medians over the rounds, in wall-clock seconds and in process CPU seconds (robust when other processes
share the cores). FLOPs are analytic, attention included (63.8 GFLOP per 512x512 image for ViT-S/16).

    .venv/bin/python scripts/bench_backbone.py                       # both precisions, 2 and 1 threads
    .venv/bin/python scripts/bench_backbone.py --threads 2 --rounds 30 --precision fp32
    .venv/bin/python scripts/bench_backbone.py --profile             # + torch.profiler top ops of ours
    .venv/bin/python scripts/bench_backbone.py --baseline-rev HEAD   # + TreeSeg as committed, interleaved
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch
from bench_common import (
    DTYPES,
    VIT_SHAPES,
    describe_machine,
    interleaved,
    linear_gemms,
    shaped_matmuls,
    square_matmul,
    tokens,
    vit_gflop,
    write_results,
)


def build(model: str, folder: Path):
    """Random-weight checkpoint (tests/checkpoint_factory) written as an HF folder, loaded by both."""
    from checkpoint_factory import FactoryConfig, make_state_dict, write_hf_folder

    shape = VIT_SHAPES[model]
    config = model if model in ("tiny", "vits16", "vits16plus") else FactoryConfig(
        embed_dim=shape.dim, depth=shape.depth, num_heads=shape.heads, ffn=shape.ffn)
    return write_hf_folder(folder, make_state_dict(config, seed=0, periods="hf"), config)


def load_at_revision(revision: str):
    """`load_backbone` of treeseg_plugin as committed at `revision` (git archive, imported under another name)."""
    from bench_common import REPO_ROOT

    archive = subprocess.run(["git", "archive", revision, "treeseg_plugin"], cwd=REPO_ROOT, capture_output=True,
                             check=True).stdout
    root = Path(tempfile.mkdtemp(prefix="treeseg-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():  # our own repository's files; still, plain relative paths only
            if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in member.name:
                raise ValueError(f"unexpected archive member {member.name!r}")
            target = root / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    package = "treeseg_baseline"
    (root / "treeseg_plugin").rename(root / package)
    sys.path.insert(0, str(root))
    return importlib.import_module(f"{package}.dinov3").load_backbone


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def profile_table(function, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    function()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        function()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv: List[str] = sys.argv[1:]) -> List[Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--model", default="vits16", choices=sorted(VIT_SHAPES))
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads(), 1])
    parser.add_argument("--no-reference", action="store_true", help="skip transformers")
    parser.add_argument("--square", type=int, default=2048,
                        help="side of the square matmul peak (small in tests: bf16 is emulated on AVX2 CPUs)")
    parser.add_argument("--baseline-rev", help="also time TreeSeg's backbone as committed at this git revision")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler's top ops of TreeSeg")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from treeseg_plugin.dinov3 import load_backbone

    shape = VIT_SHAPES[args.model]
    folder = build(args.model, Path(tempfile.mkdtemp(prefix="treeseg-bench-")) / args.model)
    tick = time.perf_counter()
    ours = {"fp32": load_backbone(folder, dtype=torch.float32)}
    load_s = time.perf_counter() - tick
    if "bf16" in args.precision:
        ours["bf16"] = load_backbone(folder, dtype=torch.bfloat16)
    baseline = {}
    if args.baseline_rev:
        load_baseline = load_at_revision(args.baseline_rev)
        baseline = {p: load_baseline(folder, dtype=DTYPES[p]) for p in args.precision}
    reference = None
    if not args.no_reference:
        import transformers

        transformers.logging.set_verbosity_error()
        reference = transformers.DINOv3ViTModel.from_pretrained(folder, attn_implementation="sdpa").eval()
    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    linear_gf, attention_gf = vit_gflop(shape, args.size)
    gflop = (linear_gf + attention_gf) * args.batch
    gemms = linear_gemms(shape, args.batch * tokens(shape, args.size))

    def run_ours(precision: str) -> torch.Tensor:
        return ours[precision].forward_features(x)["x_norm_patchtokens"]

    def run_reference(precision: str) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            return reference(pixel_values=x).last_hidden_state[:, 1 + shape.storage:]

    print(f"# Backbone benchmark, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}")
    if reference is not None:
        print(f"- reference: transformers {transformers.__version__} DINOv3ViTModel, attn_implementation=sdpa")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`")
    print(f"- model: {args.model} (random weights), batch {args.batch} x {args.size}x{args.size}: "
          f"{gflop:.1f} GFLOP per batch ({linear_gf:.1f} linear + {attention_gf:.1f} attention per image); "
          f"TreeSeg load_backbone {load_s:.2f} s\n")
    print("| threads | precision | TreeSeg s/batch | transformers s/batch | TreeSeg speed-up | TreeSeg GFLOP/s "
          "| mm 2048³ GFLOP/s | model-GEMM GFLOP/s | fraction of mm 2048³ | fraction of model GEMMs "
          "| CPU-time fraction of model GEMMs | patch cosine vs fp32 (min / mean) |")
    print("|" + "---|" * 12)
    fp32_tokens = run_ours("fp32").float()
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for precision in args.precision:
            dtype = DTYPES[precision]
            square, square_gf = square_matmul(dtype, torch.device("cpu"), args.square)
            shaped, shaped_gf = shaped_matmuls(gemms, dtype, torch.device("cpu"))
            functions = {"ours": lambda p=precision: run_ours(p), "mm2048": square, "gemms": shaped}
            if reference is not None:
                functions["reference"] = lambda p=precision: run_reference(p)
            if baseline:
                functions["baseline"] = lambda p=precision: baseline[p].forward_features(x)
            samples = interleaved(functions, args.rounds)
            ours_s, ours_cpu = samples["ours"].wall_median, samples["ours"].cpu_median
            square_rate = square_gf / samples["mm2048"].wall_median
            shaped_rate = shaped_gf / samples["gemms"].wall_median
            shaped_rate_cpu = shaped_gf / samples["gemms"].cpu_median
            row = {"threads": threads, "precision": precision, "ours_s": ours_s, "ours_cpu_s": ours_cpu,
                   "gflop": gflop, "ours_gflops": gflop / ours_s, "mm2048_gflops": square_rate,
                   "model_gemm_gflops": shaped_rate, "fraction_mm2048": gflop / ours_s / square_rate,
                   "fraction_model_gemm": gflop / ours_s / shaped_rate,
                   "cpu_fraction_model_gemm": gflop / ours_cpu / shaped_rate_cpu}
            ref_text = speedup = "-"
            if reference is not None:
                row["reference_s"] = samples["reference"].wall_median
                row["reference_cpu_s"] = samples["reference"].cpu_median
                row["speedup"] = row["reference_s"] / ours_s
                row["cpu_speedup"] = row["reference_cpu_s"] / ours_cpu
                ref_text = f"{row['reference_s']:.3f}"
                speedup = f"{row['speedup']:.2f}x (CPU time {row['cpu_speedup']:.2f}x)"
            if baseline:
                row["baseline_s"] = samples["baseline"].wall_median
                row["baseline_cpu_s"] = samples["baseline"].cpu_median
            cos = cosine(run_ours(precision), fp32_tokens)
            row["cosine_min"], row["cosine_mean"] = float(cos.min()), float(cos.mean())
            if reference is not None and precision == "bf16":
                ref_cos = cosine(run_reference("bf16"), run_reference("fp32"))
                row["reference_cosine_min"] = float(ref_cos.min())
            results.append(row)
            print(f"| {threads} | {precision} | {ours_s:.3f} | {ref_text} | {speedup} | {row['ours_gflops']:.0f} "
                  f"| {square_rate:.0f} | {shaped_rate:.0f} | {row['fraction_mm2048']:.0%} "
                  f"| {row['fraction_model_gemm']:.0%} | {row['cpu_fraction_model_gemm']:.0%} "
                  f"| {row['cosine_min']:.4f} / {row['cosine_mean']:.4f} |", flush=True)
    if baseline:
        print(f"\nTreeSeg at {args.baseline_rev} (interleaved in the same rounds): " + "; ".join(
            f"{r['threads']} threads {r['precision']}: {r['baseline_s']:.3f} s/batch (CPU {r['baseline_cpu_s']:.3f} s) "
            f"-> now {r['ours_s']:.3f} s (CPU {r['ours_cpu_s']:.3f} s), {r['baseline_cpu_s'] / r['ours_cpu_s']:.2f}x "
            "in CPU time" for r in results))
    if any("reference_cosine_min" in r for r in results):
        worst = min(r["reference_cosine_min"] for r in results if "reference_cosine_min" in r)
        print(f"\ntransformers under autocast(bfloat16): patch cosine vs its fp32 output, min {worst:.4f}")
    if args.profile:
        for precision in args.precision:
            print(f"\n## torch.profiler, TreeSeg {precision}, {torch.get_num_threads()} threads\n```")
            print(profile_table(lambda p=precision: run_ours(p)))
            print("```")
    if args.json:
        write_results(args.json, args, results)
    return results


if __name__ == "__main__":
    main()
