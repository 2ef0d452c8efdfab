"""Attention kernels at TreeSeg's token counts: torch's fused CPU flash kernel against explicit softmax(q kᵀ) v.

Issue 28 asks whether attention as explicit bf16 GEMMs with an fp32 softmax beats the fused kernel on a CPU
with native bf16. Every kernel runs on q, k, v laid out as the model's fused qkv projection leaves them
([B,h,N,hd] views of one [B,N,3,h,hd] buffer), timed interleaved in one process (medians of wall-clock
and process CPU time), and its largest error against a float64 reference is reported at two logit scales:
1 (q, k of unit variance, like the random-weight test checkpoints) and 4 (scores with a standard deviation
of 16: the peaked attention of trained models).

- flash: ``scaled_dot_product_attention`` as the model calls it (the fused CPU kernel, fp32 scores);
- flash-contiguous: the same on contiguous q, k, v (making them contiguous is not timed);
- explicit: per (image, head) two 2-D GEMMs in the input dtype (for bf16: oneDNN's bf16 GEMMs), the
  scores rounded to that dtype as they leave the GEMM, the softmax in fp32;
- explicit-fp32-scores (bf16): q kᵀ as an fp32 GEMM (bf16 values are exact in fp32), P V in bf16;
- explicit-shifted (bf16): bf16 GEMMs, but the row maximum of a first q kᵀ pass is folded into an extra
  column of q (and a column of ones into k), so that the scores leave the second GEMM as s - max, whose
  rounding is small where the softmax weights are large.

    .venv/bin/python scripts/bench_attention.py                  # ViT-S/16 at 512 px: batch 2, 1029 tokens
    .venv/bin/python scripts/bench_attention.py --threads 1 --rounds 21 --dtype bf16
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
from pathlib import Path
from typing import Callable, Dict, List

import torch
from bench_common import DTYPES, describe_machine, interleaved, write_results
from torch import Tensor
from torch.nn.functional import scaled_dot_product_attention

Kernel = Callable[[Tensor, Tensor, Tensor], Tensor]
LOGIT_SCALES = (1.0, 4.0)


def per_head(q: Tensor, k: Tensor, v: Tensor, scores: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """softmax(scores(q_bh, k_bh)) v_bh for every (image, head) into one [B,h,N,hd] tensor."""
    out = torch.empty(v.shape, dtype=v.dtype)
    for image in range(q.shape[0]):
        for head in range(q.shape[1]):
            probabilities = torch.softmax(scores(q[image, head], k[image, head]), dim=-1).to(v.dtype)
            torch.mm(probabilities, v[image, head], out=out[image, head])
    return out


def explicit(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    scaled = q * q.shape[-1] ** -0.5  # exact in bf16 when hd is a power of 4 (hd 64: 1/8)
    return per_head(scaled, k, v, lambda qh, kh: torch.mm(qh, kh.t()))


def explicit_fp32_scores(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    scaled = q.float() * q.shape[-1] ** -0.5
    return per_head(scaled, k.float(), v, lambda qh, kh: torch.mm(qh, kh.t()))


def explicit_shifted(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    head_dim = q.shape[-1]
    q_ext = torch.zeros(*q.shape[:-1], head_dim + 2, dtype=q.dtype)  # two columns: K stays even for bf16
    k_ext = torch.zeros(*k.shape[:-1], head_dim + 2, dtype=k.dtype)
    torch.mul(q, head_dim**-0.5, out=q_ext[..., :head_dim])
    k_ext[..., :head_dim] = k
    k_ext[..., head_dim] = 1

    def scores(qh: Tensor, kh: Tensor) -> Tensor:
        rough = torch.mm(qh[:, :head_dim], kh[:, :head_dim].t())
        torch.amax(rough, dim=-1, out=qh[:, head_dim]).neg_()
        return torch.mm(qh, kh.t())

    return per_head(q_ext, k_ext, v, scores)


def kernels(dtype: torch.dtype) -> Dict[str, Kernel]:
    found: Dict[str, Kernel] = {
        "flash": scaled_dot_product_attention,
        "flash-contiguous": scaled_dot_product_attention,
        "explicit": explicit,
    }
    if dtype != torch.float32:
        found["explicit-fp32-scores"] = explicit_fp32_scores
        found["explicit-shifted"] = explicit_shifted
    return found


def qkv_views(batch: int, tokens: int, heads: int, head_dim: int, dtype: torch.dtype, scale: float):
    """q, k, v [B,h,N,hd] as views of one [B,N,3,h,hd] buffer, the model's layout; values N(0, scale²)."""
    generator = torch.Generator().manual_seed(0)
    qkv = torch.randn(batch, tokens, 3, heads, head_dim, generator=generator) * scale
    return qkv.to(dtype).permute(2, 0, 3, 1, 4).unbind(0)


