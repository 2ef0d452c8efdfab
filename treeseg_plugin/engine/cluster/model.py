"""The cluster model: what a fit produced, enough to label any raster like the one it was fitted on.

A :class:`ClusterModel` holds the centroids, the WCSS table, the identity of the backbone that made the
features, the band choice and stretch of the input, and the legend (label order, colours, names).
:mod:`.cluster_model_file` stores it pickle-free (docs/cluster-model.md); this module also says what
differs between a model and a run (:func:`input_differences`, :func:`backbone_differences`), so a model
is refused before any encoding when it cannot apply, and how the run's encoding differs from the fit's
(:func:`encoding_notes`: precision and tiling change the features a little, so they are warned about).
No torch here: a client that only reads or checks models needs numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from ..errors import EngineError
from ..raster.palette import Legend
from ..raster.pixels import Stretch

FEATURE_NORMALISATION = "l2"
"""Patch features are L2-normalised per patch before clustering (engine/encode/features.py)."""


@dataclass(frozen=True)
class BackboneIdentity:
    """What makes two runs' features comparable: the architecture, the weights, the stride, the input scaling."""

    variant: str
    embed_dim: int
    patch_size: int
    patch_stride: int
    weights_sha256: Optional[str]  # None when the weights were not read from one file
    weights_format: str
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]


@dataclass(frozen=True)
class InputBands:
    """The input's band choice and value scaling: Byte bands / 255, the others by their stretch."""

    bands: Tuple[int, int, int]  # raster bands used as R, G, B (a grey band repeated)
    band_count: int  # bands of the raster(s) the model was fitted on
    stretch: Dict[int, Stretch]  # the non-Byte bands' 2-98 % stretch, by band number


@dataclass(frozen=True)
class FitInput:
    """One raster of the fit: its file name, valid patches and the rows it gave to the fit sample."""

    name: str
    valid_patches: int
    sampled: int


@dataclass(frozen=True)
class Encoding:
    """How the fit's features were computed besides the backbone's identity: the device, the precision and
    the tiling (a ViT's patch features depend on the tile around each patch)."""

    device: str  # as resolved: "cpu", "cuda", "cuda:1", "mps"
    precision: str  # "fp32" | "bf16" | "fp16"
    tile_size: int
    overlap: int
    working_resolution: float = 0.0  # ground metres per pixel encoded; 0: each raster's own (files without it)


@dataclass(frozen=True)
class FitRecord:
    """How the model was fitted (kept for the report and the run's comparison; not used to label)."""

    k_mode: str  # "fixed" | "automatic"
    k_min: int
    k_max: int
    elbow_threshold: float
    seed: int
    max_samples: int
    inputs: Tuple[FitInput, ...]
    treeseg_version: str
    encoding: Optional[Encoding] = None  # None: saved before TreeSeg recorded it

    @property
    def samples(self) -> int:
        """Rows of the fit sample."""
        return sum(item.sampled for item in self.inputs)

    @property
    def valid_patches(self) -> int:
        """Valid patches the sample was drawn from."""
        return sum(item.valid_patches for item in self.inputs)


@dataclass(frozen=True)
class ClusterModel:
    """A fitted clustering; label ``i + 1`` is ``centroids[i]`` and has ``legend.colors[i]``."""

    centroids: np.ndarray  # [K, D] float32, biggest cluster on the fit sample first
    wcss: Dict[int, float]  # the sweep's WCSS per K
    wcss_drop: Dict[int, float]  # percent drop from K to K+1 (-inf: an increase from 0)
    backbone: BackboneIdentity
    input: InputBands
    legend: Legend
    fit: FitRecord
    sha256: Optional[str] = None  # the file's checksum, when read from a file

    what: ClassVar[str] = "cluster model"

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def encoding(self) -> Optional[Encoding]:
        """How the fit's features were computed (None: saved before TreeSeg recorded it)."""
        return self.fit.encoding


class Fitted(Protocol):
    """What applying a fitted file checks against a run: a cluster model, or a classifier
    (engine/classify/model.py); ``what`` names it in messages."""

    what: ClassVar[str]
    backbone: BackboneIdentity
    input: InputBands

    @property
    def encoding(self) -> Optional[Encoding]:
        """How the fit's features were computed (None: not recorded)."""


def backbone_identity(backbone: Any, with_sha256: bool = True) -> BackboneIdentity:
    """The identity of a loaded :class:`~treeseg_plugin.dinov3.Backbone` (hashing its weights file)."""
    weights = backbone.weights
    sha = weights.sha256() if with_sha256 and weights.path and weights.path.is_file() else None
    return BackboneIdentity(str(backbone.variant), int(backbone.embed_dim), int(backbone.patch_size),
                            int(backbone.patch_stride), sha, str(weights.format),
                            tuple(float(v) for v in backbone.mean), tuple(float(v) for v in backbone.std))


def _stretched(stretch: Dict[int, Stretch]) -> str:
    return ", ".join(str(b) for b in sorted(stretch)) or "none"


