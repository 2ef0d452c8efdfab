"""Patch embedding: a p x p convolution whose stride may be smaller than p (overlapping, denser patches)."""

from __future__ import annotations

from torch import Tensor, nn


def grid_size(height: int, width: int, patch_size: int, stride: int) -> tuple[int, int]:
    """Rows and columns of patches the convolution produces: ((H-p)//s + 1, (W-p)//s + 1)."""
    if height < patch_size or width < patch_size:
        raise ValueError(f"image {height}x{width} is smaller than one {patch_size}x{patch_size} patch")
    return (height - patch_size) // stride + 1, (width - patch_size) // stride + 1


class PatchEmbed(nn.Module):
    """[B,3,H,W] -> ([B,H'W',D], (H', W')) with H' = (H-p)//s + 1."""

    def __init__(self, embed_dim: int, patch_size: int, stride: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.proj(x)  # [B,D,H',W']
        rows, cols = x.shape[-2:]
        return x.flatten(2).transpose(1, 2), (rows, cols)
