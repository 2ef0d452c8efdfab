"""CHMv2 (Brandt et al. 2026, arXiv 2603.06382): the released model's constants and the head's shape.

Facts from facebookresearch/dinov3 (`hub/depthers.py` `dinov3_vitl16_chmv2`, `eval/depth/models/`,
`notebooks/chmv2_inference.ipynb`) and transformers' `models/chmv2/`:

* backbone: DINOv3 ViT-L/16 SAT-493M; the DPT head takes blocks 6, 12, 18, 24 (indices 5, 11, 17, 23),
  each normed with the backbone's final LayerNorm, with its class token (readout "project");
* head: reassemble (factors 4, 2, 1, 1/2 to channels 128, 256, 512, 1024), 256-channel fusion, an
  upsampling conv head with 128 hidden channels and 256 height bins, no projection after fusion;
* bins to height: "mixlog" bins between 0.001 m and 96 m / 8, weights relu(logits) normalised, times 8;
* input: RGB in [0, 1] normalised with CHMv2's own mean (0.420, 0.411, 0.296) and std
  (0.213, 0.156, 0.143): the mean's red differs from SAT-493M's 0.430;
* LayerNorm epsilon: Meta's ViT-L ("layernormbf16") uses 1e-5; transformers' CHMv2 config sets 1e-6.
  Each format runs with its own value (Meta: 1e-5, Hugging Face: config.json).

Imports nothing but the standard library (the Processing provider describes the model without torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

CHMV2_MEAN = (0.420, 0.411, 0.296)
CHMV2_STD = (0.213, 0.156, 0.143)
MIN_HEIGHT_M = 0.001
MAX_HEIGHT_M = 96.0
MIXLOG_SCALE = 8.0  # the bins span max_height / 8; heights are multiplied back by 8
REASSEMBLE_FACTORS = (4, 2, 1, 0.5)
TRAINING_GSD_M = 1.0
"""Ground sampling distance CHMv2 works at, in metres; Canopy Height resamples the input to it by default.
Sources (README, Canopy Height > Resolution): the paper's abstract calls CHMv2 a meter-resolution map
trained against ALS canopy height models, and the released map (facebookresearch/dinov3
notebooks/chmv2_dataset_exploration.ipynb) is on Web Mercator zoom-17 pixels, 1.194 m at the equator and
1.194 m x cos(latitude) on the ground (1.0 m at 33 degrees, 0.9 m at 40). Neither states the imagery's own
pixel size in training; 1 m is the figure both agree on."""

BACKBONE_VARIANT = "vitl16-sat493m"
DECODER_SHA8 = "3703d643"
DECODER_FILENAME = f"dinov3_vitl16_chmv2_dpt_head-{DECODER_SHA8}.pth"
HF_REPO_ID = "facebook/dinov3-vitl16-chmv2-dpt-head"
HF_REPO_NAME = HF_REPO_ID.split("/")[1]  # also its folder's name in the weights folder
WEIGHTS_NAME = "chmv2"  # its entry in the Weights manager (beside the backbones' variant names)
HEAD_PARAMS_MILLIONS = 33.7  # the released DPT head's parameters (HeadConfig's defaults)
CHMV2_DOWNLOAD_FORM = "https://ai.meta.com/resources/models-and-libraries/chmv2-downloads/"
DISPLAY_NAME = "CHMv2 (DINOv3 ViT-L/16 SAT-493M + DPT head)"


@dataclass(frozen=True)
class HeadConfig:
    """Shape of a CHMv2 DPT head (inferred from its tensors; the defaults are the released head)."""

    embed_dim: int = 1024  # D of the backbone
    post_process_channels: Tuple[int, int, int, int] = (128, 256, 512, 1024)
    channels: int = 256  # fusion width
    hidden_channels: int = 128  # of the upsampling conv head
    n_bins: int = 256
    min_height: float = MIN_HEIGHT_M
    max_height: float = MAX_HEIGHT_M

    def describe(self) -> str:
        return (f"D={self.embed_dim}, reassemble {list(self.post_process_channels)}, fusion {self.channels}, "
                f"{self.n_bins} bins {self.min_height:g}-{self.max_height:g} m")


def out_layers(depth: int) -> Tuple[int, ...]:
    """Blocks the head reads: every quarter of the depth (ViT-L: 5, 11, 17, 23, as `dinov3_vitl16_chmv2`)."""
    if depth < 4 or depth % 4:
        raise ValueError(f"a CHMv2 head needs a backbone whose depth is a multiple of 4, not {depth}")
    return tuple((i + 1) * (depth // 4) - 1 for i in range(4))
