"""Axial 2-D rotary position embedding of DINOv3 (no learned weights), computed in fp32.

Head dims j and j+hd/2 form a rotation pair; pair j < hd/4 turns with the y coordinate, the others with x.
Angles are 2*pi*c/period with c in [-1, 1] at the patch centres ("separate" normalisation per axis).

Performance: the tables are cached per patch grid at full head width (``sin`` = [-sin, sin], ``cos`` =
[cos, cos]), so that :func:`rope_apply_` is four ops (two half-width products into one buffer, then one
multiply-add) instead of six passes over strided halves.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, List, NamedTuple, Optional

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
    (bit-identical: a*cos + b*(-sin) == a*cos - b*sin), rounded once to x's dtype: two half-width
    products into one buffer, then one multiply-add, four ops in all.

    On the CPU with one thread the work goes in cache-sized pieces (a few heads, or a run of tokens of one head), so
    that the four passes hit the L2 cache instead of main memory (2x faster on a ViT-S/16 at 512 px).
    With several threads it is done in one piece: every op is then a parallel region whose barrier waits
    for the slowest thread, and on a busy machine (a thread descheduled) each one costs milliseconds.
    """
    tokens, head_dim = sin.shape
    patches = x[..., x.shape[-2] - tokens:, :]
    if x.device.type != "cpu" or torch.get_num_threads() > 1 or 8 * patches.numel() <= _PIECE_BYTES:
        _rotate(patches, sin, cos)
        return
    heads = max(1, _PIECE_BYTES // (8 * head_dim * tokens))  # fp32 work + rotated: 8 bytes per value
    run = tokens if heads > 1 else max(1, _PIECE_BYTES // (8 * head_dim))
    buffer = torch.empty(_PIECE_BYTES // 4, dtype=torch.float32, device=x.device)
    for block in _head_blocks(patches):  # [heads, HW, hd] views into x
        for h0 in range(0, block.shape[0], heads):
            for t0 in range(0, tokens, run):
                _rotate(block[h0: h0 + heads, t0: t0 + run], sin[t0: t0 + run], cos[t0: t0 + run], buffer)


def _rotate(part: Tensor, sin: Tensor, cos: Tensor, buffer: Optional[Tensor] = None) -> None:
    """The rotation of `part` [..., T, hd] in place (sin/cos [T, hd]); `buffer`: scratch fp32 memory."""
    n, half = part.numel(), sin.shape[-1] // 2
    fp32 = part.dtype == torch.float32
    if buffer is None or buffer.numel() < (1 if fp32 else 2) * n:
        buffer = torch.empty((1 if fp32 else 2) * n, dtype=torch.float32, device=part.device)
    rotated = buffer[:n].view(part.shape)
    work = part if fp32 else buffer[n: 2 * n].view(part.shape).copy_(part)
    torch.mul(work[..., half:], sin[:, :half], out=rotated[..., :half])  # -b*sin
    torch.mul(work[..., :half], sin[:, half:], out=rotated[..., half:])  # a*sin
    work.mul_(cos).add_(rotated)
    if not fp32:
        part.copy_(work)


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
