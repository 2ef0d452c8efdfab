"""The CHMv2 DPT head (Meta's `DPTHead` as configured by `dinov3_vitl16_chmv2`): module names are the keys
of Meta's decoder checkpoint."""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from .config import HeadConfig
from .conv import ConvLayer
from .fusion import FeatureFusionBlock
from .reassemble import ReassembleBlocks


class UpConvHead(nn.Module):
    """[B,C,H,W] -> bin logits [B,N,2H,2W]: conv3x3 C->C/2, 2x bilinear, conv3x3 -> hidden, ReLU, conv1x1 -> N."""

    def __init__(self, channels: int, n_bins: int, hidden_channels: int) -> None:
        super().__init__()
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(channels // 2, hidden_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, n_bins, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x)


class DPTHead(nn.Module):
    """Four (patches [B,D,h,w], cls [B,D]) -> height-bin logits [B,N,16h,16w].

    Reassemble to 4h, 2h, h, h/2; a 3x3 conv (no bias) to C channels each; fuse from the coarsest map up
    (each block doubles the size: h/2 -> 8h); the conv head doubles once more.
    Built on the meta device: it holds no values until a checkpoint is loaded (chmv2.loading).
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        with torch.device("meta"):
            self.reassemble_blocks = ReassembleBlocks(config.embed_dim, config.post_process_channels)
            self.convs = nn.ModuleList(ConvLayer(c, config.channels, 3, bias=False)
                                       for c in config.post_process_channels)
            self.fusion_blocks = nn.ModuleList(FeatureFusionBlock(config.channels, has_skip=i > 0)
                                               for i in range(len(config.post_process_channels)))
            self.conv_depth = UpConvHead(config.channels, config.n_bins, config.hidden_channels)

    def forward(self, features: Sequence[Tuple[Tensor, Tensor]]) -> Tensor:
        maps = [conv(x) for conv, x in zip(self.convs, self.reassemble_blocks(features))]  # [B,C,.,.] x 4
        out = self.fusion_blocks[0](maps[-1])
        for block, skip in zip(self.fusion_blocks[1:], reversed(maps[:-1])):
            out = block(out, skip)
        return self.conv_depth(out)
