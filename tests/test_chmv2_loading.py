"""CHMv2 loading refuses every broken or mismatched checkpoint with a message that says what to do."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from treeseg.treeseg_plugin.dinov3.chmv2.loading import (
    is_chmv2_weights,
    load_canopy_height_model,
    verify_canopy_height_weights,
)
from treeseg.treeseg_plugin.dinov3.errors import CheckpointError, WeightsNotFoundError

from tests.checkpoint_factory import FactoryConfig, make_state_dict, with_sha8_suffix, write_meta_pth
from tests.chmv2_factory import write_hf_chmv2, write_meta_chmv2

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(HF folder, Meta decoder, Meta SAT-493M backbone) of one random tiny CHMv2."""
    root = tmp_path_factory.mktemp("chmv2-files")
    folder, model = write_hf_chmv2(root / "hf", seed=5)
    decoder, backbone = write_meta_chmv2(root / "meta", model)
    return folder, decoder, backbone


def test_both_layouts_load_with_every_tensor(files):
    folder, decoder, backbone = files
    for model in (load_canopy_height_model(folder), load_canopy_height_model(decoder, backbone=backbone)):
        info = model.head_weights
        assert info.tensors_loaded == info.tensors_total == len(model.head.state_dict())
        assert model.backbone.weights.tensors_loaded == model.backbone.weights.tensors_total
        assert model.out_layers == (0, 1, 2, 3)
        # CHMv2's own input statistics (transformers' CHMv2ImageProcessor: mean 0.420, not SAT-493M's 0.430),
        # on the model and on its backbone, not those of the SAT-493M backbone file it was built from.
        for declared in (model, model.backbone):
            assert (declared.mean, declared.std) == ((0.420, 0.411, 0.296), (0.213, 0.156, 0.143))


def test_decoder_without_backbone(files):
    _, decoder, _ = files
    with pytest.raises(WeightsNotFoundError, match=r"decoder without a backbone.*SAT-493M"):
        load_canopy_height_model(decoder)


def test_hf_model_with_a_separate_backbone_is_refused(files):
    folder, _, backbone = files
    with pytest.raises(ValueError, match="includes its backbone"):
        load_canopy_height_model(folder, backbone=backbone)


def test_backbone_of_another_dataset(files, tmp_path):
    _, decoder, backbone = files
    lvd = shutil.copy(backbone, tmp_path / "dinov3_tiny_pretrain_lvd1689m.pth")
    with pytest.raises(CheckpointError, match=r"pretrained on LVD-1689M.*SAT-493M"):
        load_canopy_height_model(decoder, backbone=lvd)
    unnamed = shutil.copy(backbone, tmp_path / "backbone.pth")
    with pytest.raises(CheckpointError, match="unknown pretraining data"):
        load_canopy_height_model(decoder, backbone=unnamed)


def test_backbone_of_another_size(files, tmp_path):
    _, decoder, _ = files
    wider = write_meta_pth(tmp_path / "dinov3_wide_pretrain_sat493m.pth",
                           make_state_dict(FactoryConfig(embed_dim=128, depth=4, num_heads=2)))
    with pytest.raises(CheckpointError, match=r"width is 128.*64-wide.*another backbone size"):
        load_canopy_height_model(decoder, backbone=wider)
    shallow = write_meta_pth(tmp_path / "dinov3_shallow_pretrain_sat493m.pth", make_state_dict("tiny"))
    with pytest.raises(CheckpointError, match="depth is a multiple of 4, not 2"):
        load_canopy_height_model(decoder, backbone=shallow)


def test_backbone_given_as_the_decoder(files):
    _, _, backbone = files
    with pytest.raises(CheckpointError, match="not a CHMv2 DPT head"):
        load_canopy_height_model(backbone, backbone=backbone)


@pytest.mark.parametrize("which", ["decoder", "hf"])
def test_truncated_file(files, tmp_path, which):
    folder, decoder, backbone = files
    if which == "decoder":
        target = tmp_path / decoder.name
        data = decoder.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        source, extra = target, {"backbone": backbone}
    else:
        source = shutil.copytree(folder, tmp_path / "hf")
        data = (source / "model.safetensors").read_bytes()
        (source / "model.safetensors").write_bytes(data[: len(data) - 1000])
        extra = {}
    with pytest.raises(CheckpointError, match=r"truncated or corrupt|cut short|unreadable"):
        load_canopy_height_model(source, **extra)


