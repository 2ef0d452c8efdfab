"""Shared helpers of the benchmark scripts: machine description, analytic ViT FLOPs, matmul peaks, timing.

Not a benchmark itself; imported by scripts/bench_backbone.py, scripts/bench_pipeline.py and
scripts/gpu_check.py (the scripts folder is first on sys.path when one of them runs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
for _path in (str(REPO_ROOT / "tests"), str(REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from treeseg_plugin.dinov3.variants import VARIANTS, Variant, swiglu_hidden_dim  # noqa: E402 (after the path)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU = torch.device("cpu")


# ---------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> List[str]:
    """The x86 flags that matter for the matmul kernels (AVX-512, bf16, AMX), from /proc/cpuinfo."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as `uptime` prints them ("?" where the OS has none)."""
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def describe_machine() -> str:
    """One line: CPU model, cores, relevant flags, torch build, threads, load average."""
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())
    capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"
    build = f"torch {torch.__version__} (CPU capability {capability}, oneDNN {torch.backends.mkldnn.is_available()}"
    if torch.version.cuda:
        build += f", CUDA {torch.version.cuda}"
    return (f"{cpu_model()}, {os.cpu_count()} logical cores ({' '.join(cpu_flags()) or 'no AVX-512/AMX flags'}); "
            f"{build}); Python {platform.python_version()}{load}")


def write_results(path: Path, args: argparse.Namespace, results: object) -> None:
    """A benchmark's results as JSON at ``path``, with the date, the machine and the command's arguments."""
    document = {"date": str(datetime.date.today()), "machine": describe_machine(),
                "args": vars(args) | {"json": str(path)}, "results": results}
    path.write_text(json.dumps(document, indent=2))


# ---------------------------------------------------------------- analytic FLOPs (spec section 8)


@dataclass(frozen=True)
class VitShape:
    name: str
    dim: int
    depth: int
    heads: int
    hidden: int
    ffn: str = "mlp"  # "mlp" | "swiglu"
    storage: int = 4
    patch: int = 16


def _released_architecture(arch: str) -> Variant:
    """The first released variant of architecture ``arch`` ("vitl16"): the one source of the shapes below."""
    return next(variant for variant in VARIANTS.values() if variant.arch == arch)


def _shape(variant: Variant) -> VitShape:
    hidden = swiglu_hidden_dim(variant.embed_dim, variant.ffn_ratio, variant.swiglu_align) \
        if variant.ffn_layer == "swiglu" else int(variant.embed_dim * variant.ffn_ratio)
    return VitShape(variant.arch, variant.embed_dim, variant.depth, variant.num_heads, hidden, variant.ffn_layer,
                    variant.n_storage_tokens)


VIT_SHAPES = {"tiny": VitShape("tiny", 64, 2, 2, 256),  # tests/checkpoint_factory's "tiny", not a released model
              **{v.arch: _shape(v) for v in VARIANTS.values()}}


def grid(size: int, stride: int = 16, patch: int = 16) -> int:
    return (size - patch) // stride + 1


def tokens(shape: VitShape, size: int, stride: int = 16) -> int:
    return grid(size, stride, shape.patch) ** 2 + 1 + shape.storage


def vit_gflop(shape: VitShape, size: int, stride: int = 16) -> Tuple[float, float]:
    """(linear + patch-embedding GFLOP, attention GFLOP) of one square image: a multiply-add is 2 FLOPs.

    Per block 8ND^2 (QKV, proj) + 4NDF (MLP; SwiGLU 6NDF) + 4N^2D (QK^T and AV); the embedding is a
    GEMM of HW x 768 x D. Norms, softmax, RoPE and activations are not counted (spec section 8).
    """
    patches = grid(size, stride, shape.patch) ** 2
    n, d, f = patches + 1 + shape.storage, shape.dim, shape.hidden
    ffn = (6 if shape.ffn == "swiglu" else 4) * n * d * f
    linear = shape.depth * (8 * n * d * d + ffn) + 2 * patches * 3 * shape.patch**2 * d
    attention = shape.depth * 4 * n * n * d
    return linear / 1e9, attention / 1e9


