"""Strict, verified checkpoint loading: coverage, formats, every error case, hash check, k-bias mask."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from treeseg.treeseg_plugin.dinov3 import (
    CheckpointError,
    DinoV3Error,
    WeightsNotFoundError,
    load_backbone,
    verify_weights,
)

from tests.checkpoint_factory import (
    make_state_dict,
    meta_to_hf,
    sha256_of,
    with_sha8_suffix,
    write_hf_folder,
    write_meta_pth,
)

FIXES = ("download it again", "Use an unmodified released", "Pass ", "Re-save", "Use a DINOv3 ViT",
         "Use the config.json", "verify_hash=False")


def _images(height: int = 48, width: int = 64) -> torch.Tensor:
    return torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tiny_sd():
    return make_state_dict("tiny", seed=1)


@pytest.fixture(scope="module")
def tiny_pth(tiny_sd, tmp_path_factory):
    return write_meta_pth(tmp_path_factory.mktemp("tiny") / "tiny.pth", tiny_sd)


@pytest.fixture(scope="module")
def tiny_ref(tiny_pth):
    """Reference outputs of the unmodified tiny checkpoint."""
    return load_backbone(tiny_pth).forward_features(_images())


def _assert_helpful(error: pytest.ExceptionInfo, path, *needles: str) -> None:
    message = str(error.value)
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    assert any(fix.lower() in message.lower() for fix in FIXES), message


# ---------------------------------------------------------------- coverage and report


def test_vits16_meta_file_is_loaded_completely(tmp_path):
    path = write_meta_pth(tmp_path / "dinov3_vits16_pretrain_lvd1689m.pth", make_state_dict("vits16"))
    lines = []
    bb = load_backbone(path, log=lines.append)
    assert f"Loaded 188/188 tensors from {path} (Meta format, ViT-S/16-like: D=384, depth 12, heads 6, MLP)" in lines
    assert "Filled 188/188 model parameters and buffers" in lines
    assert (bb.weights.tensors_loaded, bb.weights.tensors_total, bb.weights.format) == (188, 188, "meta-pth")
    assert (bb.variant, bb.embed_dim, bb.depth, bb.num_heads, bb.n_storage_tokens) == ("vits16", 384, 12, 6, 4)
    assert bb.weights.dataset == "lvd1689m" and bb.mean == (0.485, 0.456, 0.406)
    assert not bb.training and not any(p.requires_grad for p in bb.parameters())


def test_hf_folder_report_counts_file_tensors_and_computed_buffers(tiny_sd, tmp_path):
    lines = []
    bb = load_backbone(write_hf_folder(tmp_path, tiny_sd, "tiny"), log=lines.append)
    # 41 HF tensors (q/k/v split, no k bias, no periods/bias_mask) fill all 38 model tensors.
    assert (bb.weights.tensors_loaded, bb.weights.tensors_total, bb.weights.format) == (41, 41, "hf-safetensors")
    assert any(line.startswith("Loaded 41/41 tensors") and "custom ViT: D=64, depth 2, heads 2" in line
               for line in lines)
    assert "Filled 38/38 model parameters and buffers; 3 computed, not stored in the file: RoPE periods, " \
           "2 k-bias masks" in lines
    assert bb.variant == "custom"


def test_loaded_model_holds_exactly_the_file_values(tiny_sd, tiny_pth):
    state = load_backbone(tiny_pth).vit.state_dict()
    assert state.keys() == tiny_sd.keys()
    assert all(torch.equal(state[k], tiny_sd[k]) for k in tiny_sd)
    assert not any(t.is_meta for t in state.values())


def test_local_cls_norm_and_no_qkv_bias_are_inferred(tmp_path):
    sd = make_state_dict("tiny-swiglu-nobias")
    bb = load_backbone(write_meta_pth(tmp_path / "x.pth", sd))
    assert bb.weights.tensors_loaded == len(sd) == 40
    assert bb.config.ffn_layer == "swiglu" and bb.config.ffn_hidden_dim == 128
    assert not bb.config.qkv_bias and bb.config.local_cls_norm


def test_wrapped_training_checkpoint(tiny_sd, tiny_ref, tmp_path):
    """{"teacher": {"backbone.<key>": ..., "dino_head.*": ...}, ...}: backbone taken, heads ignored, said so."""
    wrapped = {"teacher": {**{f"backbone.{k}": v for k, v in tiny_sd.items()}, "dino_head.w": torch.ones(2)},
               "iteration": torch.tensor(7)}
    lines = []
    bb = load_backbone(write_meta_pth(tmp_path / "train.pth", wrapped), log=lines.append)
    assert torch.equal(bb.forward_features(_images())["x_prenorm"], tiny_ref["x_prenorm"])
    notes = "\n".join(lines)
    assert "'teacher' entry" in notes and "prefix 'backbone.' stripped" in notes and "dino_head.w" in notes


def test_legacy_non_zip_pth(tiny_sd, tiny_ref, tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save(tiny_sd, path, _use_new_zipfile_serialization=False)
    assert torch.equal(load_backbone(path).forward_features(_images())["x_prenorm"], tiny_ref["x_prenorm"])


def _sharded(folder, repeat_in_second: bool = False) -> dict:
    """folder's model.safetensors split into two shards and an index; `repeat_in_second`: the second shard
    also holds the first shard's first tensor (plus one). Returns the HF tensors."""
    tensors = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        part = {k: tensors[k] for k in keys}
        if repeat_in_second and shard.startswith("model-00002"):
            part[names[0]] = tensors[names[0]] + 1
        save_file(part, str(folder / shard))
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return tensors


