"""The Fit Cluster Model job's settings (:class:`ClusterFitConfig`), their check, and its result.

One model is fitted on patch features sampled across several rasters (engine/runs/fit.py runs it).
The settings are Segment Trees' (:class:`FitSettings`: model, stride, K, tiling, sampling), so
:meth:`ClusterFitConfig.for_raster` gives each input the SegmentationConfig that reads and encodes it, and
the settings are checked by the same rules (``validate_settings``). Imports no torch: the job is built and
checked in QGIS's process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List

from ..errors import EngineError
from .results import SweepResult
from .segmentation import (
    CLUSTER_MODEL_EXTENSION,
    FitSettings,
    SegmentationConfig,
    check_output_path,
    fit_settings,
    validate_cluster_model_paths,
    validate_settings,
)


@dataclass
class ClusterFitConfig(FitSettings):
    """Fit one cluster model on ``input_paths`` and save it to ``output_path`` (a .tscm file)."""

    input_paths: List[str]
    output_path: str

    def output_paths(self) -> List[str]:
        """The one file this job writes."""
        return [self.output_path]

    def for_raster(self, input_path: str) -> SegmentationConfig:
        """The Segment Trees settings that read and encode ``input_path`` as this fit does."""
        return SegmentationConfig(input_path, "", **fit_settings(self))


def validate_fit_config(config: ClusterFitConfig) -> None:
    """Raise :class:`EngineError` naming the first invalid input, output or setting."""
    inputs = config.input_paths
    if not isinstance(inputs, list) or not inputs or not all(isinstance(p, str) and p for p in inputs):
        raise EngineError("No input rasters given. Choose one or more orthophotos to fit the cluster model on.")
    if len({os.path.abspath(p) for p in inputs}) != len(inputs):
        raise EngineError("An input raster is listed twice. Give each raster once.")
    if not config.output_path:
        raise EngineError("No output path given. Choose where to save the cluster model (.tscm).")
    validate_cluster_model_paths(None, config.output_path)
    check_output_path(config.output_path, CLUSTER_MODEL_EXTENSION, inputs, "one of the input rasters")
    validate_settings(config.for_raster(""))


@dataclass
class ClusterFitResult(SweepResult):
    """What a fit produced: the model file, the chosen K, the sweep, and what each input gave."""

    inputs: List[Dict[str, Any]]  # {"path", "valid_patches", "sampled"} per input, in input order
    timings_s: Dict[str, float]  # wall seconds per stage (engine/runs/fit.py: STAGES) and "total"
    cpu_s: Dict[str, float]  # process CPU seconds, likewise
