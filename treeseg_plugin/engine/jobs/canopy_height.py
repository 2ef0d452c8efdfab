"""Canopy Height's settings (:class:`CanopyHeightConfig`), their check, and what a run produced.

Torch-free: the job interface and the Processing algorithm import it. The shared settings (paths, bands,
extent, precision, tiling) follow Segment Trees' rules, checked by the same code (config.validate_config);
Canopy Height adds the model files and the resolution.

Resolution: CHMv2 was trained at one ground sampling distance (``TRAINING_GSD_M``, 1 m). By default the
input is resampled to it (GDAL "average" when coarsening, bilinear when refining), the model runs on that
grid, and the heights are resampled bilinearly back onto the input's exact grid. ``resolution`` sets
another model grid in metres; 0 runs the model on the input's own pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...dinov3.chmv2.config import HF_REPO_ID, TRAINING_GSD_M
from ..errors import EngineError
from .segmentation import SegmentationConfig, validate_config

NODATA = -9999.0
"""The height raster's NoData value (Float32)."""
MAX_RESOLUTION_M = 100.0


@dataclass
class CanopyHeightConfig:
    """Everything one Canopy Height run needs; see the module docstring for the rules."""

    input_path: str
    output_path: str
    bands: Optional[Sequence[int]] = None
    extent: Optional[Tuple[float, float, float, float]] = None
    model: str = HF_REPO_ID  # Meta's decoder .pth, or a Hugging Face CHMv2 folder / model.safetensors / repo id
    backbone: Optional[str] = None  # with Meta's decoder: the DINOv3 ViT-L/16 SAT-493M backbone
    device: str = "auto"
    precision: str = "auto"
    resolution: float = TRAINING_GSD_M  # metres per model pixel; 0: the input's own pixels
    tile_size: int = 512  # model pixels
    overlap: int = 64
    batch_size: int = 2
    allow_download: bool = False
    token: Optional[str] = field(default=None, repr=False)

    def output_paths(self) -> List[str]:
        """The files this run writes: the height raster (its .qml style travels with it)."""
        return [self.output_path]


def validate_canopy_config(config: CanopyHeightConfig) -> None:
    """Raise :class:`EngineError` naming the first invalid setting or path and how to fix it."""
    validate_config(SegmentationConfig(
        input_path=config.input_path, output_path=config.output_path, bands=config.bands, extent=config.extent,
        model=config.model, device=config.device, precision=config.precision, tile_size=config.tile_size,
        overlap=config.overlap, batch_size=config.batch_size))
    resolution = config.resolution
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not math.isfinite(resolution) \
            or not 0 <= resolution <= MAX_RESOLUTION_M:
        raise EngineError(f"Resolution {resolution!r} is not a number of metres between 0 and {MAX_RESOLUTION_M:g}. "
                          f"Use {TRAINING_GSD_M:g} (CHMv2's training resolution) or 0 (the input's own pixels).")


@dataclass
class CanopyHeightResult:
    """What a run produced (paths are the final destinations)."""

    output_path: str
    style_path: str
    input_resolution_m: Optional[float]  # the input's pixel size in metres (None: unknown, no CRS)
    model_resolution_m: Optional[float]  # the grid the model ran on
    resampled: bool
    valid_pixels: int
    height_min: Optional[float]
    height_mean: Optional[float]
    height_max: Optional[float]
    device: str
    precision: str
    timings_s: Dict[str, float]  # wall seconds per stage (engine/runs/canopy_height.py: STAGES) and "total"
    cpu_s: Dict[str, float]  # process CPU seconds, likewise

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> CanopyHeightResult:
        return cls(**data)
