"""TreeSeg > Weights: status of every released ViT and CHMv2, Add file (verified by the loader), Verify, Download."""

from __future__ import annotations

import shutil
import time
import types
from pathlib import Path

import huggingface_hub
import pytest
import torch
from checkpoint_factory import make_state_dict, sha256_of, write_hf_folder, write_meta_pth
from huggingface_hub import constants
from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import QFileDialog
from qt_events import wait_until
from treeseg.treeseg_plugin import settings as treeseg_settings
from treeseg.treeseg_plugin.dinov3.chmv2 import config as chmv2
from treeseg.treeseg_plugin.dinov3.variants import VARIANTS
from treeseg.treeseg_plugin.gui import weights_tasks
from treeseg.treeseg_plugin.gui.weights_dialog import STATUS_COLUMN, WeightsDialog

REPO = "facebook/dinov3-vits16-pretrain-lvd1689m"
TOKEN = "hf_WeightsTestToken0123456789"  # noqa: S105 (a fake token for the tests)
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"  # the fake hub's current commit


def segment_trees():
    """A fresh Segment Trees instance, outside the Processing registry (test_plugin.py expects it empty)."""
    from treeseg.processing_provider.segment_trees import SegmentTreesAlgorithm

    return SegmentTreesAlgorithm().create()


@pytest.fixture(scope="module")
def hf_vits16(tmp_path_factory) -> Path:
    """A random-weight ViT-S/16 in Hugging Face's layout, in a folder named like the repository."""
    folder = tmp_path_factory.mktemp("download") / "dinov3-vits16-pretrain-lvd1689m"
    write_hf_folder(folder, make_state_dict("vits16", seed=0), "vits16")
    return folder / "model.safetensors"


def row_of(dialog: WeightsDialog, name: str) -> int:
    return [variant.name for variant in dialog.variants].index(name)


def status(dialog: WeightsDialog, name: str) -> str:
    return dialog.table.item(row_of(dialog, name), STATUS_COLUMN).text()


def add_file(dialog: WeightsDialog, monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(path), ""))
    dialog.add_button.click()
    wait_until(lambda: dialog.task is None)


def test_lists_every_released_vit_as_missing_with_its_licence(weights_folder):
    dialog = WeightsDialog()
    assert dialog.table.rowCount() == len(VARIANTS) + 1  # and CHMv2
    for row, variant in enumerate(dialog.variants):
        assert dialog.table.item(row, 0).text() == variant.display_name
        assert "Gated" in dialog.table.item(row, 2).text()
        assert dialog.table.item(row, STATUS_COLUMN).text() == "Missing"
    assert "https://huggingface.co/facebook/dinov3-vitl16-pretrain-sat493m" in dialog.table.item(
        row_of(dialog, "vitl16-sat493m"), 2).toolTip()
    meta_only = dialog.table.item(row_of(dialog, "vitl16plus"), 2)
    assert meta_only.text() == "Gated: Meta's form only"
    assert VARIANTS["vitl16plus"].meta_filename in meta_only.toolTip()
    assert str(weights_folder) in dialog.notice.text()
    assert "Offline" in dialog.notice.text() and "Add file" in dialog.notice.text()  # HF_HUB_OFFLINE=1 in tests
    dialog.table.selectRow(0)
    assert not dialog.download_button.isEnabled() and not dialog.verify_button.isEnabled()


def test_add_file_verifies_then_imports_under_the_model_name(weights_folder, hf_vits16, monkeypatch):
    dialog = WeightsDialog()
    add_file(dialog, monkeypatch, hf_vits16)

    imported = weights_folder / "dinov3-vits16-pretrain-lvd1689m" / "model.safetensors"
    assert imported.is_file() and (imported.parent / "config.json").is_file()
    assert treeseg_settings.weights_in_folder("vits16") == imported.parent
    digest = sha256_of(hf_vits16)
    assert f"SHA-256 {digest}" in dialog.message.text()
    text = status(dialog, "vits16")
    assert text.startswith(f"Found in the weights folder: {imported}; verified: ")
    assert f"SHA-256 {digest}" in text
    loaded, total = text.split("verified: ")[1].split(" tensors")[0].split("/")
    assert loaded == total and int(total) > 100
    assert status(dialog, "vitb16") == "Missing"

    imported.touch()  # a changed file is verified again on request
    dialog.refresh()
    assert "not verified yet" in status(dialog, "vits16")
    dialog.table.selectRow(row_of(dialog, "vits16"))
    assert dialog.verify_button.isEnabled()
    dialog.verify_button.click()
    wait_until(lambda: dialog.task is None)
    assert f"SHA-256 {digest}" in status(dialog, "vits16")