def test_nan_in_the_decoder(files, tmp_path):
    _, decoder, backbone = files
    state = torch.load(decoder, weights_only=True)
    state["fusion_blocks.2.project.conv.weight"][0, 0, 0, 0] = float("nan")
    broken = write_meta_pth(tmp_path / decoder.name, state)
    with pytest.raises(CheckpointError, match=r"NaN or Inf.*fusion_blocks\.2\.project\.conv\.weight \(NaN\)"):
        load_canopy_height_model(broken, backbone=backbone)


def test_inf_in_the_hf_backbone(files, tmp_path):
    folder, _, _ = files
    copy = shutil.copytree(folder, tmp_path / "hf")
    state = load_file(copy / "model.safetensors")
    state["backbone.layer.1.mlp.up_proj.weight"][3, 3] = float("inf")
    save_file(state, copy / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"NaN or Inf.*up_proj.weight \(Inf\)"):
        load_canopy_height_model(copy)


def test_missing_and_unexpected_decoder_tensors(files, tmp_path):
    _, decoder, backbone = files
    state = torch.load(decoder, weights_only=True)
    del state["conv_depth.head.2.bias"]
    state["extra.weight"] = torch.zeros(2)
    broken = write_meta_pth(tmp_path / decoder.name, state)
    with pytest.raises(CheckpointError, match=r"missing \(1\): conv_depth\.head\.2\.bias; unexpected \(1\): extra"):
        load_canopy_height_model(broken, backbone=backbone)


def test_decoder_tensor_of_another_shape(files, tmp_path):
    """A decoder tensor one element longer than the head's: refused as a shape mismatch naming both shapes."""
    _, decoder, backbone = files
    state = torch.load(decoder, weights_only=True)
    size = state["conv_depth.head.2.bias"].numel()
    state["conv_depth.head.2.bias"] = torch.zeros(size + 1)
    broken = write_meta_pth(tmp_path / decoder.name, state)
    expected = rf"shape mismatch \(1\): conv_depth\.head\.2\.bias \[{size + 1}\] \(expected \[{size}\]\)"
    with pytest.raises(CheckpointError, match=expected):
        load_canopy_height_model(broken, backbone=backbone)


def test_sha256_prefix_in_the_name_is_checked(files, tmp_path):
    _, decoder, backbone = files
    good = with_sha8_suffix(shutil.copy(decoder, tmp_path / decoder.name))
    assert load_canopy_height_model(good, backbone=backbone).head_weights.sha256.startswith(good.stem[-8:])
    wrong = shutil.copy(decoder, tmp_path / "dinov3_vitl16_chmv2_dpt_head-3703d643.pth")
    with pytest.raises(CheckpointError, match="does not match the 3703d643 in its name"):
        load_canopy_height_model(wrong, backbone=backbone)


def test_hf_folder_without_config(files, tmp_path):
    folder, _, _ = files
    copy = shutil.copytree(folder, tmp_path / "hf")
    (copy / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"needs its config.json"):
        load_canopy_height_model(copy)


def test_hf_config_that_disagrees_with_the_weights(files, tmp_path):
    folder, _, _ = files
    copy = shutil.copytree(folder, tmp_path / "hf")
    config = json.loads((copy / "config.json").read_text())
    config["number_output_channels"], config["readout_type"] = 64, "add"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"readout_type 'add'.*number_output_channels 64 \(weights: 32\)"):
        load_canopy_height_model(copy)


def test_missing_weights_name_the_gated_repository(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="chmv2-downloads"):
        load_canopy_height_model("facebook/dinov3-vitl16-chmv2-dpt-head")


def test_verify_checks_every_tensor_of_either_layout_and_refuses_nan(files, tmp_path):
    """The Weights manager's Verify: the loader's checks, the tensors assigned to the meta device."""
    folder, decoder, backbone = files
    hf = verify_canopy_height_weights(folder)
    assert hf.format == "hf-safetensors" and hf.tensors_loaded == hf.tensors_total == \
        len(load_file(folder / "model.safetensors"))
    state = torch.load(decoder, weights_only=True)
    meta = verify_canopy_height_weights(decoder)
    assert meta.format == "meta-pth" and meta.tensors_loaded == meta.tensors_total == len(state)
    assert is_chmv2_weights(folder) and is_chmv2_weights(decoder) and not is_chmv2_weights(backbone)
    state["conv_depth.head.0.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"NaN or Inf.*conv_depth\.head\.0\.weight \(NaN\)"):
        verify_canopy_height_weights(write_meta_pth(tmp_path / decoder.name, state))
