"""Device and precision choice, and loading the models (the DINOv3 backbone, CHMv2) with their errors
turned into EngineErrors, the same for both.

Decisions: ``device="auto"`` picks CUDA, then Apple MPS, then the CPU. ``precision="auto"`` is bf16
on CUDA GPUs with native bf16 (compute capability 8.0 or more; fp16 on older ones, which
emulate bf16), bf16 on CPUs that run bf16 matmuls natively (x86 AMX or
AVX512-BF16: measured 2.7-3.0x faster than fp32 on a ViT-S/16 at 512 px, patch-feature cosine
0.9999 or more against fp32; docs/benchmarks.md), and fp32 elsewhere (CPUs without bf16 dot
products, where bf16 is expected to be slower than fp32; MPS). fp16 on the CPU is refused (PyTorch's
CPU fp16 kernels are slow or missing).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch

from ...dinov3 import Backbone, CheckpointError, DinoV3Error, WeightsNotFoundError, load_backbone
from ...dinov3.chmv2.loading import load_canopy_height_model
from ...dinov3.chmv2.model import CanopyHeightModel
from ...dinov3.device import cuda_capability, native_bf16
from ...dinov3.device import resolve_device as device_for
from ...dinov3.errors import scrub_token
from ..errors import EngineError
from ..jobs.canopy_height import CanopyHeightConfig
from ..jobs.segmentation import FitSettings
from ..progress import Progress

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> str:
    """A concrete torch device name for ``name`` ("auto", "cpu", "cuda", "cuda:1", "mps"); the rule is
    the backbone's (dinov3.device), its refusals become EngineErrors."""
    try:
        return str(device_for(name or "auto"))
    except ValueError as error:
        raise EngineError(str(error)) from None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls in hardware (x86 AMX or AVX512-BF16), where oneDNN's bf16 path
    beats fp32 by a wide margin. Other CPUs emulate bf16 and are slower in bf16 than in fp32."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    checks = [check for check in checks if check is not None]
    if checks:
        try:
            return any(bool(check()) for check in checks)
        except RuntimeError:
            pass
    if not sys.platform.startswith("linux"):  # older torch without the checks: read the flags on Linux only
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device: str,
                      capability_of: Callable[[str], Tuple[int, int]] = cuda_capability) -> str:
    """The precision to run at ("fp32", "bf16" or "fp16") on ``device``; ``capability_of`` gives a CUDA
    device's compute capability (the one ``device`` names, e.g. "cuda:1")."""
    if precision == "auto":
        if device.startswith("cuda"):
            return "bf16" if native_bf16(capability_of(device)) else "fp16"
        if device == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if precision == "fp16" and device == "cpu":
        raise EngineError("Precision fp16 is not supported on the CPU. Use fp32 (or bf16), or run on a GPU.")
    return precision


def describe_device(device: str) -> str:
    """A log line naming the device and the PyTorch build."""
    build = f"torch {torch.__version__}"
    if torch.version.cuda:
        build += f", CUDA {torch.version.cuda}"
    if device.startswith("cuda"):
        return f"Device: {device} ({torch.cuda.get_device_name(torch.device(device))}; {build})."
    return f"Device: {device} ({build}, {torch.get_num_threads()} CPU threads)."


_KEPT: Dict[Tuple[str, str, str, int], Tuple[Backbone, str, str, Tuple[int, int]]] = {}
_keep = False


def keep_models_loaded() -> None:
    """From now on this process keeps the last backbone it loaded and hands it to the next run with the same
    model, device, precision and stride, while its weights file keeps its size and time stamp: for batch
    workers (one backbone for many rasters) and the worker QGIS keeps between runs (worker/kept.py)."""
    global _keep
    _keep = True


def _file_stamp(path: Path) -> Tuple[int, int]:
    """(size, modification time in ns) of ``path``; (-1, -1) when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def _kept_model(key: Tuple[str, str, str, int]) -> Optional[Tuple[Backbone, str, str]]:
    """The kept backbone for ``key`` when its weights file is unchanged since it was loaded."""
    if key not in _KEPT:
        return None
    backbone, device, precision, stamp = _KEPT[key]
    if _file_stamp(backbone.weights.path) != stamp:
        return None
    return backbone, device, precision


def _placement(device_name: str, precision_name: str, progress: Progress) -> Tuple[str, str]:
    """The device and precision a model is loaded at (the device logged)."""
    device = resolve_device(device_name)
    precision = resolve_precision(precision_name, device)
    progress.info(describe_device(device))
    return device, precision


@contextlib.contextmanager
def _loading_errors(token: Optional[str]) -> Iterator[None]:
    """A model's missing, invalid or mismatched weights as an EngineError (``token`` never shown)."""
    try:
        yield
    except (WeightsNotFoundError, CheckpointError, DinoV3Error, ValueError) as exc:
        raise EngineError(scrub_token(str(exc), token)) from exc


def load_model(config: FitSettings, progress: Progress) -> Tuple[Backbone, str, str]:
    """Load the backbone for ``config``; returns it with the device and precision used."""
    device, precision = _placement(config.device, config.precision, progress)
    key = (config.model, device, precision, config.stride)
    kept = _kept_model(key)
    if kept is not None:
        progress.info(f"Model: {kept[0].variant}, kept loaded from an earlier run in this process.")
        return kept
    _KEPT.clear()  # only the last model stays: the one kept before is freed before this one loads
    with _loading_errors(config.token):
        backbone = load_backbone(config.model, device=device, dtype=DTYPES[precision],
                                 patch_stride=config.stride, allow_download=config.allow_download,
                                 token=config.token, log=progress.info)
    weights = backbone.weights
    progress.info(f"Model: {backbone.variant} (embedding {backbone.embed_dim}, patch {backbone.patch_size}, "
                  f"stride {backbone.patch_stride}), precision {precision}; weights {weights.path} "
                  f"({weights.format}, {weights.tensors_loaded}/{weights.tensors_total} tensors loaded).")
    if _keep:
        _KEPT[key] = (backbone, device, precision, _file_stamp(weights.path))
    return backbone, device, precision


def load_chmv2(config: CanopyHeightConfig, progress: Progress) -> Tuple[CanopyHeightModel, str, str]:
    """The CHMv2 model for ``config``, with the device and precision used."""
    device, precision = _placement(config.device, config.precision, progress)
    with _loading_errors(config.token):
        model = load_canopy_height_model(config.model, config.backbone, device, DTYPES[precision],
                                         allow_download=config.allow_download, token=config.token,
                                         log=progress.info)
    progress.info(f"Model: CHMv2 on {model.backbone.variant}, precision {precision}.")
    return model, device, precision