def max_error(kernel: Kernel, q: Tensor, k: Tensor, v: Tensor, contiguous: bool) -> float:
    reference = scaled_dot_product_attention(q.double(), k.double(), v.double())
    args = [t.contiguous() for t in (q, k, v)] if contiguous else [q, k, v]
    return float((kernel(*args).double() - reference).abs().max())


def main(argv: List[str] = sys.argv[1:]) -> List[Dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1029, help="1 + 4 storage + patches (1029: 512 px, /16)")
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dtype", nargs="+", default=["bf16", "fp32"], choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads(), 1])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    shape = (args.batch, args.tokens, args.heads, args.head_dim)
    gflop = 4 * args.batch * args.heads * args.tokens**2 * args.head_dim / 1e9  # q kᵀ and P V

    print(f"# Attention kernels, {datetime.date.today()}\n")
    print(f"- machine: {describe_machine()}")
    print(f"- command: `{' '.join([Path(sys.argv[0]).name, *argv])}`")
    print(f"- batch {args.batch}, {args.tokens} tokens, {args.heads} heads of {args.head_dim}: {gflop:.2f} GFLOP\n")
    print("| threads | dtype | kernel | wall ms | CPU ms | GFLOP/s (wall) | CPU time vs flash "
          "| max error, logit scale 1 (x flash) | max error, logit scale 4 (x flash) |")
    print("|" + "---|" * 9)
    results = []
    with torch.inference_mode():
        for dtype_name in args.dtype:
            dtype = DTYPES[dtype_name]
            found = kernels(dtype)
            errors = {}
            for scale in LOGIT_SCALES:
                q, k, v = qkv_views(*shape, dtype, scale)
                errors[scale] = {name: max_error(kernel, q, k, v, name.endswith("contiguous"))
                                 for name, kernel in found.items()}
            q, k, v = qkv_views(*shape, dtype, 1.0)
            contiguous = [t.contiguous() for t in (q, k, v)]
            calls = {name: functools.partial(kernel, *(contiguous if name.endswith("contiguous") else (q, k, v)))
                     for name, kernel in found.items()}
            for threads in args.threads:
                torch.set_num_threads(threads)
                samples = interleaved(calls, args.rounds)
                flash_cpu = samples["flash"].cpu_median
                for name in found:
                    wall, cpu = samples[name].wall_median, samples[name].cpu_median
                    row = {"threads": threads, "dtype": dtype_name, "kernel": name, "wall_ms": wall * 1e3,
                           "cpu_ms": cpu * 1e3, "gflops": gflop / wall, "cpu_vs_flash": cpu / flash_cpu,
                           **{f"error_scale_{s:g}": errors[s][name] for s in LOGIT_SCALES}}
                    results.append(row)
                    ratios = " | ".join(f"{errors[s][name]:.2e} ({errors[s][name] / errors[s]['flash']:.1f}x)"
                                        for s in LOGIT_SCALES)
                    print(f"| {threads} | {dtype_name} | {name} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} "
                          f"| {gflop / wall:.0f} | {cpu / flash_cpu:.2f} | {ratios} |", flush=True)
    if args.json:
        write_results(args.json, args, results)
    return results


if __name__ == "__main__":
    main()
