"""DPT fusion: pre-activation residual conv units and the block that merges a coarser map with a skip."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn
from torch.nn.functional import interpolate

from .conv import ConvLayer


class PreActResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), 3x3 convolutions with bias (CHMv2: `use_bias=True`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, pre_activation=True)
        self.conv2 = ConvLayer(channels, channels, 3, pre_activation=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class FeatureFusionBlock(nn.Module):
    """[B,C,h,w] (+ skip [B,C,h',w'], resized to h x w when it differs) -> [B,C,2h,2w].

    out = project(up2(unit2(x + unit1(skip)))); the first block (coarsest map) has no skip and no unit1.
    """

    def __init__(self, channels: int, has_skip: bool) -> None:
        super().__init__()
        self.project = ConvLayer(channels, channels, 1)
        self.res_conv_unit1 = PreActResidualConvUnit(channels) if has_skip else None
        self.res_conv_unit2 = PreActResidualConvUnit(channels)

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        if skip is not None:
            if skip.shape != x.shape:
                skip = interpolate(skip, size=x.shape[2:], mode="bilinear", align_corners=False)
            x = x + self.res_conv_unit1(skip)
        x = self.res_conv_unit2(x)
        x = interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.project(x)
