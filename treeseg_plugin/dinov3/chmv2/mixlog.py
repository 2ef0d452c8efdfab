"""CHMv2's "mixlog" step: height-bin logits -> canopy height in metres (always computed in fp32)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .config import MIXLOG_SCALE

_MAX_SHIFT = 1e-4
_SHIFT_EPS = 1e-8
_EPS = 1e-12


def mixlog_bins(min_height: float, max_height: float, n_bins: int, device: torch.device) -> Tensor:
    """[N] bin centres from min_height to max_height / 8, blended from log spacing (first bin) to linear
    spacing (last bin)."""
    top = max_height / MIXLOG_SCALE
    linear = torch.linspace(min_height, top, n_bins, device=device)
    log = torch.exp(torch.linspace(math.log(min_height), math.log(top), n_bins, device=device))
    log_share = torch.linspace(1.0, 0.0, n_bins, device=device)
    return log_share * log + (1.0 - log_share) * linear


def bins_to_height(logits: Tensor, min_height: float, max_height: float) -> Tensor:
    """[B,N,H,W] logits -> [B,H,W] heights (m): bins weighted by relu(logits) + a tiny positive shift,
    normalised to sum to one, times 8."""
    logits = logits.float()
    weights = torch.relu(logits)
    shift = (-weights.amin(dim=1, keepdim=True)).clamp(0.0, _MAX_SHIFT) + _SHIFT_EPS
    weights = weights + shift
    total = torch.nan_to_num(weights.sum(dim=1, keepdim=True), nan=1.0, posinf=1.0, neginf=1.0).clamp_min(_EPS)
    bins = mixlog_bins(min_height, max_height, logits.shape[1], logits.device).clamp_min(_EPS)
    height = (weights / total * bins.view(1, -1, 1, 1)).sum(dim=1).clamp_min(_EPS)
    return height * MIXLOG_SCALE