def meta_checkpoint(model: str, folder: Path) -> Path:
    """A random-weight checkpoint of ``model`` (a key of VIT_SHAPES) in Meta's .pth format, written by
    tests/checkpoint_factory: the real architecture, not trained weights."""
    from checkpoint_factory import FactoryConfig, make_state_dict, write_meta_pth

    if model == "tiny":
        config = model
    else:
        v = _released_architecture(model)
        config = FactoryConfig(embed_dim=v.embed_dim, depth=v.depth, num_heads=v.num_heads, ffn=v.ffn_layer,
                               ffn_ratio=v.ffn_ratio, swiglu_align=v.swiglu_align, n_storage_tokens=v.n_storage_tokens,
                               qkv_bias=v.qkv_bias, local_cls_norm=v.local_cls_norm)
    return write_meta_pth(folder / f"{model}.pth", make_state_dict(config, seed=0))


def linear_gemms(shape: VitShape, rows: int) -> List[Tuple[int, int, int]]:
    """(M, K, N) of one block's linear layers for `rows` = batch x tokens."""
    d, f = shape.dim, shape.hidden
    ffn = [(rows, d, f), (rows, d, f), (rows, f, d)] if shape.ffn == "swiglu" else [(rows, d, f), (rows, f, d)]
    return [(rows, d, 3 * d), (rows, d, d), *ffn]


# ---------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Samples:
    """Wall-clock and process CPU seconds of repeated calls."""

    wall: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def timed(function: Callable[[], object], samples: Samples, device: torch.device = CPU) -> object:
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    sync(device)
    samples.wall.append(time.perf_counter() - wall)
    samples.cpu.append(time.process_time() - cpu)
    return result


def interleaved(functions: Dict[str, Callable[[], object]], rounds: int, warmup: int = 2,
                device: torch.device = CPU) -> Dict[str, Samples]:
    """Time each function once per round, rotating the order every round (noise hits all alike)."""
    names = list(functions)
    for _ in range(warmup):
        for name in names:
            functions[name]()
    sync(device)
    samples = {name: Samples() for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            timed(functions[name], samples[name], device)
    return samples


def square_matmul(dtype: torch.dtype, device: torch.device, n: int = 2048) -> Tuple[Callable[[], object], float]:
    """(call, GFLOP) of an n x n x n matmul: the textbook "peak" of the BLAS for this dtype."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return (lambda: torch.mm(a, b)), 2 * n**3 / 1e9


def shaped_matmuls(shapes: Sequence[Tuple[int, int, int]], dtype: torch.dtype,
                   device: torch.device) -> Tuple[Callable[[], object], float]:
    """(call, GFLOP) of the model's own GEMM shapes, weights transposed as nn.Linear stores them, no bias:
    the best rate this BLAS reaches on exactly the matmuls a forward pass needs."""
    operands = [(torch.randn(m, k, device=device).to(dtype), torch.randn(n, k, device=device).to(dtype).t())
                for m, k, n in shapes]

    def run() -> None:
        for a, b in operands:
            torch.mm(a, b)

    return run, sum(2 * m * k * n for m, k, n in shapes) / 1e9


# ---------------------------------------------------------------- synthetic orthophotos


def blobs(height: int, width: int, seed: int = 0):
    """[3, height, width] uint8 "tree crowns on textured ground", like tests/data_factory's "blobs" pattern
    (value = 254 * pattern) but drawn crown by crown in its bounding box, so large rasters take seconds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ground = 0.15 + 0.1 * rng.random((height, width), dtype=np.float32)
    crowns = np.zeros((height, width), dtype=np.float32)
    count = max(3, height * width // 2500)
    for cy, cx, r in zip(rng.random(count) * height, rng.random(count) * width, 6 + rng.random(count) * 14):
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 2)
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        cone = np.clip(1 - np.hypot(yy - cy, xx - cx) / r, 0, 1)
        np.maximum(crowns[y0:y1, x0:x1], cone, out=crowns[y0:y1, x0:x1])
    out = np.empty((3, height, width), dtype=np.uint8)
    for band, gain in enumerate((0.45, 0.7, 0.45)):
        out[band] = np.round(254 * np.clip(ground + crowns * gain, 0, 1))
    return out
