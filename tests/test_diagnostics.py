"""treeseg:diagnostics through processing.run, the report's contents, and the Diagnostics dialog."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy
import pytest
import torch
from qgis.core import Qgis, QgsSettings
from qgis.PyQt.QtCore import PYQT_VERSION_STR
from qgis.PyQt.QtWidgets import QApplication
from recording_progress import RecordingFeedback
from test_torch_choice import H100, path_with_nvidia_smi
from treeseg.treeseg_plugin import diagnostics
from treeseg.treeseg_plugin import settings as treeseg_settings
from treeseg.treeseg_plugin.gui.diagnostics_dialog import DiagnosticsDialog
from treeseg.treeseg_plugin.version import plugin_version

ALGORITHM_ID = "treeseg:diagnostics"
TOKEN = "hf_TreeSegDiagnosticsToken0123456789"  # noqa: S105 (a fake token for the tests)


@pytest.fixture()
def clean_settings(qgis_app, tmp_path):
    """Empty TreeSeg settings with a weights folder of its own."""
    QgsSettings().remove(treeseg_settings.GROUP)
    treeseg_settings.save_settings(treeseg_settings.TreeSegSettings(weights_folder=str(tmp_path / "weights")))
    yield tmp_path / "weights"
    QgsSettings().remove(treeseg_settings.GROUP)


def run_diagnostics(parameters: dict) -> tuple[dict, RecordingFeedback]:
    import processing

    feedback = RecordingFeedback()
    return processing.run(ALGORITHM_ID, parameters, feedback=feedback), feedback


def test_report_holds_the_real_versions_and_goes_to_the_log(treeseg_provider, clean_settings):
    results, feedback = run_diagnostics({})
    report = results["REPORT"]
    for expected in (f"version: {plugin_version()}", f"QGIS: {Qgis.version()}", f"PyQt: {PYQT_VERSION_STR}",
                     f"numpy: {numpy.__version__}", f"version: {torch.__version__}", sys.executable,
                     "GDAL: ", "CUDA available: ", "MPS available: ", "threads: ",
                     f"CPU capability: {torch.backends.cpu.get_cpu_capability()}",
                     f"dependency folder: {treeseg_settings.dependencies_base()}",
                     f"weights folder: {clean_settings}", "weights folder exists: no"):
        assert expected in report, expected
    assert report in feedback.texts
    assert "OUTPUT" not in results


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps is Linux only")
def test_report_lists_the_loaded_blas_and_cpu_flags_on_linux(treeseg_provider, clean_settings):
    report = run_diagnostics({})[0]["REPORT"]
    loaded = [line for line in report.splitlines() if line.startswith("loaded: /")]
    assert any("blas" in line for line in loaded), report
    assert len(loaded) == len(set(loaded))
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        flags = next(line for line in cpuinfo if line.startswith("flags")).split(":", 1)[1].split()
    for flag in diagnostics.CPU_FLAGS:
        assert f"{flag}: {'yes' if flag in flags else 'no'}" in report


def test_token_never_appears(treeseg_provider, clean_settings, monkeypatch):
    from test_gui_settings import store_auth_config

    config_id = store_auth_config("Basic", TOKEN)
    settings = treeseg_settings.load_settings()
    settings.auth_config_id = config_id
    treeseg_settings.save_settings(settings)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert treeseg_settings.hf_token() == TOKEN  # the token is really there to be found
    results, feedback = run_diagnostics({})
    assert "Hugging Face token: an authentication configuration is chosen; HF_TOKEN is set" in results["REPORT"]
    assert TOKEN not in results["REPORT"] and not any(TOKEN in text for text in feedback.texts)
    assert TOKEN not in diagnostics.as_html(diagnostics.collect())


def test_weights_found_are_listed_with_sizes(treeseg_provider, clean_settings):
    from treeseg.treeseg_plugin.dinov3.variants import VARIANTS

    clean_settings.mkdir()
    meta_name = VARIANTS["vits16"].meta_filename
    (clean_settings / meta_name).write_bytes(b"x" * 1234)
    report = run_diagnostics({})[0]["REPORT"]
    assert f"model ViT-S/16 (LVD-1689M): weights folder: {clean_settings / meta_name} (1,234 bytes, not verified)" \
        in report
    assert f"file: {meta_name} (1,234 bytes)" in report


def test_weights_in_the_caches_are_listed(treeseg_provider, clean_settings, tmp_path, monkeypatch):
    from huggingface_hub import constants
    from treeseg.treeseg_plugin.dinov3.variants import VARIANTS

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    revision = "0123456789abcdef" * 2 + "01234567"
    repo = tmp_path / "hub" / "models--facebook--dinov3-vitb16-pretrain-lvd1689m"
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    cached = repo / "snapshots" / revision / "model.safetensors"
    cached.write_bytes(b"s" * 10)
    hub_file = tmp_path / "torch" / "checkpoints" / VARIANTS["vitl16plus"].meta_filename
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"p" * 20)
    report = run_diagnostics({})[0]["REPORT"]
    assert f"model ViT-B/16 (LVD-1689M): Hugging Face cache: {cached} (10 bytes, not verified)" in report
    assert f"model ViT-L+/16 (LVD-1689M): torch hub cache: {hub_file} (20 bytes, not verified)" in report


@pytest.mark.parametrize(("suffix", "start"), [(".txt", "TreeSeg diagnostics\n"), (".html", "<html>")])
def test_output_file_is_written(treeseg_provider, clean_settings, tmp_path, suffix, start):
    path = tmp_path / f"report{suffix}"
    results, _ = run_diagnostics({"OUTPUT": str(path)})
    assert results["OUTPUT"] == str(path)
    written = path.read_text(encoding="utf-8")
    assert written.startswith(start)
    assert f"{numpy.__version__}" in written


def test_missing_torch_is_reported_not_raised(treeseg_provider, clean_settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what Python does for a package that is not installed
    report = run_diagnostics({})[0]["REPORT"]
    assert "torch: not installed (ModuleNotFoundError" in report
    assert f"numpy: {numpy.__version__}" in report  # the other sections are still there


def test_an_nvidia_gpu_with_a_cpu_only_torch_is_warned_about(treeseg_provider, clean_settings, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "none", None))
    report = run_diagnostics({})[0]["REPORT"]
    assert "NVIDIA GPUs (nvidia-smi): none\n" in report and "WARNING" not in report
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "gpu", H100))  # a stand-in: no GPU here
    monkeypatch.setattr(torch.version, "cuda", None)  # this machine's CPU-only build, whatever CI installs
    report = run_diagnostics({})[0]["REPORT"]
    assert f"NVIDIA GPUs (nvidia-smi): {H100}\n" in report
    assert "WARNING: an NVIDIA GPU is present but this torch is a CPU-only build" in report


def test_cuda_devices_are_named(treeseg_provider, clean_settings, monkeypatch):
    device = SimpleNamespace(name="NVIDIA Test GPU", total_memory=80 * 2**30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: device)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    report = run_diagnostics({})[0]["REPORT"]
    assert "CUDA available: yes\ncuDNN: 90100\nCUDA device 0: NVIDIA Test GPU, 80.0 GiB, compute capability 9.0\n" \
        in report


def test_math_libraries_and_cpu_parsing():
    maps = ("7f00-7f01 r-xp 00000000 08:01 12 /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3\n"
            "7f01-7f02 r--p 00001000 08:01 12 /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3\n"
            "7f02-7f03 r-xp 00000000 08:01 13 /opt/torch/lib/libgomp-a34b3233.so.1\n"
            "7f03-7f04 r-xp 00000000 08:01 14 /opt/intel/lib/libmkl_rt.so.2\n"
            "7f04-7f05 r-xp 00000000 08:01 15 /usr/lib/libomp.so.5\n"
            "7f05-7f06 r-xp 00000000 08:01 16 /usr/lib/libgdal.so.32\n"
            "7f06-7f07 rw-p 00000000 00:00 0 [heap]\n"
            "7f07-7f08 rw-p 00000000 00:00 0\n")
    assert diagnostics.loaded_math_libraries(maps) == [
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", "/opt/torch/lib/libgomp-a34b3233.so.1",
        "/opt/intel/lib/libmkl_rt.so.2", "/usr/lib/libomp.so.5"]
    cpuinfo = "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n"
    assert diagnostics.cpu_model_and_flags(cpuinfo) == ("Test CPU", {"fpu", "avx2", "amx_bf16"})
    assert diagnostics.cpu_model_and_flags("processor\t: 0\nFeatures\t: fp asimd\n") == (None, None)


def test_dialog_shows_the_report_and_copies_it(qgis_app, clean_settings):
    dialog = DiagnosticsDialog()
    text = dialog.report.toPlainText()
    assert dialog.report.isReadOnly()
    assert text.startswith("TreeSeg diagnostics") and f"QGIS: {Qgis.version()}" in text
    QApplication.clipboard().setText("something else")
    dialog.copy_button.click()
    assert QApplication.clipboard().text() == text
    dialog.close()
