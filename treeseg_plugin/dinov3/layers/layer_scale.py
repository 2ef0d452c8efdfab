"""LayerScale: per-channel scaling of a residual branch (gamma: [D])."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.empty(dim))  # only ever built on the meta device, filled by loading

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma
