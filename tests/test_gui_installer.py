"""The dependency installer dialog: pip in a QgsTask with its log, progress and restart prompt (local wheels only)."""

from __future__ import annotations

from qt_events import wait_until
from test_installer import write_wheel
from test_torch_choice import H100, NO_DRIVER, path_with_nvidia_smi
from treeseg.treeseg_plugin import dependency_folder, installer
from treeseg.treeseg_plugin.gui.installer_dialog import InstallerDialog

PROBLEMS = [installer.Problem(installer.REQUIREMENTS[0], None), installer.Problem(installer.REQUIREMENTS[1], "0.3.1")]


def run_install(dialog: InstallerDialog) -> None:
    dialog.install_button.click()
    assert dialog.progress.maximum() == 0  # busy while pip runs
    assert not dialog.install_button.isEnabled() and dialog.cancel_button.isEnabled()
    wait_until(lambda: dialog.task is None)


def test_the_build_is_preselected_by_the_nvidia_gpus_found(qgis_app, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "gpu", H100))  # a stand-in: no GPU here
    dialog = InstallerDialog(tmp_path / "deps", PROBLEMS, ("torch>=2.1",))
    assert dialog.build() == installer.CUDA and H100 in dialog.intro.text()
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "no-driver", NO_DRIVER, status=9))
    dialog = InstallerDialog(tmp_path / "deps", PROBLEMS, ("torch>=2.1",))
    assert dialog.build() == installer.CPU and "No NVIDIA GPU was found" in dialog.intro.text()


def test_dialog_names_the_problems_and_the_target(qgis_app, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_with_nvidia_smi(tmp_path / "none", None))
    dialog = InstallerDialog(tmp_path / "deps", PROBLEMS, ("torch>=2.1", "safetensors>=0.4"))
    text = dialog.intro.text()
    assert "torch is not installed" in text and "safetensors 0.3.1 is older than 0.4" in text
    assert str(tmp_path / "deps") in text
    assert dialog.build() == installer.CPU
    dialog.cuda.setChecked(True)
    assert dialog.build() == installer.CUDA


def test_successful_install_shows_the_log_and_asks_for_a_restart(qgis_app, tmp_path):
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "treeseg-dummy", "1.0")
    folder = tmp_path / "deps" / dependency_folder.platform_key()
    dialog = InstallerDialog(folder, PROBLEMS, ("treeseg-dummy",), find_links=wheels)
    run_install(dialog)

    log = dialog.log.toPlainText()
    assert "--target" in log and "--only-binary=:all:" in log and "--no-index" in log
    assert "Successfully installed treeseg-dummy-1.0" in log
    assert dialog.result.ok and dependency_folder.is_complete(folder)
    assert (dialog.progress.maximum(), dialog.progress.value()) == (1, 1)
    assert "Restart QGIS" in dialog.status.text()
    assert dialog.restart_prompt is not None and dialog.restart_prompt.isVisible()
    assert "restarts" in dialog.restart_prompt.text()
    dialog.restart_prompt.close()


def test_failed_install_shows_pip_error_and_can_be_retried(qgis_app, tmp_path):
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "treeseg-dummy-broken", "1.0", requires=("treeseg-not-on-the-index",))
    folder = tmp_path / "deps" / "py"
    dialog = InstallerDialog(folder, PROBLEMS, ("treeseg-dummy-broken",), find_links=wheels)
    run_install(dialog)

    assert "treeseg-not-on-the-index" in dialog.log.toPlainText()
    assert "pip failed" in dialog.status.text() and "nothing was installed" in dialog.status.text()
    assert dialog.restart_prompt is None and dialog.progress.value() == 0
    assert dialog.install_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert not folder.exists() and not folder.with_name("py.partial").exists()
