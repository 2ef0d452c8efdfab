"""DPT reassemble stage: ViT tokens of four blocks -> feature maps at 4x, 2x, 1x and 1/2x the patch grid."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn

from .config import REASSEMBLE_FACTORS
from .conv import ConvLayer


def _resize(channels: int, factor: float) -> nn.Module:
    """Transposed conv k=s=factor to upsample, identity at 1, a 3x3 stride-2 conv to halve."""
    if factor > 1:
        return nn.ConvTranspose2d(channels, channels, kernel_size=int(factor), stride=int(factor))
    if factor == 1:
        return nn.Identity()
    return nn.Conv2d(channels, channels, kernel_size=3, stride=int(1 / factor), padding=1)


class ReassembleBlocks(nn.Module):
    """(patches [B,D,h,w], cls [B,D]) x 4 -> [B,C_i,h*f_i,w*f_i] with readout "project":
    each patch token is concatenated with the class token and projected back to D (Linear 2D->D, GELU)."""

    def __init__(self, embed_dim: int, out_channels: Sequence[int]) -> None:
        super().__init__()
        self.projects = nn.ModuleList(ConvLayer(embed_dim, c, kernel_size=1) for c in out_channels)
        self.resize_layers = nn.ModuleList(_resize(c, f) for c, f in zip(out_channels, REASSEMBLE_FACTORS))
        self.readout_projects = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * embed_dim, embed_dim), nn.GELU()) for _ in out_channels
        )

    def forward(self, features: Sequence[Tuple[Tensor, Tensor]]) -> List[Tensor]:
        out = []
        for i, (patches, cls) in enumerate(features):
            batch, dim, rows, cols = patches.shape
            tokens = patches.flatten(2).transpose(1, 2)  # [B,hw,D]
            readout = cls.unsqueeze(1).expand_as(tokens)  # [B,hw,D]
            tokens = self.readout_projects[i](torch.cat((tokens, readout), dim=-1))  # [B,hw,D]
            patches = tokens.transpose(1, 2).reshape(batch, dim, rows, cols)
            out.append(self.resize_layers[i](self.projects[i](patches)))
        return out
