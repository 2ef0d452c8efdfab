"""Axial 2-D rotary position embedding of DINOv3 (no learned weights), computed in fp32.

Head dims j and j+hd/2 form a rotation pair; pair j < hd/4 turns with the y coordinate, the others with x.
Angles are 2*pi*c/period with c in [-1, 1] at the patch centres ("separate" normalisation per axis).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import torch
from torch import Tensor, nn

_CACHE_SIZE = 8  # distinct (rows, cols, stride) grids kept


def rope_periods(head_dim: int, base: float = 100.0) -> Tensor:
    """[hd/4] fp32 periods base**(4i/hd), computed as transformers does (1 / inv_freq, fp32)."""
    inv_freq = 1 / base ** torch.arange(0, 1, 4 / head_dim, dtype=torch.float32)
    return 1 / inv_freq


def patch_centre_coords(n: int, stride: int, patch_size: int) -> Tensor:
    """[n] fp32 coordinates in [-1, 1] of the centres of n patches of size p placed every s pixels.

    c_i = (i*s + p/2) / ((n-1)*s + p), mapped by 2c-1. For s == p this is exactly the official
    (i + 0.5) / n: numerator and denominator are the same reals scaled by p, both exact in fp32.
    """
    centres = torch.arange(n, dtype=torch.float32) * stride + patch_size / 2
    return 2.0 * (centres / ((n - 1) * stride + patch_size)) - 1.0


def rope_apply_(x: Tensor, sin: Tensor, cos: Tensor) -> None:
    """Rotate the trailing HW tokens of x [..., N, hd] in place, in fp32; sin/cos: [HW, hd/2] fp32."""
    patches = x[..., x.shape[-2] - sin.shape[0] :, :]
    work = patches.float()  # the patches themselves in fp32 models, an fp32 copy otherwise
    x1, x2 = work.chunk(2, dim=-1)
    x1_sin, x2_sin = x1 * sin, x2 * sin
    # Same arithmetic as the official x*cos + rotate_half(x)*sin, rotate_half([a, b]) = [-b, a]:
    x1.mul_(cos).sub_(x2_sin)  # a*cos - b*sin
    x2.mul_(cos).add_(x1_sin)  # b*cos + a*sin
    if work is not patches:
        patches.copy_(work)


class RopePositionEmbedding(nn.Module):
    """sin/cos tables [HW, hd/2] (fp32) for a grid of rows x cols patches, cached per grid and stride.

    `periods` [hd/4] is a persistent buffer (it is part of Meta checkpoints). It stays fp32 on `.to(dtype)`
    (only its device follows), and moving the module clears the cache.
    """

    def __init__(self, head_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.register_buffer("periods", rope_periods(head_dim))
        self._cache: OrderedDict[tuple[int, int, int, bool], tuple[Tensor, Tensor]] = OrderedDict()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> RopePositionEmbedding:
        periods = self.periods
        super()._apply(fn, recurse)
        self.periods = periods.to(device=self.periods.device)  # keep fp32 values, follow the device
        self._cache.clear()
        return self

    def forward(self, rows: int, cols: int, stride: int) -> tuple[Tensor, Tensor]:
        # Inference tensors cannot be used in autograd, so they are cached apart from ordinary ones.
        key = (rows, cols, stride, torch.is_inference_mode_enabled())
        tables = self._cache.pop(key, None)  # pop and re-insert: least recently used first
        if tables is None:
            tables = self._tables(rows, cols, stride)
        self._cache[key] = tables
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return tables

    def _tables(self, rows: int, cols: int, stride: int) -> tuple[Tensor, Tensor]:
        ys = patch_centre_coords(rows, stride, self.patch_size)
        xs = patch_centre_coords(cols, stride, self.patch_size)
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1)  # [HW, 2] (y, x)
        coords = coords.to(self.periods.device)
        angles = 2 * math.pi * coords[:, :, None] / self.periods[None, None, :]  # [HW, 2, hd/4]
        angles = angles.flatten(1, 2)  # [HW, hd/2]: y frequencies, then x frequencies
        return torch.sin(angles), torch.cos(angles)
