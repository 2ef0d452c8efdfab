"""Dense features (patch stride), RoPE, outputs API, precision, device and the VARIANTS table."""

from __future__ import annotations

import pytest
import torch
from treeseg.treeseg_plugin.dinov3 import VARIANTS, load_backbone
from treeseg.treeseg_plugin.dinov3.layers import rope
from treeseg.treeseg_plugin.dinov3.variants import swiglu_hidden_dim
from treeseg.treeseg_plugin.dinov3.vision_transformer import DinoVisionTransformer, ViTConfig

from tests.checkpoint_factory import PRESETS, make_state_dict, write_meta_pth


def _images(height: int, width: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory):
    return write_meta_pth(tmp_path_factory.mktemp("tiny") / "tiny.pth", make_state_dict("tiny", seed=2))


@pytest.fixture(scope="module")
def tiny(tiny_pth):
    return load_backbone(tiny_pth)


@pytest.fixture(scope="module")
def vits16_pth(tmp_path_factory):
    return write_meta_pth(tmp_path_factory.mktemp("vits16") / "vits16.pth", make_state_dict("vits16", seed=2))


# ---------------------------------------------------------------- patch stride and RoPE coordinates


@pytest.mark.parametrize("stride", [8, 4])
def test_stride_grid(tiny_pth, stride):
    bb = load_backbone(tiny_pth, patch_stride=stride)
    height, width = 70, 50  # not multiples of the stride
    rows, cols = (70 - 16) // stride + 1, (50 - 16) // stride + 1
    assert bb.patch_stride == stride and bb.grid_size(height, width) == (rows, cols)
    x = _images(height, width)
    out = bb.forward_features(x)
    assert out["x_norm_patchtokens"].shape == (2, rows * cols, 64)
    assert out["x_prenorm"].shape == (2, 1 + 4 + rows * cols, 64)
    (fmap,) = bb.get_intermediate_layers(x, n=1, reshape=True)
    assert fmap.shape == (2, 64, rows, cols)
    # reshape is the row-major patch grid: token r*cols + c is pixel-row r, column c
    assert torch.equal(fmap, out["x_norm_patchtokens"].reshape(2, rows, cols, 64).permute(0, 3, 1, 2))


def _official_coords(n: int, stride: int, patch_size: int) -> torch.Tensor:
    """The unmodified model's coordinates: (i + 0.5) / n, then 2c - 1 (fp32)."""
    return 2.0 * (torch.arange(0.5, n, dtype=torch.float32) / n) - 1.0


def test_stride16_coordinates_are_bit_identical_to_official():
    for n in range(1, 130):
        assert torch.equal(rope.patch_centre_coords(n, 16, 16), _official_coords(n, 16, 16)), n


def test_stride16_model_is_bit_identical_to_plain_model(tiny_pth, monkeypatch):
    x = _images(80, 112)
    ours = load_backbone(tiny_pth, patch_stride=16).forward_features(x)
    monkeypatch.setattr(rope, "patch_centre_coords", _official_coords)
    plain = load_backbone(tiny_pth).forward_features(x)  # fresh model, fresh RoPE cache
    for key in ours:
        assert torch.equal(ours[key], plain[key]), key


def test_strided_coordinates_are_true_patch_centres():
    # 3 patches of 16 px every 8 px cover 32 px; centres at 8, 16, 24 px -> -0.5, 0, 0.5
    assert torch.equal(rope.patch_centre_coords(3, 8, 16), torch.tensor([-0.5, 0.0, 0.5]))
    # spec §7: exact = naive * H's / (H's + p - s), a pure rescale
    n, s, p = 27, 8, 16
    naive = _official_coords(n, s, p)
    assert torch.allclose(rope.patch_centre_coords(n, s, p), naive * (n * s) / (n * s + p - s), atol=1e-6)


@pytest.mark.parametrize("stride", [3, 0, -8, 32, 5, 16.0, True])
def test_invalid_stride(tiny_pth, stride):
    with pytest.raises(ValueError, match="patch_stride"):
        load_backbone(tiny_pth, patch_stride=stride)


def test_rope_cache_is_bounded_and_cleared_on_to(tiny_pth):
    bb = load_backbone(tiny_pth)
    cache = bb.vit.rope_embed._cache
    for size in range(16, 16 + 12 * 16, 16):
        bb.forward_features(_images(size, 16, batch=1))
    assert 0 < len(cache) <= 8
    bb.to(torch.float32)
    assert len(cache) == 0


# ---------------------------------------------------------------- outputs API


def test_forward_features_keys_and_shapes(tiny):
    out = tiny.forward_features(_images(48, 64))
    assert set(out) == {"x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens", "x_prenorm"}
    assert out["x_norm_clstoken"].shape == (2, 64)
    assert out["x_storage_tokens"].shape == (2, 4, 64)
    assert out["x_norm_patchtokens"].shape == (2, 12, 64)
    assert out["x_prenorm"].shape == (2, 17, 64)
    normed = tiny.vit.norm(out["x_prenorm"])  # storage tokens are normed, despite the name
    assert torch.equal(out["x_storage_tokens"], normed[:, 1:5])
    assert out["x_norm_patchtokens"].is_inference() and not out["x_norm_patchtokens"].requires_grad


def test_intermediate_layers_order_and_options(tiny):
    x = _images(48, 64)
    out = tiny.forward_features(x)
    first, last = tiny.get_intermediate_layers(x, n=[0, 1])
    swapped = tiny.get_intermediate_layers(x, n=[1, 0])  # in the order asked, not block order
    assert torch.equal(swapped[0], last) and torch.equal(swapped[1], first)
    assert not torch.equal(first, last)
    assert torch.equal(tiny.get_intermediate_layers(x, n=[-1])[0], last)
    assert [t.shape for t in tiny.get_intermediate_layers(x, n=2)] == [(2, 12, 64)] * 2
    assert torch.equal(last, out["x_norm_patchtokens"])
    (raw,) = tiny.get_intermediate_layers(x, norm=False)
    assert torch.equal(raw, out["x_prenorm"][:, 5:])
    ((patches, cls),) = tiny.get_intermediate_layers(x, return_class_token=True)
    assert torch.equal(cls, out["x_norm_clstoken"])
    ((patches, extra),) = tiny.get_intermediate_layers(x, return_extra_tokens=True)
    assert torch.equal(extra, out["x_storage_tokens"])
    ((patches, cls, extra),) = tiny.get_intermediate_layers(x, return_class_token=True, return_extra_tokens=True)
    assert patches.shape == (2, 12, 64) and cls.shape == (2, 64) and extra.shape == (2, 4, 64)


@pytest.mark.parametrize("n", [0, 3, [2], [-3], []])
def test_intermediate_layers_bad_selection(tiny, n):
    with pytest.raises(ValueError):
        tiny.get_intermediate_layers(_images(32, 32), n=n)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 4, 32, 32), (1, 3, 15, 32)])
def test_bad_inputs(tiny, shape):
    with pytest.raises(ValueError):
        tiny.forward_features(torch.zeros(shape))


# ---------------------------------------------------------------- precision and device


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def test_bf16_on_cpu(vits16_pth):
    x = _images(64, 64)
    fp32 = load_backbone(vits16_pth).forward_features(x)["x_norm_patchtokens"]
    bb = load_backbone(vits16_pth, dtype=torch.bfloat16)
    assert bb.dtype == torch.bfloat16 and bb.vit.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert bb.vit.rope_embed.periods.dtype == torch.float32  # RoPE stays fp32
    bf16 = bb.forward_features(x)["x_norm_patchtokens"]
    assert bf16.dtype == torch.bfloat16
    assert _cosine(bf16, fp32).min() >= 0.99


def test_low_precision_layer_norm_is_sound():
    """Why LayerNorm stays in the model dtype: its statistics are accumulated in fp32 by PyTorch."""
    x = (torch.randn(2, 500, 384, generator=torch.Generator().manual_seed(0)) * 3 + 5).bfloat16()
    weight, bias = torch.full((384,), 1.1).bfloat16(), torch.full((384,), 0.1).bfloat16()
    native = torch.nn.functional.layer_norm(x, (384,), weight, bias, 1e-5).float()
    exact = torch.nn.functional.layer_norm(x.float(), (384,), weight.float(), bias.float(), 1e-5)
    assert ((native - exact).abs() / exact.abs().clamp_min(0.1)).max() <= 2**-7  # ~ bf16 rounding


def test_to_bf16_keeps_rope_periods_fp32(tiny_pth):
    bb = load_backbone(tiny_pth)
    periods = bb.vit.rope_embed.periods.clone()
    bb.to(torch.bfloat16)
    assert bb.dtype == torch.bfloat16
    assert bb.vit.rope_embed.periods.dtype == torch.float32 and torch.equal(bb.vit.rope_embed.periods, periods)
    assert bb.forward_features(_images(32, 32))["x_prenorm"].dtype == torch.bfloat16


def test_dtype_checks(tiny_pth):
    with pytest.raises(ValueError, match="float16 is not supported on CPU"):
        load_backbone(tiny_pth, dtype=torch.float16)
    with pytest.raises(ValueError, match="not supported"):
        load_backbone(tiny_pth, dtype=torch.float64)


def test_device_auto(tiny_pth):
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    lines = []
    bb = load_backbone(tiny_pth, device="auto", log=lines.append)
    assert bb.device.type == expected and f"Device 'auto' -> {expected}" in lines


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_unavailable(tiny_pth):
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        load_backbone(tiny_pth, device="cuda")


# ---------------------------------------------------------------- architecture and VARIANTS


def _vit_config(v) -> ViTConfig:
    return ViTConfig(v.embed_dim, v.depth, v.num_heads, v.ffn_layer, v.ffn_hidden_dim, v.n_storage_tokens,
                     v.qkv_bias, v.local_cls_norm)


SPEC_KEYS = {"vits16": 188, "vits16plus": 212, "vitb16": 188, "vitl16": 368, "vitl16-sat493m": 370,
             "vitl16plus": 416, "vith16plus": 552, "vit7b16": 610, "vit7b16-sat493m": 610}
SPEC_FFN = {"vits16": 1536, "vits16plus": 1536, "vitb16": 3072, "vitl16": 4096, "vitl16plus": 4096,
            "vith16plus": 5120, "vit7b16": 8192}


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_architecture_matches_the_spec(name):
    v = VARIANTS[name]
    model = DinoVisionTransformer(_vit_config(v))  # on the meta device: no memory, no values
    state = model.state_dict()
    assert len(state) == SPEC_KEYS[name]
    assert all(t.is_meta for t in state.values())
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(params, 2) == v.params_millions, params
    assert v.ffn_hidden_dim == SPEC_FFN[v.arch]


def test_variants_table():
    names = list(VARIANTS)
    assert names[0] == "vits16" and VARIANTS["vits16"].display_name == "ViT-S/16 (LVD-1689M)"
    assert VARIANTS["vits16"].hf_repo_id == "facebook/dinov3-vits16-pretrain-lvd1689m"
    assert VARIANTS["vitl16-sat493m"].hf_repo_id == "facebook/dinov3-vitl16-pretrain-sat493m"
    assert VARIANTS["vitl16plus"].hf_repo_id is None
    assert VARIANTS["vit7b16-sat493m"].meta_filename == "dinov3_vit7b16_pretrain_sat493m-a6675841.pth"
    assert VARIANTS["vitl16-sat493m"].mean == (0.430, 0.411, 0.296)
    assert VARIANTS["vitl16-sat493m"].std == (0.213, 0.156, 0.143)
    assert VARIANTS["vitb16"].std == (0.229, 0.224, 0.225)
    assert len({v.display_name for v in VARIANTS.values()}) == len(VARIANTS)


def test_swiglu_hidden_dim_rule():
    assert swiglu_hidden_dim(384, 6.0, 8) == 1536
    assert swiglu_hidden_dim(4096, 3.0, 64) == 8192
    assert swiglu_hidden_dim(100, 1.0, 8) == 72  # int(100 * 2/3) = 66, rounded up to 72
    assert swiglu_hidden_dim(64, 3.0, 64) == PRESETS["tiny-swiglu-nobias"].ffn_hidden_dim == 128


# ---------------------------------------------------------------- LayerScale, against expectations not from the loader


def _zero_layer_scale(sd: dict) -> dict:
    return {name: torch.zeros_like(value) if name.endswith(("ls1.gamma", "ls2.gamma")) else value
            for name, value in sd.items()}


def test_blocks_with_zero_layer_scale_leave_the_tokens_as_embedded(tmp_path):
    """With every LayerScale gamma 0 the blocks add nothing: the tokens are the checkpoint's CLS and storage
    tokens and its patch convolution of the image, and the patch features their final LayerNorm, all computed
    here from the state dict's tensors with plain torch ops."""
    sd = _zero_layer_scale(make_state_dict("tiny", seed=2))
    bb = load_backbone(write_meta_pth(tmp_path / "tiny-ls0.pth", sd))
    x = _images(48, 64)
    patches = torch.nn.functional.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=16)
    patches = patches.flatten(2).transpose(1, 2)  # [B, 3 * 4, D], row-major
    tokens = torch.cat([sd["cls_token"].expand(2, -1, -1), sd["storage_tokens"].expand(2, -1, -1), patches], dim=1)
    normed = torch.nn.functional.layer_norm(patches, (64,), sd["norm.weight"], sd["norm.bias"], eps=1e-5)
    out = bb.forward_features(x)
    torch.testing.assert_close(out["x_prenorm"], tokens, rtol=0, atol=1e-5)
    torch.testing.assert_close(out["x_norm_patchtokens"], normed, rtol=0, atol=1e-5)


def test_a_block_scales_each_residual_branch_by_its_gamma(tiny_pth):
    """x1 = x + gamma1 * attn(norm1(x)), then x1 + gamma2 * mlp(norm2(x1)), with the block's own branches and
    gammas of known, distinct values per channel."""
    vit = load_backbone(tiny_pth).vit  # its own copy: the gammas are overwritten
    block = vit.blocks[0]
    tokens, (rows, cols) = vit.prepare_tokens(_images(32, 48))
    rope = vit.rope_embed(rows, cols, vit.patch_stride)
    gamma1 = torch.linspace(-2.0, 3.0, 64)
    gamma2 = torch.linspace(4.0, -1.0, 64)
    with torch.inference_mode():
        block.ls1.gamma.copy_(gamma1)
        block.ls2.gamma.copy_(gamma2)
        after = block(tokens, rope)
        x1 = tokens + gamma1 * block.attn(block.norm1(tokens), rope)
        expected = x1 + gamma2 * block.mlp(block.norm2(x1))
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-5)