def test_sharded_hf_weights(tiny_sd, tmp_path):
    folder = write_hf_folder(tmp_path, tiny_sd, "tiny")
    single = load_backbone(folder).forward_features(_images())["x_prenorm"]
    _sharded(folder)
    bb = load_backbone(folder)
    assert bb.weights.tensors_loaded == 41
    assert torch.equal(bb.forward_features(_images())["x_prenorm"], single)


def test_a_tensor_in_two_shards_is_refused(tiny_sd, tmp_path):
    """Two shards hold one tensor with different values: which one the model got would depend on the
    reading order, so loading and the weights manager's Verify refuse the folder and name the tensor."""
    folder = write_hf_folder(tmp_path, tiny_sd, "tiny")
    repeated = sorted(_sharded(folder, repeat_in_second=True))[0]
    for run in (load_backbone, verify_weights):
        with pytest.raises(CheckpointError) as error:
            run(folder)
        _assert_helpful(error, folder, "repeats tensors of other shards", repeated)


def test_loading_twice_gives_identical_models(tiny_pth):
    """Nothing random: two loads of one file produce bit-identical outputs."""
    x = _images()
    assert torch.equal(load_backbone(tiny_pth).forward_features(x)["x_prenorm"],
                       load_backbone(tiny_pth).forward_features(x)["x_prenorm"])


# ---------------------------------------------------------------- the k-bias mask


def test_bias_mask_is_the_101_pattern_and_never_nan(tiny_pth):
    vit = load_backbone(tiny_pth).vit
    for block in vit.blocks:
        mask = block.attn.qkv.bias_mask
        assert torch.equal(mask, torch.cat([torch.ones(64), torch.zeros(64), torch.ones(64)]))


def test_huge_k_bias_is_masked_out(tiny_sd, tiny_ref, tmp_path):
    sd = {k: v.clone() for k, v in tiny_sd.items()}
    for i in range(2):
        sd[f"blocks.{i}.attn.qkv.bias"][64:128] = 1e4
    bb = load_backbone(write_meta_pth(tmp_path / "kbias.pth", sd))
    assert torch.equal(bb.forward_features(_images())["x_prenorm"], tiny_ref["x_prenorm"])
    # The test is sensitive: without the mask, that bias changes the output (RoPE rotates it per position).
    for block in bb.vit.blocks:
        block.attn.qkv.bias_mask.fill_(1)
    assert not torch.allclose(bb.forward_features(_images())["x_prenorm"], tiny_ref["x_prenorm"], atol=1e-3)


# ---------------------------------------------------------------- errors


def _mutated(sd, change):
    sd = {k: v.clone() for k, v in sd.items()}
    change(sd)
    return sd


def _set(key, value):
    return lambda sd: sd.__setitem__(key, value)


def _poison(key, value):
    def change(sd):
        sd[key].view(-1)[3] = value

    return change


