"""Issue #13 item 10, weights edge cases: importing Hugging Face files whose dataset is not in the names, an
explicit refusal where the pretraining dataset (and so the input normalisation) cannot be told, variant
names that always mean the released model, and Verify without materialising the model.

Real checkpoint files in the released formats (random weights), the real loader and the real import job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from checkpoint_factory import FactoryConfig, make_state_dict, write_hf_folder, write_meta_pth
from treeseg.treeseg_plugin.dinov3 import CheckpointError, WeightsNotFoundError, load_backbone
from treeseg.treeseg_plugin.dinov3 import weights as dinov3_weights
from treeseg.treeseg_plugin.dinov3.variants import VARIANTS
from treeseg.treeseg_plugin.dinov3.weights import ResolvedWeights, resolve_weights

# -- (a) a model.safetensors without a dataset in its names -------------------------------------------------


def test_hf_files_without_a_dataset_in_the_names_import_into_folders_of_their_own(qgis_app, tmp_path):
    from treeseg.treeseg_plugin.gui.weights_tasks import import_weights

    weights = tmp_path / "weights"
    imported = []
    for seed in (1, 2):  # two different custom models, both downloaded as .../model.safetensors
        folder = write_hf_folder(tmp_path / f"download-{seed}", make_state_dict("tiny", seed=seed), "tiny")
        imported.append(import_weights(folder / "model.safetensors", weights, lambda f: None, lambda: False))
    first, second = (result.path for result in imported)
    assert first.parent != second.parent and first.parent.parent == second.parent.parent == weights
    assert not (weights / "model.safetensors").exists() and not (weights / "config.json").exists()
    for result in imported:
        assert result.path.parent.name == f"dinov3-custom-{result.sha256[:8]}"
        assert (result.path.parent / "config.json").is_file()
        assert load_backbone(result.path.parent).weights.sha256() == result.sha256

    # A released architecture without a dataset in the names goes to the model's own folder, found by name.
    vits16 = write_hf_folder(tmp_path / "unnamed", make_state_dict("vits16", seed=0), "vits16")
    result = import_weights(vits16 / "model.safetensors", weights, lambda f: None, lambda: False)
    assert result.path == weights / "dinov3-vits16-pretrain-lvd1689m" / "model.safetensors"
    assert result.variant == "vits16" and result.dataset == "lvd1689m"


# -- (b) no silent default statistics --------------------------------------------------------------------------


def _resolved(path: Path) -> ResolvedWeights:
    return ResolvedWeights(path=path, preprocessor_path=None)


@pytest.mark.parametrize("arch", ["vitl16", "vit7b16"])
def test_a_model_released_with_both_datasets_is_refused_without_a_dataset_in_the_names(tmp_path, arch):
    both = [v for v in VARIANTS.values() if v.arch == arch]
    assert {v.dataset for v in both} == {"lvd1689m", "sat493m"}
    renamed = _resolved(tmp_path / "downloads" / "model.safetensors")
    with pytest.raises(CheckpointError) as refused:
        dinov3_weights.choose_dataset(renamed, both, None)  # a Hugging Face file: no local_cls_norm in that layout
    message = str(refused.value)
    assert str(renamed.path) in message and "LVD-1689M (web images) or SAT-493M (satellite images)" in message
    assert f"dinov3_{arch}_pretrain_sat493m.pth" in message and f"dinov3-{arch}-pretrain-sat493m/" in message
    assert "preprocessor_config.json" in message
    named = _resolved(tmp_path / f"dinov3-{arch}-pretrain-sat493m" / "model.safetensors")
    assert dinov3_weights.choose_dataset(named, both, None)[0] == "sat493m"


def test_the_dataset_follows_from_the_tensors_where_only_one_release_has_them(tmp_path):
    vitl16 = [v for v in VARIANTS.values() if v.arch == "vitl16"]
    meta_file = _resolved(tmp_path / "renamed.pth")
    choose_dataset = dinov3_weights.choose_dataset
    assert choose_dataset(meta_file, vitl16, True)[0] == "sat493m"  # Meta's SAT ViT-L has local_cls_norm
    assert choose_dataset(meta_file, vitl16, False)[0] == "lvd1689m"
    dataset, reason = choose_dataset(meta_file, [VARIANTS["vits16"]], None)
    assert dataset == "lvd1689m" and "only DINOv3 release" in reason
    assert choose_dataset(meta_file, [], False)[0] is None  # a custom architecture: not a released model


# -- (c) a variant name is the variant -------------------------------------------------------------------------


def test_a_local_file_or_folder_named_like_a_model_does_not_replace_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_meta_pth(tmp_path / "vits16", make_state_dict("tiny", seed=3))
    write_hf_folder(tmp_path / "vitb16", make_state_dict("tiny", seed=4), "tiny")
    for name in ("vits16", "vitb16"):
        with pytest.raises(WeightsNotFoundError) as missing:
            resolve_weights(name)  # the tests' Hugging Face cache is empty and offline
        assert f"No DINOv3 weights found for '{name}'" in str(missing.value)
        assert VARIANTS[name].hf_repo_id in str(missing.value)
    assert resolve_weights("./vits16").path == Path("vits16")
    assert resolve_weights("./vitb16").path == Path("vitb16") / "model.safetensors"
    assert resolve_weights(tmp_path / "vits16").path == tmp_path / "vits16"  # a path object is a path


def test_a_local_folder_shaped_like_a_repository_id_is_named_in_the_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hf_folder(tmp_path / "facebook" / "dinov3-vits16-pretrain-lvd1689m", make_state_dict("tiny"), "tiny")
    with pytest.raises(WeightsNotFoundError) as missing:
        resolve_weights("facebook/dinov3-vits16-pretrain-lvd1689m")
    assert "pass './facebook/dinov3-vits16-pretrain-lvd1689m'" in str(missing.value)
    folder = resolve_weights("./facebook/dinov3-vits16-pretrain-lvd1689m").path.parent
    assert folder == Path("facebook/dinov3-vits16-pretrain-lvd1689m")


# -- (d) Verify without materialising --------------------------------------------------------------------------

_PEAK = """
import sys
import torch
from treeseg.treeseg_plugin.dinov3 import load_backbone
from treeseg.treeseg_plugin.gui.weights_tasks import verify_weights  # the weights manager's Verify

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