def input_differences(model: Fitted, band_count: int, bands: Sequence[int],
                      stretched: Sequence[int]) -> List[str]:
    """What differs between the model's input and a raster with ``band_count`` bands, using ``bands`` as
    RGB, whose bands ``stretched`` are not Byte; empty when the model applies."""
    ours = model.input
    differences = []
    if band_count != ours.band_count:
        differences.append(f"band count: the model was fitted on rasters with {ours.band_count} bands, this "
                           f"raster has {band_count}")
    if tuple(bands) != ours.bands:
        differences.append(f"bands: the model uses bands {list(ours.bands)} as RGB, this run {list(bands)}")
    if sorted(set(stretched)) != sorted(ours.stretch):
        differences.append(f"band types: the model stretches (non-Byte) bands {_stretched(ours.stretch)}, this "
                           f"raster's non-Byte bands are {', '.join(map(str, sorted(set(stretched)))) or 'none'}")
    return differences


def backbone_differences(model: Fitted, run: BackboneIdentity) -> List[str]:
    """What differs between the backbone the model was fitted with and this run's; empty when equal."""
    ours = model.backbone
    differences = []
    if (ours.variant, ours.embed_dim, ours.patch_size) != (run.variant, run.embed_dim, run.patch_size):
        differences.append(f"backbone: the model was fitted with {ours.variant} (embedding {ours.embed_dim}, patch "
                           f"{ours.patch_size}), this run uses {run.variant} (embedding {run.embed_dim}, patch "
                           f"{run.patch_size})")
    elif ours.weights_sha256 != run.weights_sha256:
        differences.append(f"weights: the model was fitted with weights of SHA-256 {_short(ours.weights_sha256)}, "
                           f"this run's weights have {_short(run.weights_sha256)}")
    if ours.patch_stride != run.patch_stride:
        differences.append(f"patch stride: the model was fitted at stride {ours.patch_stride}, this run uses "
                           f"{run.patch_stride}")
    if (ours.mean, ours.std) != (run.mean, run.std):
        differences.append(f"normalisation: the model's mean/std {ours.mean}/{ours.std}, this run's "
                           f"{run.mean}/{run.std}")
    return differences


def encoding_notes(model: Fitted, run: Encoding) -> Tuple[List[str], List[str]]:
    """(warnings, notes) on how this run's encoding differs from the fit's: precision and tiling change the
    features, so labels may differ from the fit's; the device alone changes only rounding."""
    fitted, what = model.encoding, model.what
    if fitted is None:
        return [], [f"The {what} does not record the precision and tiling it was fitted with (saved by an "
                    "older TreeSeg), so they cannot be compared with this run's."]
    warnings, notes = [], []
    if fitted.precision != run.precision:
        warnings.append(
            f"The {what} was fitted on {fitted.precision} features, this run computes {run.precision} "
            "features: they differ slightly, so pixels near a cluster boundary may get another label than the fit "
            f"would give. For the same labels set Precision to {fitted.precision}, or fit the model again in "
            f"{run.precision}.")
    if (fitted.tile_size, fitted.overlap) != (run.tile_size, run.overlap):
        warnings.append(
            f"The {what} was fitted on tiles of {fitted.tile_size} px with {fitted.overlap} px overlap, this "
            f"run uses {run.tile_size} px with {run.overlap} px: a patch's features depend on the tile around it, so "
            f"labels may shift, most near tile edges. For the same labels set Tile size {fitted.tile_size} and "
            f"Overlap {fitted.overlap}, or fit the model again with this run's tiling.")
    if fitted.working_resolution != run.working_resolution:
        warnings.append(
            f"The {what} was fitted at {_resolution(fitted.working_resolution)}, this run encodes at "
            f"{_resolution(run.working_resolution)}: a patch covers another ground area, so its features, and the "
            f"labels, differ. For the labels the model was meant to give set Working resolution to "
            f"{fitted.working_resolution:g}, or fit the model again at this run's.")
    if fitted.device != run.device and fitted.precision == run.precision:
        notes.append(f"The {what} was fitted on {fitted.device}, this run runs on {run.device}: at the same "
                     "precision the features agree up to rounding.")
    return warnings, notes


def _resolution(metres: float) -> str:
    return f"a working resolution of {metres:g} m" if metres else "the rasters' own resolution"


def _short(sha: Optional[str]) -> str:
    return f"{sha[:12]}..." if sha else "unknown (not one file)"


def refuse_mismatch(path: str, differences: Sequence[str], what: str = "cluster model") -> None:
    """Raise :class:`EngineError` naming every difference between the ``what`` at ``path`` and the run."""
    if differences:
        noun = what.split()[-1]  # "model", "classifier"
        raise EngineError(f"The {what} '{path}' does not fit this run: {'; '.join(differences)}. Run with "
                          f"the backbone, weights, patch stride and bands the {noun} was fitted with, or fit a new "
                          f"{noun} for this input.")
