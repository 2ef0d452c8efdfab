"""Feed-forward layers of the DINOv3 blocks: MLP (exact GELU) and SwiGLU."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.functional import gelu, silu


class Mlp(nn.Module):
    """fc2(GELU(fc1(x))), GELU in its exact (erf) form. [B,N,D] -> [B,N,D]."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(gelu(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """w3(SiLU(w1(x)) * w2(x)). [B,N,D] -> [B,N,D]; the hidden width comes from the checkpoint."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim)
        self.w2 = nn.Linear(dim, hidden_dim)
        self.w3 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.w3(silu(self.w1(x)) * self.w2(x))
