"""The CHMv2 canopy height model: DINOv3 backbone -> four normed intermediate layers -> DPT head -> mixlog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.functional import interpolate, pad

from ..backbone import Backbone
from .config import CHMV2_MEAN, CHMV2_STD, HeadConfig
from .head import DPTHead
from .mixlog import bins_to_height


@dataclass(frozen=True)
class HeadWeightsInfo:
    """What was loaded for the head (the backbone's own WeightsInfo is `backbone.weights`)."""

    path: str
    format: str  # "meta-pth" | "hf-safetensors"
    tensors_loaded: int
    tensors_total: int
    sha256: Optional[str] = None  # checked against the name's 8-digit prefix when the name carries one


def center_padding(size: int, multiple: int) -> Tuple[int, int]:
    """(before, after) zero padding that brings `size` up to a multiple of `multiple`, centred."""
    extra = -size % multiple
    return extra // 2, extra - extra // 2


class CanopyHeightModel(nn.Module):
    """[B,3,H,W] images normalised with `mean`/`std` -> canopy height [B,H,W] in metres (fp32).

    As the reference (`dinov3_vitl16_chmv2` + its notebook): images are zero-padded, centred, to a multiple
    of 16; the height map of the padded image is resized bilinearly to H x W. Images whose sides are
    multiples of 16 are neither padded nor resized. The head runs in the backbone's dtype; the bins-to-height
    step in fp32.
    """

    def __init__(self, backbone: Backbone, head: DPTHead, out_layers: Tuple[int, ...],
                 head_weights: HeadWeightsInfo) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.out_layers = out_layers
        self.head_weights = head_weights
        self.mean = CHMV2_MEAN
        self.std = CHMV2_STD

    @property
    def config(self) -> HeadConfig:
        return self.head.config

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.dtype

    @torch.inference_mode()
    def forward(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        patch = self.backbone.patch_size
        (top, bottom), (left, right) = center_padding(height, patch), center_padding(width, patch)
        if top or bottom or left or right:
            images = pad(images, (left, right, top, bottom))
        features = self.backbone.get_intermediate_layers(
            images, n=list(self.out_layers), reshape=True, return_class_token=True, norm=True
        )  # 4 x (patches [B,D,h,w], cls [B,D])
        heights = bins_to_height(self.head(features), self.config.min_height, self.config.max_height)
        if heights.shape[-2:] != (height, width):
            heights = interpolate(heights.unsqueeze(1), size=(height, width), mode="bilinear",
                                  align_corners=False).squeeze(1)
        return heights