TENSOR_ERRORS = {
    "missing": (lambda sd: sd.pop("blocks.1.ls1.gamma"), ["missing (1): blocks.1.ls1.gamma"]),
    "unexpected": (_set("blocks.0.attn.extra", torch.ones(3)), ["unexpected (1): blocks.0.attn.extra"]),
    "shape": (_set("norm.weight", torch.ones(63)), ["norm.weight [63] (expected [64])"]),
    "nan": (_poison("blocks.0.mlp.fc1.weight", float("nan")), ["blocks.0.mlp.fc1.weight (NaN)"]),
    "inf": (_poison("blocks.1.attn.proj.bias", float("inf")), ["blocks.1.attn.proj.bias (Inf)"]),
    "nan-bias-mask": (_poison("blocks.0.attn.qkv.bias_mask", float("nan")),
                      ["blocks.0.attn.qkv.bias_mask (NaN)", "before its weights were initialised"]),
    "k-bias-mask-on": (lambda sd: sd["blocks.1.attn.qkv.bias_mask"].fill_(1),
                       ["blocks.1.attn.qkv.bias_mask (must be 0/1 with zeros on the K third)"]),
    # A mask of 0.5 halves the Q and V biases at run time: the official model has only 0 and 1 there.
    "fractional-bias-mask": (lambda sd: sd["blocks.0.attn.qkv.bias_mask"][:64].fill_(0.5),
                             ["blocks.0.attn.qkv.bias_mask (must be 0/1 with zeros on the K third)"]),
    "integer-tensor": (_set("norm.bias", torch.zeros(64, dtype=torch.int64)), ["norm.bias (torch.int64)"]),
    "convnext": (lambda sd: sd.update({"downsample_layers.0.0.weight": torch.ones(1),
                                        "stages.0.0.gamma": torch.ones(1)}), ["ConvNeXt", "not supported yet"]),
    "no-periods": (lambda sd: sd.pop("rope_embed.periods"), ["rope_embed.periods"]),
    "dinov2-like": (lambda sd: sd.update({"pos_embed": sd.pop("rope_embed.periods")}), ["DINOv2"]),
    "not-dinov3": (lambda sd: sd.pop("cls_token"), ["no 'cls_token'"]),
}


@pytest.mark.parametrize("case", TENSOR_ERRORS)
def test_bad_tensors_raise_checkpoint_error(case, tiny_sd, tmp_path):
    change, needles = TENSOR_ERRORS[case]
    path = write_meta_pth(tmp_path / f"{case}.pth", _mutated(tiny_sd, change))
    for run in (load_backbone, verify_weights):  # verify_weights: the same checks, nothing materialised
        with pytest.raises(CheckpointError) as error:
            run(path)
        _assert_helpful(error, path, *needles)


def _truncated(path, tiny_pth):
    data = tiny_pth.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_safetensors(path, tiny_pth):
    save_file(meta_to_hf(torch.load(tiny_pth, weights_only=True)), str(path))
    data = path.read_bytes()
    path.write_bytes(data[:-100])


def _foreign_zip(path, _):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")


class _Custom:
    pass


FILE_ERRORS = {
    "truncated.pth": (_truncated, "unreadable PyTorch checkpoint"),
    "truncated.safetensors": (_truncated_safetensors, "unreadable safetensors"),
    "random.pth": (lambda p, _: p.write_bytes(bytes(range(7, 256)) * 40), "not a PyTorch checkpoint or safetensors"),
    "text.pth": (lambda p, _: p.write_text("these are not weights\n" * 20), "not a PyTorch checkpoint or safetensors"),
    "empty.pth": (lambda p, _: p.write_bytes(b""), "the file is empty"),
    "archive.pth": (_foreign_zip, "unreadable PyTorch checkpoint"),
    "custom.pth": (lambda p, _: torch.save({"w": torch.ones(2), "obj": _Custom()}, p), "weights_only=True"),
    "tensor.pth": (lambda p, _: torch.save(torch.ones(3), p), "not a state dict"),
}


@pytest.mark.parametrize("name", FILE_ERRORS)
def test_bad_files_raise_checkpoint_error(name, tiny_pth, tmp_path):
    write, needle = FILE_ERRORS[name]
    path = tmp_path / name
    write(path, tiny_pth)
    with pytest.raises(CheckpointError) as error:
        load_backbone(path)
    _assert_helpful(error, path, needle)


