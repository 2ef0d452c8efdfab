"""Device and precision choice, and loading the backbone with its errors turned into EngineErrors.

Decisions: ``device="auto"`` picks CUDA, then Apple MPS, then the CPU. ``precision="auto"`` is bf16
on CUDA (fp16 on GPUs without bf16) and fp32 elsewhere; fp16 on the CPU is refused (PyTorch's CPU
fp16 kernels are slow or missing).
"""

from __future__ import annotations

from typing import Tuple

import torch

from ..dinov3 import Backbone, CheckpointError, DinoV3Error, WeightsNotFoundError, load_backbone
from .config import SegmentationConfig
from .errors import EngineError
from .progress import Progress

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> str:
    """A concrete torch device name for ``name`` ("auto", "cpu", "cuda", "cuda:1", "mps")."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EngineError(f"Device '{name}' was asked for, but this PyTorch ({torch.__version__}) sees "
                              "no CUDA GPU. Use device 'auto' or 'cpu', or install a CUDA build of PyTorch.")
        return name
    if name == "mps":
        if not _mps_available():
            raise EngineError("Device 'mps' was asked for, but Apple MPS is not available. Use 'auto' or 'cpu'.")
        return name
    if name == "cpu":
        return name
    raise EngineError(f"Device '{name}' is unknown. Use auto, cpu, cuda or mps.")


def resolve_precision(precision: str, device: str) -> str:
    """The precision to run at ("fp32", "bf16" or "fp16") on ``device``."""
    if precision == "auto":
        if device.startswith("cuda"):
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
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


def load_model(config: SegmentationConfig, progress: Progress) -> Tuple[Backbone, str, str]:
    """Load the backbone for ``config``; returns it with the device and precision used."""
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    progress.info(describe_device(device))
    try:
        backbone = load_backbone(config.model, device=device, dtype=DTYPES[precision],
                                 patch_stride=config.stride, allow_download=config.allow_download,
                                 token=config.token, log=progress.info)
    except (WeightsNotFoundError, CheckpointError, DinoV3Error) as exc:
        message = str(exc)
        if config.token:
            message = message.replace(config.token, "***")
        raise EngineError(message) from exc
    weights = backbone.weights
    progress.info(f"Model: {backbone.variant} (embedding {backbone.embed_dim}, patch {backbone.patch_size}, "
                  f"stride {backbone.patch_stride}), precision {precision}; weights {weights.path} "
                  f"({weights.format}, {weights.tensors_loaded}/{weights.tensors_total} tensors loaded).")
    return backbone, device, precision
