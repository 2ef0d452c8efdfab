"""Numerical parity of treeseg_plugin.dinov3 with transformers' DINOv3ViTModel (test-only reference).

The same random weights are written as HF files (loaded by both) and as a Meta .pth (loaded by us).
"""

from __future__ import annotations

import pytest
import torch
from treeseg.treeseg_plugin.dinov3 import load_backbone

from tests.checkpoint_factory import (
    get_config,
    hf_periods,
    make_state_dict,
    released_periods,
    write_hf_folder,
    write_meta_pth,
)

transformers = pytest.importorskip("transformers")

TOL = 1e-5
PRESETS = ["vits16", "vits16plus", "tiny", "tiny-swiglu-nobias"]
SIZES = [(224, 224), (192, 320)]  # square and non-square (H, W)


def _images(height: int, width: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _hf_model(folder):
    transformers.logging.set_verbosity_error()
    model, info = transformers.DINOv3ViTModel.from_pretrained(
        folder, attn_implementation="sdpa", output_loading_info=True
    )
    assert not any(info.values()), info  # every HF weight came from the file
    return model.eval().float()


class Pair:
    """One preset's random weights, written as an HF folder, loaded by us and by transformers."""

    def __init__(self, preset: str, folder) -> None:
        self.preset = preset
        self.sd = make_state_dict(preset, seed=3, periods="hf")
        self.folder = write_hf_folder(folder, self.sd, preset)
        self.ours = load_backbone(self.folder)
        self.hf = _hf_model(self.folder)
        self.batch = 2 if preset.startswith("tiny") else 1  # keep ViT-S-sized forwards cheap


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    cache = {}

    def get(preset: str) -> Pair:
        if preset not in cache:
            cache[preset] = Pair(preset, tmp_path_factory.mktemp(preset))
        return cache[preset]

    return get


def _hf_forward(model, x):
    with torch.inference_mode():
        return model(pixel_values=x, output_hidden_states=True)


def _all_tokens(out: dict) -> torch.Tensor:
    return torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], 1)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("preset", PRESETS)
def test_matches_transformers(pairs, preset, size):
    """All tokens of forward_features and of intermediate blocks (asked out of block order) within 1e-5."""
    pair = pairs(preset)
    x = _images(*size)[: pair.batch]
    ref = _hf_forward(pair.hf, x)
    assert ref.last_hidden_state.abs().max() > 1  # outputs are not trivially small

    out = pair.ours.forward_features(x)
    rows, cols = size[0] // 16, size[1] // 16
    assert out["x_norm_patchtokens"].shape == (pair.batch, rows * cols, get_config(preset).embed_dim)
    assert out["x_storage_tokens"].shape[1] == 4
    assert (_all_tokens(out) - ref.last_hidden_state).abs().max() <= TOL
    assert (out["x_prenorm"] - ref.hidden_states[-1]).abs().max() <= TOL

    depth = pair.ours.depth
    blocks = [depth - 1, 0, depth // 2]
    outs = pair.ours.get_intermediate_layers(x, n=blocks, return_class_token=True, return_extra_tokens=True)
    assert len(outs) == len(blocks)
    for block, (patches, cls, extra) in zip(blocks, outs):
        with torch.inference_mode():
            expected = pair.hf.norm(ref.hidden_states[block + 1])  # official block i == HF hidden_states[i+1]
        got = torch.cat([cls[:, None], extra, patches], dim=1)
        assert (got - expected).abs().max() <= TOL, block


@pytest.mark.parametrize("preset", PRESETS)
def test_meta_file_equals_hf_file(pairs, preset, tmp_path):
    """Meta layout with transformers' fp32 periods loads into exactly the same model as the HF file."""
    pair = pairs(preset)
    from_meta = load_backbone(write_meta_pth(tmp_path / f"{preset}.pth", pair.sd))
    assert from_meta.weights.format == "meta-pth" and pair.ours.weights.format == "hf-safetensors"
    x = _images(96, 80)
    a, b = from_meta.forward_features(x), pair.ours.forward_features(x)
    for key in ("x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm"):
        assert torch.equal(a[key], b[key]), key


def test_transformers5_spelling_equals_hub_spelling(pairs, tmp_path):
    pair = pairs("tiny")
    from_t5 = load_backbone(write_hf_folder(tmp_path, pair.sd, "tiny", layout="transformers5"))
    x = _images(64, 48)
    assert torch.equal(from_t5.forward_features(x)["x_prenorm"], pair.ours.forward_features(x)["x_prenorm"])


def test_released_bf16_periods(pairs, tmp_path):
    """Released files carry bf16-rounded periods: ~1e-3 away from HF's fp32 periods (spec §0.2), and equal
    to HF once HF uses the checkpoint's periods (inv_freq = 1 / periods)."""
    pair = pairs("vits16")
    periods = released_periods(64)
    assert not torch.equal(periods, hf_periods(64))
    sd = {**pair.sd, "rope_embed.periods": periods}
    ours = load_backbone(write_meta_pth(tmp_path / "released.pth", sd))
    assert torch.equal(ours.vit.rope_embed.periods, periods)  # taken from the file, unchanged
    x = _images(112, 128)[:1]
    ours_tokens = _all_tokens(ours.forward_features(x))
    diff = (ours_tokens - _hf_forward(pair.hf, x).last_hidden_state).abs().max()
    assert 1e-4 < diff < 1e-2
    inv_freq = pair.hf.rope_embeddings.inv_freq
    saved = inv_freq.clone()
    try:
        inv_freq.copy_(1 / periods)
        assert (ours_tokens - _hf_forward(pair.hf, x).last_hidden_state).abs().max() <= TOL
    finally:
        inv_freq.copy_(saved)


def test_hf_safetensors_without_config_uses_released_heads(pairs, tmp_path):
    """A bare ViT-S/16-shaped HF file (no config.json): heads from the released variant with those shapes."""
    bare = tmp_path / "weights.safetensors"
    bare.symlink_to(pairs("vits16").folder / "model.safetensors")
    lines = []
    bb = load_backbone(bare, log=lines.append)
    assert bb.num_heads == 6 and bb.variant == "vits16"
    assert any("heads 6 as in the released ViT-S/16" in line for line in lines)


def test_rope_theta_from_config_json_matches_transformers(pairs, tmp_path):
    """A config.json with another RoPE base (rope_theta 1000, not the default 100): transformers builds its
    frequencies from it, so must we."""
    folder = write_hf_folder(tmp_path, pairs("tiny").sd, "tiny", rope_theta=1000.0)
    ours, hf = load_backbone(folder), _hf_model(folder)
    x = _images(96, 128)
    assert (_all_tokens(ours.forward_features(x)) - _hf_forward(hf, x).last_hidden_state).abs().max() <= TOL
