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
  the tile's kept patches; it is skipped when none of them is valid. Reading, model input, batching and
  the out-of-memory back-off are the tile batcher's (engine/encode/batcher.py).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch

from ..errors import EngineError
from ..progress import Progress
from ..raster.georef import Window
from ..raster.pixels import RasterSource
from ..raster.staging import temporary_prefix
from .batcher import TileBatcher
from .tiling import SUPPORT_PX, Tile, TilePlan, cell_valid_fraction

VALID_FRACTION = 0.5
_CHUNK_BYTES = 16 * 1024 * 1024  # rows mapped at once when counting or sampling: bounds the RSS bump


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

    def valid_flags(self) -> np.ndarray:
        """Which patches are valid for the fit, bool ``[rows, cols]``."""
        flags = self._valid_rows(0, self.rows, "r")
        out = np.array(flags, dtype=bool)
        del flags
        return out

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Features of the patches ``(rows[i], cols[i])``, float32 ``[n, dim]``, one patch row mapped at a time."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for row in np.unique(rows):
            at = np.flatnonzero(rows == row)
            out[at] = self.read(int(row), int(row) + 1, 0, self.cols)[0, cols[at]]
        return out

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
    """Runs the backbone on the tiles of a plan (through a :class:`~.batcher.TileBatcher`) and writes the kept
    patches into a :class:`FeatureStore`."""

    def __init__(self, backbone, source: RasterSource, window: Window, plan: TilePlan,
                 store: FeatureStore, batch_size: int) -> None:
        self.backbone = backbone
        self.plan = plan
        self.store = store
        self.batcher = TileBatcher(backbone, self._forward, source, window, batch_size,
                                   (plan.tile_width, plan.tile_height), border=SUPPORT_PX)

    @property
    def skipped(self) -> int:
        """Tiles without a valid pixel in their kept patches' support, not encoded."""
        return self.batcher.skipped

    def _keep(self, tile: Tile, valid: np.ndarray) -> Optional[np.ndarray]:
        """Kept-patch fit-validity from the tile's validity with a :data:`SUPPORT_PX` border, or None when no
        pixel a kept patch's label depends on is valid (the tile is skipped)."""
        plan = self.plan
        top, left = tile.row.origin - SUPPORT_PX, tile.col.origin - SUPPORT_PX
        r0, r1 = tile.row.support(plan.stride, plan.height)
        c0, c1 = tile.col.support(plan.stride, plan.width)
        if not valid[r0 - top:r1 - top, c0 - left:c1 - left].any():
            return None
        return cell_valid_fraction(valid, top, left, plan, tile) > VALID_FRACTION

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

    def _store(self, tile: Tile, valid: np.ndarray, tokens: np.ndarray) -> None:
        s = self.plan.stride
        rr = slice(tile.row.keep_start - tile.row.origin // s, tile.row.keep_stop - tile.row.origin // s)
        cc = slice(tile.col.keep_start - tile.col.origin // s, tile.col.keep_stop - tile.col.origin // s)
        self.store.write(tile.row.keep_start, tile.col.keep_start, tokens[rr, cc], valid)

    def run(self, progress: Progress, report: Callable[[float], None]) -> None:
        """Encode every tile, in batches of tiles of one shape; count the skipped ones in :attr:`skipped`."""
        tiles = self.plan.tiles
        self.batcher.run(tiles, self._store, progress, report, examine=self._keep)
        encoded = len(tiles) - self.skipped
        if encoded:
            spent = self.batcher.seconds
            progress.info(f"Encoding time: model {spent['model']:.1f} s ({spent['model'] / encoded:.2f} s per tile), "
                          f"reading and preparing tiles {spent['prepare']:.1f} s, storing features "
                          f"{spent['store']:.1f} s.")
