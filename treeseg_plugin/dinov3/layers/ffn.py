"""Feed-forward layers of the DINOv3 blocks: MLP (exact GELU) and SwiGLU.

For inference only (the Backbone runs every forward under ``torch.inference_mode``): the activations
run in place on the first projection's output, which saves one [B, N, hidden] tensor (the largest in a
block) per layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.functional import gelu, silu

_gelu_ = getattr(torch._C._nn, "gelu_", None)  # in-place exact GELU (aten::gelu_); absent: out of place


class Mlp(nn.Module):
    """fc2(GELU(fc1(x))), GELU in its exact (erf) form. [B,N,D] -> [B,N,D]."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.fc1(x)
        if _gelu_ is not None:
            _gelu_(hidden)
        else:
            hidden = gelu(hidden)
        return self.fc2(hidden)


class SwiGLUFFN(nn.Module):
    """w3(SiLU(w1(x)) * w2(x)). [B,N,D] -> [B,N,D]; the hidden width comes from the checkpoint."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim)
        self.w2 = nn.Linear(dim, hidden_dim)
        self.w3 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate = silu(self.w1(x), inplace=True)
        return self.w3(gate.mul_(self.w2(x)))
