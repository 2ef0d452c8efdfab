"""Weight resolution: local files and folders, the Hugging Face cache, offline mode, token secrecy.

Hub scenarios run in a subprocess with a real environment (HF_HOME = a temp dir, HF_HUB_OFFLINE=1),
because huggingface_hub reads those variables when it is imported. No test touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from treeseg.treeseg_plugin.dinov3 import CheckpointError, WeightsNotFoundError, load_backbone
from treeseg.treeseg_plugin.dinov3.variants import META_DOWNLOAD_FORM

from tests.checkpoint_factory import make_state_dict, write_hf_folder, write_meta_pth

ROOT = Path(__file__).resolve().parents[1]
FAKE_TOKEN = "hf_FakeToken0123456789abcdefSECRET"  # noqa: S105 - a fake token the tests hunt for


@pytest.fixture(scope="module")
def tiny_sd():
    return make_state_dict("tiny", seed=4)


def test_local_meta_file(tiny_sd, tmp_path):
    lines = []
    path = write_meta_pth(tmp_path / "weights.pth", tiny_sd)
    bb = load_backbone(str(path), log=lines.append)
    assert bb.weights.path == path and f"Weights: {path} [local file]" in lines
    assert bb.weights.dataset is None and bb.mean == (0.485, 0.456, 0.406)
    assert any("ImageNet mean/std of LVD-1689M (default" in line for line in lines)


def test_hf_folder_and_file_with_sibling_config(tiny_sd, tmp_path):
    folder = write_hf_folder(tmp_path, tiny_sd, "tiny")
    lines = []
    assert load_backbone(folder, log=lines.append).weights.path == folder / "model.safetensors"
    assert any(f"heads from {folder / 'config.json'}" in line for line in lines)
    bb = load_backbone(folder / "model.safetensors")  # the file alone still finds its config.json
    assert bb.num_heads == 2
    (folder / "config.json").unlink()
    assert load_backbone(folder).num_heads == 1  # no config, not a released shape: head dim 64


def test_dataset_from_file_name(tiny_sd, tmp_path):
    lines = []
    bb = load_backbone(write_meta_pth(tmp_path / "dinov3_tiny_pretrain_sat493m.pth", tiny_sd), log=lines.append)
    assert bb.weights.dataset == "sat493m"
    assert (bb.mean, bb.std) == ((0.430, 0.411, 0.296), (0.213, 0.156, 0.143))
    assert any("Normalisation: SAT-493M mean/std" in line for line in lines)


def test_dataset_from_preprocessor_config(tiny_sd, tmp_path):
    folder = write_hf_folder(tmp_path / "model", tiny_sd, "tiny")
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.430, 0.411, 0.296]}))
    assert load_backbone(folder).weights.dataset == "sat493m"


def test_unknown_source(tmp_path):
    with pytest.raises(WeightsNotFoundError) as error:
        load_backbone(str(tmp_path / "missing.pth"))
    message = str(error.value)
    assert "missing.pth" in message and "vits16" in message and META_DOWNLOAD_FORM in message


def test_folder_without_weights(tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"no model\.safetensors"):
        load_backbone(tmp_path)


def test_variant_without_hf_repo(tiny_sd, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as error:
        load_backbone("vitl16plus")
    message = str(error.value)
    assert "dinov3_vitl16plus_pretrain_lvd1689m-46503df0.pth" in message and META_DOWNLOAD_FORM in message
    # A file in torch hub's checkpoints folder is found, and its name's hash is checked.
    write_meta_pth(tmp_path / "checkpoints" / "dinov3_vitl16plus_pretrain_lvd1689m-46503df0.pth", tiny_sd)
    with pytest.raises(CheckpointError, match="does not match the 46503df0"):
        load_backbone("vitl16plus")
    lines = []
    load_backbone("vitl16plus", verify_hash=False, log=lines.append)
    assert any("[torch hub cache]" in line for line in lines)


# ---------------------------------------------------------------- Hugging Face cache and offline mode


def _add_to_hf_cache(hub: Path, repo_id: str, folder: Path, revision: str = "0123456789abcdef" * 2 + "01234567"):
    """Lay out `folder`'s files like huggingface_hub's cache: blobs/<sha256>, snapshots/<rev>/<name> -> blob,
    refs/main = <rev>."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "blobs").mkdir()
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.write_bytes(file.read_bytes())
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))


_HUB_SCRIPT = r"""
import json, os, sys
from treeseg_plugin.dinov3 import load_backbone, DinoV3Error

def attempt(source, **kwargs):
    lines = []
    try:
        bb = load_backbone(source, log=lines.append, **kwargs)
    except DinoV3Error as error:
        chained = error.__cause__ is not None or error.__context__ is not None
        return {"error": type(error).__name__, "message": str(error), "repr": repr(error), "chained": chained,
                "log": lines}
    return {"variant": bb.variant, "dataset": bb.weights.dataset, "mean": bb.mean, "path": str(bb.weights.path),
            "heads": bb.num_heads, "log": lines}

token = os.environ["HF_TOKEN"]
print(json.dumps({
    "cached_variant": attempt("vits16"),
    "cached_sat_repo": attempt("facebook/dinov3-vitl16-pretrain-sat493m", allow_download=True, token=token),
    "offline_download": attempt("vitb16", allow_download=True, token=token),
    "offline_repo": attempt("facebook/dinov3-vith16plus-pretrain-lvd1689m", allow_download=True, token=token),
    "no_download": attempt("vitb16"),
}))
"""