def test_segment_trees_finds_the_imported_model_by_name(weights_folder, hf_vits16, qgis_processing, monkeypatch,
                                                         tmp_path):
    import processing
    from data_factory import make_raster

    add_file(WeightsDialog(), monkeypatch, hf_vits16)
    result = processing.run(segment_trees(), {
        "INPUT": str(make_raster(tmp_path / "in.tif", 64, 64)), "MODEL": 0, "K": 2, "TILE_SIZE": 64,
        "OVERLAP": 16, "STATS": str(tmp_path / "stats.json"), "OUTPUT": str(tmp_path / "out.tif")})
    stats = (tmp_path / "stats.json").read_text()
    assert result["CHOSEN_K"] == 2
    assert str(weights_folder / "dinov3-vits16-pretrain-lvd1689m" / "model.safetensors") in stats


def test_unrecognised_file_keeps_its_name(weights_folder, tmp_path, monkeypatch):
    custom = write_meta_pth(tmp_path / "my_finetuned_vit.pth", make_state_dict("tiny", seed=1))
    dialog = WeightsDialog()
    add_file(dialog, monkeypatch, custom)
    assert (weights_folder / custom.name).is_file()
    assert "custom ViT" in dialog.message.text() and "choose it as Weights file" in dialog.message.text()
    assert all(status(dialog, name) == "Missing" for name in VARIANTS)


def test_a_broken_file_is_refused_and_not_copied(weights_folder, tmp_path, monkeypatch):
    broken = tmp_path / "dinov3_vits16_pretrain_lvd1689m.pth"
    broken.write_bytes(b"not a checkpoint" * 100)
    dialog = WeightsDialog()
    add_file(dialog, monkeypatch, broken)
    assert str(broken) in dialog.message.text()
    assert not weights_folder.exists() or not any(weights_folder.iterdir())
    assert dialog.add_button.isEnabled() and not dialog.progress.isVisibleTo(dialog)


@pytest.fixture(scope="module")
def chmv2_files(tmp_path_factory) -> dict[str, Path]:
    """A random-weight tiny CHMv2 as transformers saves it, and the same weights as Meta's decoder .pth."""
    pytest.importorskip("transformers")
    from tests.chmv2_factory import write_hf_chmv2, write_meta_chmv2

    root = tmp_path_factory.mktemp("chmv2")
    folder, model = write_hf_chmv2(root / "hf", seed=5)
    decoder, _ = write_meta_chmv2(root / "meta", model)
    return {"hf": folder / "model.safetensors", "decoder": decoder}


def tensors_in(path: Path) -> int:
    import safetensors

    with safetensors.safe_open(str(path), "pt") as file:
        return len(list(file.keys()))


def test_chmv2_is_listed_missing_with_its_gated_routes(weights_folder):
    dialog = WeightsDialog()
    row = row_of(dialog, chmv2.WEIGHTS_NAME)
    assert dialog.table.item(row, 0).text() == chmv2.DISPLAY_NAME
    assert dialog.table.item(row, 1).text() == "337 M"  # ViT-L/16 and the DPT head
    assert status(dialog, chmv2.WEIGHTS_NAME) == "Missing"
    licence = dialog.table.item(row, 2)
    assert licence.text() == "Gated: Hugging Face or Meta's form"
    for part in (f"https://huggingface.co/{chmv2.HF_REPO_ID}", chmv2.DECODER_FILENAME, chmv2.CHMV2_DOWNLOAD_FORM,
                 "ViT-L/16 (SAT-493M)"):
        assert part in licence.toolTip()
    dialog.table.selectRow(row)
    assert not dialog.verify_button.isEnabled()


def test_chmv2_import_is_verified_and_found_where_canopy_height_looks(weights_folder, chmv2_files, monkeypatch):
    dialog = WeightsDialog()
    add_file(dialog, monkeypatch, chmv2_files["hf"])

    imported = weights_folder / chmv2.HF_REPO_NAME / "model.safetensors"
    assert imported.is_file() and (imported.parent / "config.json").is_file()
    total = tensors_in(chmv2_files["hf"])
    text = status(dialog, chmv2.WEIGHTS_NAME)
    assert text == (f"Found in the weights folder: {imported}; verified: {total}/{total} tensors, "
                    f"SHA-256 {sha256_of(chmv2_files['hf'])}")
    assert chmv2.DISPLAY_NAME in dialog.message.text()
    assert all(status(dialog, name) == "Missing" for name in VARIANTS)  # not taken for a backbone
    assert treeseg_settings.canopy_height_sources("", None) == (str(imported.parent), None)