@pytest.mark.parametrize(("override", "needle"), [
    ({"hidden_size": 128}, "hidden_size 128 (weights: 64)"),
    ({"num_hidden_layers": 3}, "num_hidden_layers 3 (weights: 2)"),
    ({"use_gated_mlp": True}, "use_gated_mlp True (weights: False)"),
    ({"num_attention_heads": 5}, "num_attention_heads 5"),
])
def test_config_json_disagreeing_with_weights(override, needle, tiny_sd, tmp_path):
    folder = write_hf_folder(tmp_path, tiny_sd, "tiny", **override)
    with pytest.raises(CheckpointError) as error:
        load_backbone(folder)
    _assert_helpful(error, folder / "config.json", needle, str(folder / "model.safetensors"))


def test_hf_missing_k_proj_names_the_hf_key(tiny_sd, tmp_path):
    hf = meta_to_hf(tiny_sd)
    del hf["layer.1.attention.k_proj.weight"]
    path = tmp_path / "model.safetensors"
    save_file(hf, str(path))
    with pytest.raises(CheckpointError) as error:
        load_backbone(path)
    _assert_helpful(error, path, "layer.1.attention.k_proj.weight")


def test_hf_k_bias_is_refused(tiny_sd, tmp_path):
    """A k_proj.bias would be silently dropped by the K mask: refuse it instead."""
    hf = meta_to_hf(tiny_sd)
    hf["layer.0.attention.k_proj.bias"] = torch.ones(64)
    path = tmp_path / "model.safetensors"
    save_file(hf, str(path))
    with pytest.raises(CheckpointError) as error:
        load_backbone(path)
    _assert_helpful(error, path, "layer.0.attention.k_proj.bias")


def test_errors_share_the_base_class():
    assert issubclass(CheckpointError, DinoV3Error) and issubclass(WeightsNotFoundError, DinoV3Error)


def test_factory_is_deterministic():
    a, b, c = make_state_dict("tiny", seed=7), make_state_dict("tiny", seed=7), make_state_dict("tiny", seed=8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["blocks.0.attn.qkv.weight"], c["blocks.0.attn.qkv.weight"])


# ---------------------------------------------------------------- integrity (Meta filename hash)


def test_hash_suffix_is_verified(tiny_pth, tmp_path):
    path = write_meta_pth(tmp_path / "dinov3_tiny_pretrain_lvd1689m.pth", torch.load(tiny_pth, weights_only=True))
    path = with_sha8_suffix(path)
    lines = []
    bb = load_backbone(path, log=lines.append)
    assert any("Checking SHA-256" in line for line in lines)
    assert bb.weights.sha256() == sha256_of(path) and path.stem.endswith(bb.weights.sha256()[:8])


def test_hash_mismatch(tiny_pth, tmp_path):
    path = tmp_path / "dinov3_vits16_pretrain_lvd1689m-08c60483.pth"
    path.write_bytes(tiny_pth.read_bytes())
    with pytest.raises(CheckpointError) as error:
        load_backbone(path)
    _assert_helpful(error, path, "does not match the 08c60483", "Download it again")
    bb = load_backbone(path, verify_hash=False)
    assert bb.weights.sha256() == sha256_of(path)  # computed lazily when asked


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the mappings in /proc/self/maps")
@pytest.mark.parametrize("container", ["safetensors", "pth"])
def test_weights_files_are_memory_mapped_not_read_whole(tiny_sd, tmp_path, container):
    """Both containers are mapped (the kernel reads a tensor's pages when the loader copies it), and the tensors are
    the file's, as the safetensors library and torch.load read them."""
    from treeseg.treeseg_plugin.dinov3.checkpoint.files import read_state_dict

    if container == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file(meta_to_hf(tiny_sd), str(path))
        reference = load_file(path)
    else:
        path = write_meta_pth(tmp_path / "tiny.pth", tiny_sd)
        reference = torch.load(path, weights_only=True)
    state, _ = read_state_dict(path)
    mapped = {line.split(maxsplit=5)[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if len(line.split(maxsplit=5)) == 6}
    assert str(path) in mapped
    assert state.keys() == reference.keys()
    assert all(state[name].dtype == reference[name].dtype and torch.equal(state[name], reference[name])
               for name in reference)
