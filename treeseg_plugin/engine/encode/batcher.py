"""The one tile batcher, for the DINOv3 backbone's encoding and for CHMv2's heights: read each tile, prepare
its model input, run the model on batches of tiles of one shape, and hand each tile's output to a consumer.

Decisions:

* A tile is read with ``border`` extra pixels on every side; an ``examine`` function may look at the bordered
  validity and skip the tile (returns None) or return what the consumer needs beside the output.
* Model input (:func:`model_input`, the inner tile): normalised with the model's ``mean`` and ``std``, invalid
  pixels (and NaN) at the mean (0 after normalising); valid pixels outside the working window are real
  context and are kept.
* Tiles wait per shape. A shape's tiles run as soon as :attr:`TileBatcher.batch_size` of them wait, and the
  rest once its last tile is read; the sizes are checked again after every batch, since an out-of-memory
  retry may have halved the batch size and no shape may keep more tiles than that waiting. A shape's batches
  are its tiles in order, cut into batch-size pieces, whatever the order tiles of other shapes come in.
* Out of memory (CUDA, MPS or the CPU allocator) during a forward pass: the allocator's cache is emptied, the
  batch is halved (logged) and the same tiles run again; the smaller batch is kept for the rest of the run.
  Out of memory with one tile per batch stops the run with a message that suggests a smaller tile size, a
  lower precision or the CPU.
* Cancel is checked, and progress reported, per tile. The model runs at its own dtype (the precision).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch

from ..errors import EngineError, is_out_of_memory
from ..progress import Progress, check_canceled
from ..raster.georef import Window
from ..raster.pixels import RasterSource
from .tiling import Tile

Forward = Callable[[np.ndarray], np.ndarray]  # model inputs [B, 3, h, w] -> one output per tile [B, ...]
Examine = Callable[[Tile, np.ndarray], Optional[Any]]  # (tile, bordered validity) -> None to skip the tile
Consume = Callable[[Tile, Any, np.ndarray], None]  # (tile, what examine returned, the tile's output)
Pending = Dict[Tuple[int, int], List[Tuple[Tile, np.ndarray, Any]]]


class TileModel(Protocol):
    """What the batcher needs to know of a model (the Backbone and CanopyHeightModel both have it)."""

    device: torch.device
    dtype: torch.dtype
    mean: Sequence[float]
    std: Sequence[float]


def model_input(rgb: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A model's input [3, h, w] from RGB in 0..1 [3, h, w] and validity [h, w]: normalised by ``mean`` and
    ``std`` ([3, 1, 1]), with invalid pixels (and any NaN) at the mean, i.e. 0."""
    x = (rgb - mean) / std
    x[:, ~valid] = 0.0
    return np.nan_to_num(x, copy=False, nan=0.0)