def test_chmv2_meta_decoder_comes_first_and_verify_checks_its_name_hash(weights_folder, chmv2_files, monkeypatch):
    add_file(WeightsDialog(), monkeypatch, chmv2_files["hf"])
    released_name = weights_folder / chmv2.DECODER_FILENAME
    shutil.copy(chmv2_files["decoder"], released_name)  # random weights under the released name
    dialog = WeightsDialog()
    assert status(dialog, chmv2.WEIGHTS_NAME) == (f"Found in the weights folder: {released_name} (not verified yet: "
                                                  "select it and press Verify)")
    assert treeseg_settings.canopy_height_sources("", None) == (str(released_name), "vitl16-sat493m")
    dialog.table.selectRow(row_of(dialog, chmv2.WEIGHTS_NAME))
    dialog.verify_button.click()
    wait_until(lambda: dialog.task is None)
    assert f"does not match the {chmv2.DECODER_SHA8} in its name" in dialog.message.text()
    assert "not verified yet" in status(dialog, chmv2.WEIGHTS_NAME)

    released_name.unlink()
    add_file(dialog, monkeypatch, chmv2_files["decoder"])  # Meta's layout, under its own name: the head alone
    total = len(torch.load(chmv2_files["decoder"], weights_only=True))
    assert (weights_folder / chmv2_files["decoder"].name).is_file()
    assert f"{total}/{total} tensors" in dialog.message.text()
    assert "choose it as Weights file in Segment Trees or Canopy Height" in dialog.message.text()


def test_offline_download_says_so_and_points_to_the_manual_route():
    with pytest.raises(weights_tasks.DownloadError) as error:
        weights_tasks.download_weights(REPO, None, lambda fraction: None, lambda: False)
    message = str(error.value)
    assert "Offline" in message and "HF_HUB_OFFLINE" in message
    assert "dinov3_vits16_pretrain_lvd1689m-08c60483.pth" in message and "Add file" in message
    with pytest.raises(weights_tasks.DownloadError) as error:  # CHMv2: its own file and Meta form
        weights_tasks.download_weights(chmv2.HF_REPO_ID, None, lambda fraction: None, lambda: False)
    assert chmv2.DECODER_FILENAME in str(error.value) and chmv2.CHMV2_DOWNLOAD_FORM in str(error.value)


@pytest.fixture()
def online(monkeypatch):
    """huggingface_hub out of offline mode, with snapshot_download replaced by a fake that never connects."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    calls = {}

    def fake_model_info(self, repo_id, token):
        calls.update(looked_up=repo_id)
        return types.SimpleNamespace(sha=COMMIT)

    def fake_snapshot_download(repo_id, *, revision, allow_patterns, token, tqdm_class):
        calls.update(repo_id=repo_id, token=token, revision=revision)
        with tqdm_class(total=1000, unit="B", name="huggingface_hub.snapshot_download") as bar:
            for _ in range(10):
                time.sleep(calls.get("delay", 0))
                bar.update(100)
        return "/cache/snapshot"

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", fake_model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    return calls


def test_download_reports_progress_and_passes_the_token(online):
    fractions = []
    folder = weights_tasks.download_weights(REPO, TOKEN, fractions.append, lambda: False)
    assert folder == Path("/cache/snapshot")
    assert online == {"looked_up": REPO, "repo_id": REPO, "token": TOKEN, "revision": COMMIT}
    assert fractions == pytest.approx([0.1 * step for step in range(1, 11)])


def test_download_cancel_stops_at_the_next_chunk(online):
    fractions = []
    with pytest.raises(weights_tasks.JobCanceledError):
        weights_tasks.download_weights(REPO, TOKEN, fractions.append, lambda: len(fractions) >= 3)
    assert len(fractions) == 3


def test_download_failures_are_explained_without_the_token(online, monkeypatch):
    def failing(*args, **kwargs):
        raise OSError(f"connection refused while sending Authorization: Bearer {TOKEN}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    with pytest.raises(weights_tasks.DownloadError) as error:
        weights_tasks.download_weights(REPO, TOKEN, lambda fraction: None, lambda: False)
    assert "could not be reached" in str(error.value)
    assert TOKEN not in str(error.value)


def test_download_button_runs_a_cancellable_task(weights_folder, online, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    treeseg_settings.save_settings(treeseg_settings.TreeSegSettings(str(weights_folder), allow_download=True))
    dialog = WeightsDialog()
    assert "Hugging Face cache" in dialog.notice.text()
    dialog.table.selectRow(row_of(dialog, "vitl16plus"))
    assert not dialog.download_button.isEnabled()  # Meta's form only
    dialog.table.selectRow(row_of(dialog, "vits16"))
    assert dialog.download_button.isEnabled()

    dialog.download_button.click()
    wait_until(lambda: dialog.task is None)
    assert dialog.message.text().startswith("Downloaded ViT-S/16 (LVD-1689M) to /cache/snapshot")
    assert online["token"] == TOKEN

    online["delay"] = 0.2
    dialog.download_button.click()
    assert dialog.cancel_button.isVisibleTo(dialog) and not dialog.add_button.isEnabled()
    dialog.cancel_button.click()
    wait_until(lambda: dialog.task is None)
    assert dialog.message.text().endswith("canceled.")
    assert TOKEN not in dialog.message.text() + dialog.notice.text()
    assert QgsApplication.taskManager().countActiveTasks() == 0
