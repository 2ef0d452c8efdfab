"""CHMv2 (treeseg_plugin.dinov3.chmv2) against transformers' CHMv2ForDepthEstimation (test-only reference),
on random-weight checkpoints in both released layouts; and the released architecture's size."""

from __future__ import annotations

import pytest
import torch
from treeseg.treeseg_plugin.dinov3.chmv2.config import CHMV2_MEAN, CHMV2_STD, HeadConfig
from treeseg.treeseg_plugin.dinov3.chmv2.head import DPTHead
from treeseg.treeseg_plugin.dinov3.chmv2.layout import hf_head_name_to_meta
from treeseg.treeseg_plugin.dinov3.chmv2.loading import load_canopy_height_model
from treeseg.treeseg_plugin.dinov3.variants import VARIANTS
from treeseg.treeseg_plugin.dinov3.vision_transformer import DinoVisionTransformer, ViTConfig

from tests.chmv2_factory import write_hf_chmv2, write_meta_chmv2

transformers = pytest.importorskip("transformers")

SIZES = [(64, 64), (64, 96)]  # square and not (multiples of 16, which transformers needs)
TOLERANCE_M = 1e-4


def _images(height: int, width: int, seed: int = 1) -> torch.Tensor:
    """A normalised [2,3,H,W] batch of random RGB images in [0, 1]."""
    rgb = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(seed))
    mean, std = torch.tensor(CHMV2_MEAN).view(1, 3, 1, 1), torch.tensor(CHMV2_STD).view(1, 3, 1, 1)
    return (rgb - mean) / std


def _reference(model, images: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(pixel_values=images).predicted_depth  # [B,H,W]


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    """An HF CHMv2 folder with a nonzero K bias and eps 1e-6 (as released), and its transformers model."""
    return write_hf_chmv2(tmp_path_factory.mktemp("chmv2-hf") / "model", seed=0)


@pytest.fixture(scope="module")
def both_layouts(tmp_path_factory):
    """One CHMv2 as an HF folder and as Meta's decoder + backbone files (K bias zero, eps 1e-5 as Meta)."""
    root = tmp_path_factory.mktemp("chmv2-both")
    folder, model = write_hf_chmv2(root / "hf", seed=3, k_bias=False, layer_norm_eps=1e-5)
    decoder, backbone = write_meta_chmv2(root / "meta", model)
    return folder, model, decoder, backbone


@pytest.mark.parametrize("size", SIZES)
def test_hf_folder_matches_transformers(hf_pair, size):
    folder, reference = hf_pair
    ours = load_canopy_height_model(folder)
    images = _images(*size)
    expected = _reference(reference, images)
    heights = ours(images)
    assert heights.shape == expected.shape == (2, *size)
    assert heights.dtype == torch.float32
    assert float(expected.std()) > 0.05 and 1 < float(expected.mean()) < 40  # varied, tree-like heights
    assert float((heights - expected).abs().max()) <= TOLERANCE_M


@pytest.mark.parametrize("size", SIZES)
def test_meta_layout_equals_hf_layout(both_layouts, size):
    folder, reference, decoder, backbone = both_layouts
    from_meta = load_canopy_height_model(decoder, backbone=backbone)
    from_hf = load_canopy_height_model(folder)
    images = _images(*size, seed=2)
    meta_heights, hf_heights = from_meta(images), from_hf(images)
    assert float((meta_heights - hf_heights).abs().max()) <= 1e-5
    assert float((meta_heights - _reference(reference, images)).abs().max()) <= TOLERANCE_M


def test_meta_layout_ignores_the_masked_k_bias(hf_pair, tmp_path):
    """Meta's ViT masks the K bias: a Meta backbone with a nonzero one differs from transformers (which adds
    it), so the HF K bias is really used, and Meta's really masked."""
    _, reference = hf_pair
    decoder, backbone = write_meta_chmv2(tmp_path, reference)
    images = _images(64, 64)
    gap = float((load_canopy_height_model(decoder, backbone=backbone)(images) - _reference(reference, images))
                .abs().max())
    assert gap > 10 * TOLERANCE_M


def test_odd_patch_grid_is_resized_to_the_image_as_the_reference_notebook(hf_pair):
    """A 3 x 5 patch grid: the head's maps round up (2 x 3 at 1/2), its output is 64 x 96; like Meta's notebook
    (and transformers' post-processing), the heights are resized bilinearly to the image's 48 x 80."""
    folder, reference = hf_pair
    images = _images(48, 80)
    expected = torch.nn.functional.interpolate(_reference(reference, images).unsqueeze(1), size=(48, 80),
                                               mode="bilinear", align_corners=False).squeeze(1)
    heights = load_canopy_height_model(folder)(images)
    assert float((heights - expected).abs().max()) <= TOLERANCE_M


def test_image_not_a_multiple_of_16_is_padded_and_resized(hf_pair):
    """As the reference: centred zero padding to 64 x 80, then the heights resized to 50 x 70."""
    folder, _ = hf_pair
    model = load_canopy_height_model(folder)
    heights = model(_images(50, 70))
    assert heights.shape == (2, 50, 70)
    assert bool(torch.isfinite(heights).all())


def test_released_architecture_builds_with_the_reference_parameter_count():
    """The real ViT-L/16 SAT-493M + CHMv2 head, on the meta device (no forward, no weights)."""
    sat = VARIANTS["vitl16-sat493m"]
    vit = DinoVisionTransformer(ViTConfig(sat.embed_dim, sat.depth, sat.num_heads, sat.ffn_layer,
                                          sat.ffn_hidden_dim, local_cls_norm=True))
    head = DPTHead(HeadConfig())
    with torch.device("meta"):
        reference = transformers.CHMv2ForDepthEstimation(transformers.CHMv2Config())
    reference_head = {hf_head_name_to_meta(k[len("head."):]): tuple(v.shape)
                      for k, v in reference.state_dict().items() if k.startswith("head.")}
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == reference_head
    head_params = sum(p.numel() for p in head.parameters())
    assert head_params == sum(p.numel() for n, p in reference.named_parameters() if n.startswith("head."))
    vit_params = sum(p.numel() for p in vit.parameters())
    assert round(vit_params / 1e6, 2) == sat.params_millions
    assert 20e6 < head_params < 40e6, head_params


def test_bf16_runs_the_head_in_bf16_and_the_heights_in_fp32(hf_pair):
    """The backbone's precision rule: weights cast to bf16 (the head too); bins to height stays fp32."""
    folder, _ = hf_pair
    fp32, bf16 = load_canopy_height_model(folder), load_canopy_height_model(folder, dtype=torch.bfloat16)
    assert next(bf16.head.parameters()).dtype == torch.bfloat16 and bf16.dtype == torch.bfloat16
    images = _images(64, 96)
    reference, heights = fp32(images), bf16(images)
    assert heights.dtype == torch.float32
    assert float((heights - reference).abs().mean()) < 0.1  # metres, on heights of a few to ~30 m
    assert float(torch.corrcoef(torch.stack([heights.flatten(), reference.flatten()]))[0, 1]) > 0.99


def test_float16_on_the_cpu_is_refused(hf_pair):
    folder, _ = hf_pair
    with pytest.raises(ValueError, match="float16 is not supported on CPU"):
        load_canopy_height_model(folder, dtype=torch.float16)
