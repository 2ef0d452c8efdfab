"""Patch embedding: a p x p convolution whose stride may be smaller than p (overlapping, denser patches)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.functional import conv2d


def grid_size(height: int, width: int, patch_size: int, stride: int) -> tuple[int, int]:
    """Rows and columns of patches the convolution produces: ((H-p)//s + 1, (W-p)//s + 1)."""
    if height < patch_size or width < patch_size:
        raise ValueError(f"image {height}x{width} is smaller than one {patch_size}x{patch_size} patch")
    return (height - patch_size) // stride + 1, (width - patch_size) // stride + 1


class PatchEmbed(nn.Module):
    """[B,3,H,W] -> ([B,H'W',D], (H', W')) with H' = (H-p)//s + 1.

    On the CPU the convolution runs channels-last (oneDNN's faster layout for 3 input channels; the
    tokens then come out as [B,H',W',D] without a transpose). Same values as the plain layout.
    """

    def __init__(self, embed_dim: int, patch_size: int, stride: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        if x.device.type == "cpu":
            last = torch.channels_last
            proj = self.proj
            x = conv2d(x.contiguous(memory_format=last), proj.weight.contiguous(memory_format=last), proj.bias,
                       proj.stride)  # [B,D,H',W'] in channels-last memory
            rows, cols = x.shape[-2:]
            return x.permute(0, 2, 3, 1).flatten(1, 2), (rows, cols)
        x = self.proj(x)  # [B,D,H',W']
        rows, cols = x.shape[-2:]
        return x.flatten(2).transpose(1, 2), (rows, cols)
