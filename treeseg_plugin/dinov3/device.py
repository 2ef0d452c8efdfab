"""Device and precision choice for inference."""

from __future__ import annotations

from typing import Callable, Union

import torch

DeviceLike = Union[str, torch.device]
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def resolve_device(device: DeviceLike, log: Callable[[str], None] | None = None) -> torch.device:
    """"auto" picks CUDA, then Apple MPS, then CPU (and logs which); otherwise torch.device(device)."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            chosen = torch.device("cuda")
        elif torch.backends.mps.is_available():
            chosen = torch.device("mps")
        else:
            chosen = torch.device("cpu")
        if log:
            log(f"Device 'auto' -> {chosen.type}")
        return chosen
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} requested but MPS is not available; use 'cpu' or 'auto'")
    return chosen


def check_dtype(dtype: torch.dtype, device: torch.device) -> None:
    """float32 and bfloat16 anywhere; float16 only on accelerators (CPU half kernels are slow or absent).

    Low precision is the model's real dtype (weights cast). RoPE runs in fp32 (rope.py); LayerNorm stays
    in the model dtype because PyTorch's layer_norm kernels accumulate its statistics in fp32 for
    bf16/fp16 inputs (tested: within one bf16 ulp of an fp32 LayerNorm).
    """
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"dtype {dtype} not supported; use torch.float32, torch.bfloat16 or torch.float16")
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError("torch.float16 is not supported on CPU; use torch.bfloat16 or torch.float32")
