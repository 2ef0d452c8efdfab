"""TreeSeg > Getting Started: the states of packages, weights and device, each with its fixing action.

The states come from the real sources: the packages from a temporary dependency folder (nothing installed)
or from this environment (installed), the weights from a temporary weights folder, empty or holding a
random-weight ViT-S/16 in Hugging Face's layout, the GPUs from an ``nvidia-smi`` stand-in on PATH (or none).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch
from checkpoint_factory import make_state_dict, write_hf_folder
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QFileDialog
from qt_events import wait_until
from test_torch_choice import H100, path_with_nvidia_smi
from treeseg.treeseg_plugin import readiness
from treeseg.treeseg_plugin.gui.getting_started_dialog import MISSING, OK, WARNING, GettingStartedDialog
from treeseg.treeseg_plugin.gui.weights_dialog import WeightsDialog

VITS16_FOLDER = "dinov3-vits16-pretrain-lvd1689m"  # a Hugging Face model in the weights folder (docs/weights.md)


@pytest.fixture()
def no_gpu(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "no-gpu", None))


@pytest.fixture()
def h100(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "gpu", H100))  # a stand-in: no GPU here


def nothing_installed(folder: Path):
    """A check that reads the packages' versions from an empty dependency folder, as on a fresh QGIS."""
    folder.mkdir(parents=True, exist_ok=True)

    def version_of(distribution: str):
        found = next(iter(importlib.metadata.distributions(name=distribution, path=[str(folder)])), None)
        return None if found is None else found.version

    return lambda: readiness.check(version_of=version_of)


def opened_dialog(check=readiness.check, **actions) -> GettingStartedDialog:
    """The dialog with recording actions (or those given), after its background check has finished."""
    calls = actions.pop("calls", [])
    dialog = GettingStartedDialog(
        None, actions.get("open_installer", lambda packages=(): calls.append(("installer", tuple(packages)))),
        actions.get("open_weights", lambda: calls.append("weights")),
        actions.get("open_diagnostics", lambda: calls.append("diagnostics")), check=check)
    assert dialog.packages.text() == "Checking…"  # the check runs in a task, not in the constructor
    wait_until(lambda: dialog.task is None)
    return dialog


def test_nothing_installed(weights_folder, tmp_path, h100):
    calls = []
    dialog = opened_dialog(nothing_installed(tmp_path / "deps"), calls=calls)
    assert dialog.states == {"packages": MISSING, "weights": MISSING, "device": MISSING}
    packages = dialog.packages.text()
    for name in ("torch", "safetensors", "huggingface_hub"):
        assert f"{name} is not installed" in packages
    assert str(weights_folder) in dialog.weights.text()
    device = dialog.device.text()
    assert "PyTorch is not installed yet" in device
    assert "NVIDIA H100 80GB HBM3" in device and "CUDA build" in device
    assert dialog.install_button.isEnabled()
    dialog.install_button.click()
    dialog.diagnostics_button.click()
    assert dialog.cuda_button.isHidden()  # step 1 installs the CUDA build here
    assert calls == [("installer", ()), "diagnostics"]


def test_packages_but_no_weights(weights_folder, no_gpu):
    dialog = opened_dialog()
    assert dialog.states == {"packages": OK, "weights": MISSING, "device": OK}
    assert "torch, safetensors and huggingface_hub are installed" in dialog.packages.text()
    assert not dialog.install_button.isEnabled()
    assert "no DINOv3 weights" in dialog.weights.text() and str(weights_folder) in dialog.weights.text()
    device = dialog.device.text()
    assert f"PyTorch {torch.__version__}" in device
    assert ("CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build") in device
    assert "No NVIDIA GPU was found" in device
    assert dialog.cuda_button.isHidden()


def test_everything_present(weights_folder, no_gpu):
    write_hf_folder(weights_folder / VITS16_FOLDER, make_state_dict("vits16", seed=0), "vits16")
    dialog = opened_dialog()
    assert dialog.states == {"packages": OK, "weights": OK, "device": OK}
    assert "ViT-S/16 (LVD-1689M)" in dialog.weights.text()
    assert str(weights_folder / VITS16_FOLDER) in dialog.weights.text()
    assert "weights folder" in dialog.weights.text()


@pytest.mark.skipif(torch.version.cuda is not None, reason="the CUDA build is installed")
def test_a_gpu_with_a_cpu_only_torch_offers_the_cuda_build(weights_folder, h100):
    calls = []
    dialog = opened_dialog(calls=calls)
    assert dialog.states["device"] == WARNING
    assert "NVIDIA H100 80GB HBM3" in dialog.device.text() and "install PyTorch's CUDA build" in dialog.device.text()
    assert not dialog.cuda_button.isHidden()
    dialog.cuda_button.click()
    assert calls == [("installer", ("torch>=2.1",))]


def test_the_links_open_the_gated_pages_and_metas_form(weights_folder, no_gpu, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toString()) or True)
    dialog = opened_dialog()
    for name in ("default_model", "aerial_model", "meta_form"):
        dialog.link_buttons[name].click()
    assert opened == ["https://huggingface.co/facebook/dinov3-vits16-pretrain-lvd1689m",
                      "https://huggingface.co/facebook/dinov3-vitl16-pretrain-sat493m",
                      "https://ai.meta.com/resources/models-and-libraries/dinov3-downloads/"]
    assert "ViT-S/16 (LVD-1689M)" in dialog.link_buttons["default_model"].text()


def test_add_file_imports_through_the_weights_manager_and_checks_again(weights_folder, no_gpu, tmp_path,
                                                                          monkeypatch):
    write_hf_folder(tmp_path / "download", make_state_dict("vits16", seed=1), "vits16")
    source = tmp_path / "download" / "model.safetensors"
    manager = WeightsDialog()
    dialog = opened_dialog(open_weights=lambda: manager)
    assert dialog.states["weights"] == MISSING
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(source), ""))
    dialog.add_file_button.click()
    wait_until(lambda: manager.task is None and dialog.task is None and dialog.states["weights"] == OK)
    assert (weights_folder / VITS16_FOLDER / "model.safetensors").is_file()
    assert str(weights_folder / VITS16_FOLDER) in dialog.weights.text()
    assert "Verified" in manager.message.text()
