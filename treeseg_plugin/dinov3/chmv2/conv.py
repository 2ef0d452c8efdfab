"""A convolution with an optional ReLU before it (Meta's `ConvModule` without a norm: its weights sit
under `.conv`, so module names are the decoder checkpoint's keys)."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.functional import relu


class ConvLayer(nn.Module):
    """[B,Cin,H,W] -> [B,Cout,H,W]: (ReLU ->) k x k convolution, padding k // 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 pre_activation: bool = False) -> None:
        super().__init__()
        self.pre_activation = pre_activation
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(relu(x) if self.pre_activation else x)
