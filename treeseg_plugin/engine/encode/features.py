"""Patch features on disk: encoding tiles into a float16 memmap and sampling valid patches for the fit.

Decisions:

* Features are L2-normalised per patch and stored as float16 in ``features.f16`` ``[rows, cols, D]``
  on the global patch grid, with a ``valid.u8`` ``[rows, cols]`` flag (cell more than half valid).
  Both live in a hidden temporary folder (the destination's folder, so huge rasters use the disk the
  user chose) that :meth:`FeatureStore.close` always removes.
* The files are allocated up front (``posix_fallocate`` where available), so a full disk fails
  cleanly instead of crashing on a memory-mapped write.
* Every access maps only the rows it needs (a short-lived ``np.memmap``), so resident memory does not
  grow with the raster; only the files do. Patches of skipped tiles stay all-zero and invalid.
* A tile is read with a 16 px border so that the skip test sees every pixel whose label depends on
  the tile's kept patches; it is skipped when none of them is valid.
* Model input: invalid pixels (and NaN) are set to the normalisation mean (0 after normalising);
  valid pixels outside the working window are real context and are kept.
* Out of memory (CUDA, MPS or the CPU allocator) during a forward pass: the allocator's cache is
  emptied, the batch is halved (logged) and the same tiles are encoded again; the smaller batch is kept
  for the rest of the run. Out of memory with one tile per batch stops the run with a message that
  suggests a smaller tile size, a lower precision or the CPU.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import EngineError, is_out_of_memory
from ..progress import Progress, check_canceled
from ..raster.georef import Window
from ..raster.pixels import RasterSource
from ..raster.staging import temporary_prefix
from .tiling import SUPPORT_PX, Tile, TilePlan, cell_valid_fraction

VALID_FRACTION = 0.5
_CHUNK_BYTES = 16 * 1024 * 1024  # rows mapped at once when counting or sampling: bounds the RSS bump


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


def _reserve(fd: int, nbytes: int) -> None:
    """Allocate the file's blocks now where the OS can, so a full disk fails here and not in a mapped write."""
    if not hasattr(os, "posix_fallocate") or nbytes == 0:
        return
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise  # other errors: the file system cannot preallocate; carry on with a sparse file