def release_cached_memory(device: torch.device) -> None:
    """Give the allocator's cached blocks back, so that a retry with a smaller batch can use them."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        mps = getattr(torch, "mps", None)
        if mps is not None and hasattr(mps, "empty_cache"):
            mps.empty_cache()


class TileBatcher:
    """Runs ``forward`` of ``model`` on the tiles of ``window`` of ``source`` in batches of one shape.

    ``tile_px`` (width, height) and ``other_models`` (whether a smaller model exists) word the message when
    even one tile does not fit in memory."""

    def __init__(self, model: TileModel, forward: Forward, source: RasterSource, window: Window,
                 batch_size: int, tile_px: Tuple[int, int], border: int = 0, other_models: bool = True) -> None:
        self.model, self.forward = model, forward
        self.source, self.window = source, window
        self.batch_size = batch_size
        self.tile_px, self.border, self.other_models = tile_px, border, other_models
        self._mean = np.asarray(model.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(model.std, dtype=np.float32).reshape(3, 1, 1)
        self.skipped = 0
        self.halvings = 0  # times the batch was halved after running out of memory
        self.seconds = {"prepare": 0.0, "model": 0.0, "store": 0.0}  # wall-clock time spent per step

    def _prepare(self, tile: Tile, examine: Optional[Examine]) -> Optional[Tuple[np.ndarray, Any]]:
        """The tile's model input and what ``examine`` said of it, or None when it is skipped."""
        border = self.border
        height, width = tile.shape
        rgb, valid = self.source.read(self.window.x0 + tile.col.origin - border,
                                      self.window.y0 + tile.row.origin - border,
                                      width + 2 * border, height + 2 * border)
        kept = examine(tile, valid) if examine is not None else True
        if kept is None:
            return None
        inner = (slice(border, border + height), slice(border, border + width))
        return model_input(rgb[(slice(None), *inner)], valid[inner], self._mean, self._std), kept

    def _encode(self, batch: np.ndarray, progress: Progress) -> np.ndarray:
        """Outputs of ``batch``, in sub-batches of at most :attr:`batch_size` tiles, halving it on OOM."""
        parts: List[np.ndarray] = []
        start = 0
        while start < len(batch):
            size = min(self.batch_size, len(batch) - start)
            try:
                parts.append(self.forward(batch[start:start + size]))
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                failed = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            else:
                start += size
                continue
            # Outside the except block: the exception's frames (and their tensors) are gone.
            release_cached_memory(self.model.device)
            if size == 1:
                raise EngineError(self._oom_message(failed))
            self.batch_size = size // 2
            self.halvings += 1
            progress.warning(f"Out of memory on {self.model.device} with {size} tiles per batch; "
                             f"retrying with {self.batch_size}.")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _oom_message(self, failed: str) -> str:
        device, dtype = self.model.device, self.model.dtype
        precision = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, dtype)
        lower = "" if precision != "fp32" else " or a lower PRECISION (bf16, or fp16 on a GPU)"
        smaller = ", a smaller model" if self.other_models else ""
        cpu = "" if device.type == "cpu" else ", or DEVICE cpu (slower, but limited by RAM only)"
        width, height = self.tile_px
        return (f"The model ran out of memory on {device} even with one {width} x {height} px tile per batch "
                f"({precision}; {failed}). Use a smaller TILE_SIZE{lower}{smaller}{cpu}, or close other "
                f"programs using the {device.type.upper()} memory.")

    def _run_batch(self, batch: List[Tuple[Tile, np.ndarray, Any]], consume: Consume, progress: Progress) -> None:
        tick = time.perf_counter()
        outputs = self._encode(np.stack([x for _, x, _ in batch]), progress)
        self.seconds["model"] += time.perf_counter() - tick
        tick = time.perf_counter()
        for (tile, _, kept), output in zip(batch, outputs):
            consume(tile, kept, output)
        self.source.flush()
        self.seconds["store"] += time.perf_counter() - tick

    def _flush(self, pending: Pending, complete: Callable[[Tuple[int, int]], bool], consume: Consume,
               progress: Progress) -> None:
        """Run batches of :attr:`batch_size` waiting tiles of one shape while a shape has that many (all its
        waiting tiles once it is ``complete``), checking the sizes again after each batch."""
        while True:
            ready = [batch for shape, batch in pending.items()
                     if len(batch) >= self.batch_size or (batch and complete(shape))]
            if not ready:
                return
            chunk = ready[0][:self.batch_size]
            del ready[0][:len(chunk)]
            self._run_batch(chunk, consume, progress)

    def run(self, tiles: Sequence[Tile], consume: Consume, progress: Progress, report: Callable[[float], None],
            examine: Optional[Examine] = None) -> None:
        """Run the model on every tile that ``examine`` keeps (all without it), in the order of ``tiles``
        within each shape; count the skipped ones in :attr:`skipped`."""
        unread = Counter(tile.shape for tile in tiles)
        pending: Pending = {}
        for done, tile in enumerate(tiles, start=1):
            check_canceled(progress)
            tick = time.perf_counter()
            prepared = self._prepare(tile, examine)
            self.seconds["prepare"] += time.perf_counter() - tick
            unread[tile.shape] -= 1
            if prepared is None:
                self.skipped += 1
            else:
                pending.setdefault(tile.shape, []).append((tile, *prepared))
            self._flush(pending, lambda shape: unread[shape] == 0, consume, progress)
            report(done / len(tiles))
