"""Axial 2-D rotary position embedding of DINOv3 (no learned weights), computed in fp32.

Head dims j and j+hd/2 form a rotation pair; pair j < hd/4 turns with the y coordinate, the others with x.
Angles are 2*pi*c/period with c in [-1, 1] at the patch centres ("separate" normalisation per axis).

Performance: the tables are cached per patch grid at full head width (``sin`` = [-sin, sin], ``cos`` =
[cos, cos]), so that :func:`rope_apply_` is three passes over contiguous fp32 memory (two half-width
products into one buffer, then one multiply-add) instead of six passes over strided halves.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, List, NamedTuple

import torch
from torch import Tensor, nn

_CACHE_SIZE = 8  # distinct (rows, cols, stride) grids kept


class RopeTables(NamedTuple):
    """fp32 [HW, hd] tables of one patch grid: sin = [-sin, sin], cos = [cos, cos] (angles [HW, hd/2])."""

    sin: Tensor
    cos: Tensor


def rope_periods(head_dim: int, base: float = 100.0) -> Tensor:
    """[hd/4] fp32 periods base**(4i/hd), computed as transformers does (1 / inv_freq, fp32), on the CPU.

    The device is explicit: under a ``torch.device("meta")`` context a meta ``arange`` goes through
    torch._refs, which imports torch._dynamo (seconds of start-up).
    """
    inv_freq = 1 / base ** torch.arange(0, 1, 4 / head_dim, dtype=torch.float32, device="cpu")
    return 1 / inv_freq


def patch_centre_coords(n: int, stride: int, patch_size: int) -> Tensor:
    """[n] fp32 coordinates in [-1, 1] of the centres of n patches of size p placed every s pixels.

    c_i = (i*s + p/2) / ((n-1)*s + p), mapped by 2c-1. For s == p this is exactly the official
    (i + 0.5) / n: numerator and denominator are the same reals scaled by p, both exact in fp32.
    """
    centres = torch.arange(n, dtype=torch.float32, device="cpu") * stride + patch_size / 2
    return 2.0 * (centres / ((n - 1) * stride + patch_size)) - 1.0


def rope_apply_(x: Tensor, sin: Tensor, cos: Tensor) -> None:
    """Rotate the trailing HW tokens of x [..., N, hd] in place, in fp32 (RopeTables sin/cos: [HW, hd]).

    Same arithmetic as the official ``x*cos + rotate_half(x)*sin`` with rotate_half([a, b]) = [-b, a]
    (bit-identical: a*cos + b*(-sin) == a*cos - b*sin), rounded once to x's dtype. The work goes in
    cache-sized pieces (a few heads, or a run of tokens of one head): the four passes over a piece then
    hit the L2 cache instead of main memory (3-4x faster on a ViT-S/16 at 512 px).
    """
    tokens, head_dim = sin.shape
    patches = x[..., x.shape[-2] - tokens :, :]
    fp32 = patches.dtype == torch.float32
    heads = max(1, _PIECE_BYTES // (8 * head_dim * tokens))  # fp32 work + rotated: 8 bytes per value
    run = tokens if heads > 1 else max(1, _PIECE_BYTES // (8 * head_dim))
    half = head_dim // 2
    buffer = torch.empty(0, dtype=torch.float32, device=x.device)
    for block in _head_blocks(patches):  # [heads, HW, hd] views into x
        for h0 in range(0, block.shape[0], heads):
            for t0 in range(0, tokens, run):
                piece = block[h0 : h0 + heads, t0 : t0 + run]
                s, c = sin[t0 : t0 + run], cos[t0 : t0 + run]
                n = piece.numel()
                if buffer.numel() < 2 * n:
                    buffer = torch.empty(2 * n, dtype=torch.float32, device=x.device)
                rotated = buffer[:n].view(piece.shape)
                work = piece if fp32 else buffer[n : 2 * n].view(piece.shape).copy_(piece)
                torch.mul(work[..., half:], s[:, :half], out=rotated[..., :half])  # -b*sin
                torch.mul(work[..., :half], s[:, half:], out=rotated[..., half:])  # a*sin
                work.mul_(c).add_(rotated)
                if not fp32:
                    piece.copy_(work)


_PIECE_BYTES = 1 << 20  # fp32 values + rotated buffer per piece: well inside a 2 MB L2


def _head_blocks(t: Tensor) -> List[Tensor]:
    """t [..., HW, hd] as [heads, HW, hd] views: one per index of all leading dims but the last."""
    if t.dim() == 2:
        return [t.unsqueeze(0)]
    if t.dim() == 3:
        return [t]
    return [block for sub in t.unbind(0) for block in _head_blocks(sub)]


class RopePositionEmbedding(nn.Module):
    """sin/cos tables (fp32, :class:`RopeTables`) for a grid of rows x cols patches, cached per grid and stride.

    `periods` [hd/4] is a persistent buffer (it is part of Meta checkpoints). It stays fp32 on `.to(dtype)`
    (only its device follows), and moving the module clears the cache.
    """

    def __init__(self, head_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        # Computed on the CPU, then moved to the device the module is built on (meta inside the ViT).
        self.register_buffer("periods", rope_periods(head_dim).to(torch.empty(0).device))
        self._cache: OrderedDict[tuple, RopeTables] = OrderedDict()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> RopePositionEmbedding:
        periods = self.periods
        super()._apply(fn, recurse)
        self.periods = periods.to(device=self.periods.device)  # keep fp32 values, follow the device
        self._cache.clear()
        return self

    def forward(self, rows: int, cols: int, stride: int) -> RopeTables:
        # Inference tensors cannot be used in autograd, so they are cached apart from ordinary ones.
        key = (rows, cols, stride, torch.is_inference_mode_enabled())
        tables = self._cache.pop(key, None)  # pop and re-insert: least recently used first
        if tables is None:
            tables = self._tables(rows, cols, stride)
        self._cache[key] = tables
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return tables

    def _tables(self, rows: int, cols: int, stride: int) -> RopeTables:
        ys = patch_centre_coords(rows, stride, self.patch_size)
        xs = patch_centre_coords(cols, stride, self.patch_size)
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1)  # [HW, 2] (y, x)
        coords = coords.to(self.periods.device)
        angles = 2 * math.pi * coords[:, :, None] / self.periods[None, None, :]  # [HW, 2, hd/4]
        angles = angles.flatten(1, 2)  # [HW, hd/2]: y frequencies, then x frequencies
        sin, cos = torch.sin(angles), torch.cos(angles)
        return RopeTables(torch.cat([-sin, sin], dim=-1), torch.cat([cos, cos], dim=-1))