class FeatureStore:
    """Float16 features ``[rows, cols, dim]`` and uint8 fit-validity ``[rows, cols]`` in a temp folder."""

    def __init__(self, folder: Optional[str], rows: int, cols: int, dim: int) -> None:
        self.rows, self.cols, self.dim = rows, cols, dim
        try:
            self.folder = tempfile.mkdtemp(prefix=temporary_prefix("features"), dir=folder)
        except OSError as exc:
            raise EngineError(f"Cannot create a temporary folder in '{folder}': {exc}. Choose an output "
                              "folder you can write to.") from exc
        self._features = os.path.join(self.folder, "features.f16")
        self._valid = os.path.join(self.folder, "valid.u8")
        try:
            for path, nbytes in ((self._features, rows * cols * dim * 2), (self._valid, rows * cols)):
                with open(path, "wb") as handle:
                    handle.truncate(nbytes)
                    _reserve(handle.fileno(), nbytes)
        except OSError as exc:
            self.close()
            raise EngineError(f"Cannot create the feature file ({rows * cols * dim * 2 / 1e9:.2f} GB) in "
                              f"'{self.folder}': {exc}. Free disk space or use a larger stride.") from exc

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _feature_rows(self, r0: int, r1: int, mode: str) -> np.memmap:
        offset = r0 * self.cols * self.dim * 2
        return np.memmap(self._features, dtype=np.float16, mode=mode, offset=offset,
                         shape=(r1 - r0, self.cols, self.dim))

    def _valid_rows(self, r0: int, r1: int, mode: str) -> np.memmap:
        return np.memmap(self._valid, dtype=np.uint8, mode=mode, offset=r0 * self.cols,
                         shape=(r1 - r0, self.cols))

    def write(self, r0: int, c0: int, features: np.ndarray, valid: np.ndarray) -> None:
        """Store a block of features ``[h, w, dim]`` and fit-validity ``[h, w]`` at patch (r0, c0)."""
        h, w = valid.shape
        block = self._feature_rows(r0, r0 + h, "r+")
        block[:, c0:c0 + w] = features
        del block  # unmapped; the OS writes the pages back when it likes
        flags = self._valid_rows(r0, r0 + h, "r+")
        flags[:, c0:c0 + w] = valid
        del flags

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Features of patches ``[r0, r1) x [c0, c1)`` as float32."""
        block = self._feature_rows(r0, r1, "r")
        out = np.array(block[:, c0:c1], dtype=np.float32)
        del block
        return out

    def _row_chunks(self) -> List[Tuple[int, int]]:
        step = max(1, _CHUNK_BYTES // max(1, self.cols * self.dim * 2))
        return [(r, min(self.rows, r + step)) for r in range(0, self.rows, step)]

    def count_valid(self) -> int:
        """Number of patches valid for the fit."""
        total = 0
        for r0, r1 in self._row_chunks():
            flags = self._valid_rows(r0, r1, "r")
            total += int(np.count_nonzero(flags))
            del flags
        return total

    def sample(self, count: int, seed: int) -> np.ndarray:
        """At most ``count`` valid patch features drawn uniformly without replacement, float32 ``[m, dim]``."""
        total = self.count_valid()
        m = min(count, total)
        ranks = np.sort(np.random.default_rng(seed).choice(total, size=m, replace=False))
        out = np.empty((m, self.dim), dtype=np.float32)
        seen = 0
        for r0, r1 in self._row_chunks():
            flags = self._valid_rows(r0, r1, "r")
            positions = np.flatnonzero(flags)
            del flags
            lo, hi = np.searchsorted(ranks, [seen, seen + positions.size])
            picked = positions[ranks[lo:hi] - seen]
            seen += positions.size
            if picked.size:
                block = self._feature_rows(r0, r1, "r").reshape(-1, self.dim)
                out[lo:hi] = block[picked]
                del block
        return out

    def close(self) -> None:
        """Remove the temporary folder and its files."""
        shutil.rmtree(self.folder, ignore_errors=True)


class TileEncoder:
    """Runs the backbone on batches of tiles and writes the kept patches into a :class:`FeatureStore`."""

    def __init__(self, backbone, source: RasterSource, window: Window, plan: TilePlan,
                 store: FeatureStore, batch_size: int) -> None:
        self.backbone = backbone
        self.source = source
        self.window = window
        self.plan = plan
        self.store = store
        self.batch_size = batch_size
        self._mean = np.asarray(backbone.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(backbone.std, dtype=np.float32).reshape(3, 1, 1)
        self.skipped = 0
        self.halvings = 0  # times the batch was halved after running out of memory
        self.seconds = {"prepare": 0.0, "model": 0.0, "store": 0.0}  # wall-clock time spent per step
        self._progress: Optional[Progress] = None

    def _prepare(self, tile: Tile) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Model input ``[3, th, tw]`` and kept-patch fit-validity, or None when the tile is skipped."""
        plan, border = self.plan, SUPPORT_PX
        top, left = tile.row.origin - border, tile.col.origin - border
        height, width = tile.shape
        rgb, valid = self.source.read(self.window.x0 + left, self.window.y0 + top,
                                      width + 2 * border, height + 2 * border)
        r0, r1 = tile.row.support(plan.stride, plan.height)
        c0, c1 = tile.col.support(plan.stride, plan.width)
        if not valid[r0 - top:r1 - top, c0 - left:c1 - left].any():
            return None
        fraction = cell_valid_fraction(valid, top, left, plan, tile)
        inner = (slice(border, border + height), slice(border, border + width))
        x = model_input(rgb[(slice(None), *inner)], valid[inner], self._mean, self._std)
        return x, fraction > VALID_FRACTION

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Normalised patch features [B, rows, cols, D] (float16) of the tiles ``batch`` [B, 3, H, W]."""
        bb = self.backbone
        x = torch.from_numpy(batch).to(device=bb.device, dtype=bb.dtype)
        tokens = bb.forward_features(x)["x_norm_patchtokens"].float()  # forward_features: inference_mode
        if not bool(torch.isfinite(tokens).all()):
            raise EngineError("The model produced non-finite features (overflow). Use precision fp32 or "
                              "bf16 instead of fp16.")
        tokens = torch.nn.functional.normalize(tokens, dim=-1)
        rows, cols = bb.grid_size(batch.shape[2], batch.shape[3])
        return tokens.reshape(len(batch), rows, cols, -1).to(torch.float16).cpu().numpy()

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        """Features of ``batch``, in sub-batches of at most :attr:`batch_size` tiles, halving it on OOM."""
        parts: List[np.ndarray] = []
        start = 0
        while start < len(batch):
            size = min(self.batch_size, len(batch) - start)
            try:
                parts.append(self._forward(batch[start:start + size]))
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                failed = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            else:
                start += size
                continue
            # Outside the except block: the exception's frames (and their tensors) are gone.
            release_cached_memory(self.backbone.device)
            if size == 1:
                raise EngineError(self._oom_message(failed))
            self.batch_size = size // 2
            self.halvings += 1
            if self._progress is not None:
                self._progress.warning(f"Out of memory on {self.backbone.device} with {size} tiles per batch; "
                                       f"retrying with {self.batch_size}.")
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _oom_message(self, failed: str) -> str:
        bb, plan = self.backbone, self.plan
        precision = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(bb.dtype, bb.dtype)
        lower = "" if precision != "fp32" else " or a lower PRECISION (bf16, or fp16 on a GPU)"
        device = "" if bb.device.type == "cpu" else ", or DEVICE cpu (slower, but limited by RAM only)"
        return (f"The model ran out of memory on {bb.device} even with one {plan.tile_width} x {plan.tile_height} "
                f"px tile per batch ({precision}; {failed}). Use a smaller TILE_SIZE{lower}, a smaller model"
                f"{device}, or close other programs using the {bb.device.type.upper()} memory.")

    def _store(self, tile: Tile, tokens: np.ndarray, valid: np.ndarray) -> None:
        s = self.plan.stride
        rr = slice(tile.row.keep_start - tile.row.origin // s, tile.row.keep_stop - tile.row.origin // s)
        cc = slice(tile.col.keep_start - tile.col.origin // s, tile.col.keep_stop - tile.col.origin // s)
        self.store.write(tile.row.keep_start, tile.col.keep_start, tokens[rr, cc], valid)

    def _encode_and_store(self, batch: List[Tuple[Tile, np.ndarray, np.ndarray]]) -> None:
        tick = time.perf_counter()
        tokens = self._encode(np.stack([x for _, x, _ in batch]))
        self.seconds["model"] += time.perf_counter() - tick
        tick = time.perf_counter()
        for (tile, _, valid), tile_tokens in zip(batch, tokens):
            self._store(tile, tile_tokens, valid)
        self.source.flush()
        self.seconds["store"] += time.perf_counter() - tick

    def _flush(self, pending: Dict[Tuple[int, int], List[Tuple[Tile, np.ndarray, np.ndarray]]],
                everything: bool) -> None:
        """Encode batches of :attr:`batch_size` pending tiles of one shape while a shape has that many (every
        pending tile when ``everything``). The sizes are checked again after each batch: an out-of-memory
        retry may have halved the batch size, and no shape may keep more tiles than that waiting."""
        while True:
            ready = [batch for batch in pending.values() if len(batch) >= self.batch_size or (everything and batch)]
            if not ready:
                return
            chunk = ready[0][:self.batch_size]
            del ready[0][:len(chunk)]
            self._encode_and_store(chunk)

    def run(self, progress: Progress, report: Callable[[float], None]) -> None:
        """Encode every tile, in batches of tiles of one shape; count the skipped ones in :attr:`skipped`."""
        self._progress = progress
        tiles = self.plan.tiles
        pending: Dict[Tuple[int, int], List[Tuple[Tile, np.ndarray, np.ndarray]]] = {}
        for done, tile in enumerate(tiles, start=1):
            check_canceled(progress)
            tick = time.perf_counter()
            prepared = self._prepare(tile)
            self.seconds["prepare"] += time.perf_counter() - tick
            if prepared is None:
                self.skipped += 1
            else:
                pending.setdefault(tile.shape, []).append((tile, *prepared))
            self._flush(pending, everything=done == len(tiles))
            report(done / len(tiles))
        encoded = len(tiles) - self.skipped
        if encoded:
            spent = self.seconds
            progress.info(f"Encoding time: model {spent['model']:.1f} s ({spent['model'] / encoded:.2f} s per tile), "
                          f"reading and preparing tiles {spent['prepare']:.1f} s, storing features "
                          f"{spent['store']:.1f} s.")
