"""Device and precision choice for inference."""

from __future__ import annotations

from typing import Callable, Tuple, Union

import torch

DeviceLike = Union[str, torch.device]
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
NATIVE_BF16_CAPABILITY = (8, 0)  # Ampere; Volta (7.0) and Turing (7.5) emulate bf16, slower than fp16


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: DeviceLike, log: Callable[[str], None] | None = None) -> torch.device:
    """"auto" picks CUDA, then Apple MPS, then CPU (and logs which); otherwise "cpu", "cuda", "cuda:N" or
    "mps", refused with a ValueError that says what to choose when this PyTorch cannot run it."""
    name = str(device).strip().lower()
    if name == "auto":
        chosen = torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu")
        if log:
            log(f"Device 'auto' -> {chosen.type}")
        return chosen
    try:
        chosen = torch.device(name)
    except RuntimeError:
        raise ValueError(f"Device '{name}' is unknown. Use auto, cpu, cuda or mps.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device '{name}' was asked for, but this PyTorch ({torch.__version__}) sees no CUDA "
                         "GPU. Use device 'auto' or 'cpu', or install a CUDA build of PyTorch.")
    if chosen.type == "mps" and not mps_available():
        raise ValueError(f"Device '{name}' was asked for, but Apple MPS is not available. Use 'auto' or 'cpu'.")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Device '{name}' is unknown. Use auto, cpu, cuda or mps.")
    return chosen


def cuda_capability(device: DeviceLike) -> Tuple[int, int]:
    """The compute capability (major, minor) of the CUDA device ``device`` names ("cuda": the current one)."""
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    return int(major), int(minor)


def native_bf16(capability: Tuple[int, int]) -> bool:
    """Whether a CUDA GPU of compute ``capability`` runs bf16 in hardware. ``torch.cuda.is_bf16_supported()``
    also counts emulated bf16 (Volta, Turing), and looks at the current device only."""
    return tuple(capability) >= NATIVE_BF16_CAPABILITY


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