run = verify_weights if sys.argv[3] == "verify" else load_backbone
run(str(sys.argv[2]))  # warm-up on a tiny model: torch's first use of an operation maps ~75 MB of its code once
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # Linux: the peak resident size (VmHWM) starts again from the current size
before = status("VmRSS")
checked = run(str(sys.argv[1]))
loaded = checked.tensors_loaded if sys.argv[3] == "verify" else checked.weights.tensors_loaded
print(loaded, status("VmHWM") - before)
"""


def _peak_kib(plugins_dir: Path, path: Path, warm_up: Path, how: str) -> tuple[int, int]:
    """Tensors checked and the peak resident memory (KiB) that loading or verifying ``path`` adds."""
    env = {**os.environ, "PYTHONPATH": str(plugins_dir)}
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path), str(warm_up), how], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    tensors, kib = done.stdout.split()
    return int(tensors), int(kib)


def test_verify_checks_every_tensor_without_materialising_the_model(tmp_path, plugins_dir):
    vitb = FactoryConfig(embed_dim=768, depth=12, num_heads=12)  # ViT-B/16: 86 M parameters, 344 MB in fp32
    folder = write_hf_folder(tmp_path / "dinov3-vitb16-pretrain-lvd1689m", make_state_dict(vitb), vitb)
    warm_up = write_hf_folder(tmp_path / "dinov3-tiny-lvd1689m", make_state_dict("tiny"), "tiny")
    size_kib = (folder / "model.safetensors").stat().st_size // 1024
    loaded_tensors, load_peak = _peak_kib(plugins_dir, folder, warm_up, "load")
    verified_tensors, verify_peak = _peak_kib(plugins_dir, folder, warm_up, "verify")
    assert verified_tensors == loaded_tensors
    assert load_peak > size_kib  # loading holds the file's tensors and the model's: the measure can see it
    assert verify_peak < size_kib // 8, (verify_peak, size_kib)  # about the largest tensor (9 MB), not the model