@pytest.fixture(scope="module")
def hub_results(tiny_sd, tmp_path_factory):
    """Run the hub scenarios once: a fake HF cache holding two repos, offline, a fake token in env + args."""
    home = tmp_path_factory.mktemp("hf_home")
    model = write_hf_folder(tmp_path_factory.mktemp("tiny_hf"), tiny_sd, "tiny")
    for repo_id in ("facebook/dinov3-vits16-pretrain-lvd1689m", "facebook/dinov3-vitl16-pretrain-sat493m"):
        _add_to_hf_cache(home / "hub", repo_id, model)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", HF_TOKEN=FAKE_TOKEN, TORCH_HOME=str(home / "torch"),
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", _HUB_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert FAKE_TOKEN not in proc.stdout + proc.stderr
    return json.loads(proc.stdout), home


def test_variant_name_found_in_hf_cache(hub_results):
    results, home = hub_results
    found = results["cached_variant"]
    assert "error" not in found, found
    snapshot = home / "hub" / "models--facebook--dinov3-vits16-pretrain-lvd1689m" / "snapshots"
    assert found["path"].startswith(str(snapshot)) and found["path"].endswith("model.safetensors")
    assert found["heads"] == 2  # config.json of the snapshot was used
    assert any("[Hugging Face cache (facebook/dinov3-vits16-pretrain-lvd1689m)]" in line for line in found["log"])


def test_repo_id_found_in_hf_cache_gives_sat_normalisation(hub_results):
    found = hub_results[0]["cached_sat_repo"]
    assert "error" not in found, found
    assert found["dataset"] == "sat493m" and found["mean"] == [0.430, 0.411, 0.296]


@pytest.mark.parametrize("case", ["offline_download", "offline_repo", "no_download"])
def test_not_cached_gives_the_way_out_and_never_the_token(hub_results, case):
    result = hub_results[0][case]
    assert result["error"] == "WeightsNotFoundError"
    message = result["message"]
    repo = "facebook/dinov3-vith16plus-pretrain-lvd1689m" if case == "offline_repo" else \
        "facebook/dinov3-vitb16-pretrain-lvd1689m"
    assert repo in message and f"https://huggingface.co/{repo}" in message
    assert "licence" in message and META_DOWNLOAD_FORM in message and "HF_TOKEN" in message
    assert str(hub_results[1] / "hub") in message  # where it looked
    expected = "downloading is off (allow_download=False)" if case == "no_download" else "HF_HUB_OFFLINE"
    assert expected in message
    if case == "offline_download":
        assert "dinov3_vitb16_pretrain_lvd1689m-73cec8be.pth" in message
    assert not result["chained"]  # no hub exception (which may hold request headers) is attached
    for text in [message, result["repr"], *result["log"]]:
        assert FAKE_TOKEN not in text and "FakeToken" not in text


def test_hf_cache_layout_matches_huggingface_hub(tiny_sd, tmp_path):
    """The fake cache above is the layout huggingface_hub itself reads."""
    from huggingface_hub import try_to_load_from_cache

    model = write_hf_folder(tmp_path / "model", tiny_sd, "tiny")
    _add_to_hf_cache(tmp_path / "hub", "facebook/x", model)
    hit = try_to_load_from_cache("facebook/x", "model.safetensors", cache_dir=tmp_path / "hub")
    assert isinstance(hit, str) and Path(hit).read_bytes() == (model / "model.safetensors").read_bytes()


class GatedRepoError(Exception):
    """Stands in for huggingface_hub's error of that name (classified by name, across hub versions)."""


class _Forbidden:
    status_code = 403


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class _Info:
    """What huggingface_hub's model_info answers that the download uses: the repository's current commit."""

    sha: str


@pytest.fixture
def online_hub(tmp_path, monkeypatch):
    """huggingface_hub with an empty cache, online mode, and `snapshot_download` replaced by the test's."""
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, token: _Info(HUB_COMMIT))

    def use(fake):
        monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)

    return use


@pytest.mark.parametrize(("failure", "response", "reason"), [
    (GatedRepoError(f"Client Error for url https://huggingface.co/x (token {FAKE_TOKEN})"), None, "access denied"),
    (RuntimeError(f"HTTP error, token {FAKE_TOKEN}"), _Forbidden(), "access denied"),
    (OSError(f"Connection refused; headers: Authorization: Bearer {FAKE_TOKEN}"), None, "could not be reached"),
])
def test_download_failures_are_explained_without_the_token(online_hub, failure, response, reason):
    failure.response = response
    seen = {}

    def fake_download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        raise failure

    online_hub(fake_download)
    lines = []
    with pytest.raises(WeightsNotFoundError) as error:
        load_backbone("vits16", allow_download=True, token=FAKE_TOKEN, log=lines.append)
    message = str(error.value)
    assert seen["repo_id"] == "facebook/dinov3-vits16-pretrain-lvd1689m" and seen["token"] == FAKE_TOKEN
    assert seen["revision"] == HUB_COMMIT  # every file from the commit looked up first
    assert reason in message and "licence" in message and META_DOWNLOAD_FORM in message
    assert error.value.__cause__ is None and error.value.__context__ is None
    assert all(FAKE_TOKEN not in text for text in [message, repr(error.value), *lines])
    assert any("Downloading facebook/dinov3-vits16-pretrain-lvd1689m" in line for line in lines)


def test_download_is_used_when_allowed(online_hub, tiny_sd, tmp_path):
    folder = write_hf_folder(tmp_path / "snapshot", tiny_sd, "tiny")
    online_hub(lambda repo_id, **kwargs: str(folder))
    lines = []
    bb = load_backbone("facebook/dinov3-vitl16-pretrain-sat493m", allow_download=True, log=lines.append)
    assert bb.weights.path == folder / "model.safetensors" and bb.weights.dataset == "sat493m"
    assert any("[downloaded from Hugging Face (facebook/dinov3-vitl16-pretrain-sat493m)]" in line for line in lines)
