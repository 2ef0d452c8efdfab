"""CHMv2 forward time: the DINOv3 ViT-L/16 backbone (four normed intermediate layers) and the whole model
(backbone + DPT head + mixlog) on one 512 x 512 tile, random weights (no gated files, no loading).

The real architecture (ViT-L/16 SAT-493M + the released head's shape) is built on the meta device and filled
with random tensors (LayerNorm weights 1, everything else N(0, 0.02)): timing does not depend on the values.
Interleaved rounds (bench_common), medians in wall-clock and process CPU seconds.

    .venv/bin/python scripts/bench_chmv2.py                      # fp32, 3 rounds, CPU
    .venv/bin/python scripts/bench_chmv2.py --device cuda --precision bf16 --rounds 10
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench_common import DTYPES, describe_machine, interleaved  # noqa: E402

from treeseg_plugin.dinov3.backbone import Backbone  # noqa: E402
from treeseg_plugin.dinov3.chmv2.config import (  # noqa: E402
    BACKBONE_VARIANT,
    CHMV2_MEAN,
    CHMV2_STD,
    HeadConfig,
    out_layers,
)
from treeseg_plugin.dinov3.chmv2.head import DPTHead  # noqa: E402
from treeseg_plugin.dinov3.chmv2.model import CanopyHeightModel, HeadWeightsInfo  # noqa: E402
from treeseg_plugin.dinov3.variants import VARIANTS  # noqa: E402
from treeseg_plugin.dinov3.vision_transformer import DinoVisionTransformer, ViTConfig  # noqa: E402
from treeseg_plugin.dinov3.weights import WeightsInfo  # noqa: E402


def random_fill(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Replace every meta tensor with a random one (RoPE periods: their real values; bias masks and LayerNorm
    weights: ones)."""
    state = {}
    for name, tensor in module.state_dict().items():
        if name.endswith("rope_embed.periods"):
            value = 100.0 ** (4 * torch.arange(tensor.numel(), dtype=torch.float32) / (4 * tensor.numel()))
        elif name.endswith("bias_mask") or ("norm" in name and name.endswith("weight")):
            value = torch.ones(tensor.shape)
        else:
            value = torch.randn(tensor.shape) * 0.02
        state[name] = value.to(device, torch.float32 if name.endswith("periods") else dtype)
    module.load_state_dict(state, strict=True, assign=True)
    module.requires_grad_(False).eval()


TINY_VIT = ViTConfig(embed_dim=64, depth=4, num_heads=2, ffn_layer="mlp", ffn_hidden_dim=256)
TINY_HEAD = HeadConfig(embed_dim=64, post_process_channels=(16, 32, 64, 64), channels=32, hidden_channels=16,
                       n_bins=32)


def build(device: torch.device, dtype: torch.dtype, tiny: bool = False) -> CanopyHeightModel:
    """The released architecture (or a tiny one, for smoke runs) with random weights."""
    sat = VARIANTS[BACKBONE_VARIANT]
    vit_config = TINY_VIT if tiny else ViTConfig(sat.embed_dim, sat.depth, sat.num_heads, sat.ffn_layer,
                                                 sat.ffn_hidden_dim, local_cls_norm=True)
    vit, head = DinoVisionTransformer(vit_config), DPTHead(TINY_HEAD if tiny else HeadConfig())
    random_fill(vit, device, dtype)
    random_fill(head, device, dtype)
    weights = WeightsInfo(Path("random"), "meta-pth", 0, 0, "sat493m")
    backbone = Backbone(vit, "custom" if tiny else sat.name, weights, CHMV2_MEAN, CHMV2_STD).eval()
    return CanopyHeightModel(backbone, head, out_layers(vit_config.depth), HeadWeightsInfo("random", "meta-pth", 0, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=list(DTYPES))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.precision]
    model = build(device, dtype)
    images = torch.randn(1, 3, args.size, args.size, device=device)
    samples = interleaved({
        "backbone": lambda: model.backbone.get_intermediate_layers(images, n=list(model.out_layers), reshape=True,
                                                                   return_class_token=True),
        "backbone + head": lambda: model(images),
    }, rounds=args.rounds, warmup=1, device=device)
    print(f"{datetime.date.today()} {describe_machine()}")
    print(f"CHMv2 (ViT-L/16 + DPT head), 1 x {args.size}^2, {args.precision} on {args.device}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds:")
    for name, sample in samples.items():
        print(f"  {name:16s} wall {sample.wall_median:7.2f} s   process CPU {sample.cpu_median:7.2f} s")
    head = samples["backbone + head"].wall_median - samples["backbone"].wall_median
    print(f"  head + mixlog    wall {head:7.2f} s (difference of the medians)")


if __name__ == "__main__":
    main()
