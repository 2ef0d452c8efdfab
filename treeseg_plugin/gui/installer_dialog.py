"""The dependency installer dialog: pip (see :mod:`..installer`) in a QgsTask, with its log and a restart prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtGui import QFontDatabase
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from .. import installer
from ..nvidia_gpus import CPU_DOWNLOAD, CUDA_DOWNLOAD, nvidia_gpus


class InstallTask(QgsTask):
    """Runs :func:`installer.install`; each pip line is emitted as ``line`` (delivered in the main thread)."""

    line = pyqtSignal(str)
    done = pyqtSignal(object)

    def __init__(self, plan: installer.InstallPlan):
        super().__init__("Installing TreeSeg's Python packages", QgsTask.Flag.CanCancel)
        self.plan = plan
        self.result: Optional[installer.InstallResult] = None

    def run(self) -> bool:
        self.result = installer.install(self.plan, self.line.emit, self.isCanceled)
        return self.result.ok

    def finished(self, result: bool) -> None:
        self.done.emit(self.result)


class InstallerDialog(QDialog):
    """Shows what is missing, lets the user choose the PyTorch build, runs pip and shows its log."""

    def __init__(self, folder: Path, problems: Sequence[installer.Problem], packages: Sequence[str],
                 find_links: Optional[Path] = None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setWindowTitle("TreeSeg – Install Python packages")
        self.setObjectName("treeseg_installer_dialog")
        self.folder = Path(folder)
        self.packages = tuple(packages)
        self.find_links = find_links
        self.task: Optional[InstallTask] = None
        self.result: Optional[installer.InstallResult] = None
        self.restart_prompt: Optional[QMessageBox] = None

        missing = "".join(f"<li>{problem}</li>" for problem in problems)
        needs = f"<p>TreeSeg needs these Python packages:</p><ul>{missing}</ul>" if missing else ""
        gpus = nvidia_gpus()
        preselected = (f"An NVIDIA GPU was found ({gpus[0]}): the CUDA build is selected." if gpus else
                       "No NVIDIA GPU was found (nvidia-smi): the CPU build is selected.")
        self.intro = QLabel(
            f"{needs}<p>pip will install <b>{', '.join(self.packages)}</b> into<br><code>{self.folder}</code><br>"
            "(TreeSeg's own folder: QGIS's Python and its numpy are not changed). It downloads from PyPI and "
            f"download.pytorch.org; a CUDA build of PyTorch is {CUDA_DOWNLOAD}, the CPU build {CPU_DOWNLOAD}.</p>"
            f"<p>{preselected}</p>")
        self.intro.setWordWrap(True)
        self.cpu = QRadioButton("PyTorch for the CPU only (smaller; works everywhere)")
        self.cuda = QRadioButton("PyTorch with CUDA (NVIDIA GPU with a recent driver)")
        (self.cuda if gpus else self.cpu).setChecked(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("pip's output appears here.")
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.install_button = self.buttons.addButton("Install", QDialogButtonBox.ButtonRole.ActionRole)
        self.install_button.clicked.connect(self.start)
        self.cancel_button = self.buttons.addButton("Cancel installation", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)

        layout = QVBoxLayout(self)
        for widget in (self.intro, self.cpu, self.cuda, self.progress, self.log, self.status, self.buttons):
            layout.addWidget(widget)
        self.resize(760, 560)

    def build(self) -> str:
        return installer.CUDA if self.cuda.isChecked() else installer.CPU

    def start(self) -> None:
        """Start pip in a background task."""
        plan = installer.InstallPlan(self.folder, self.packages, self.build(), find_links=self.find_links)
        self.task = InstallTask(plan)
        self.task.line.connect(self.log.appendPlainText)
        self.task.done.connect(self.finish)
        self.progress.setRange(0, 0)  # busy: pip reports no overall progress
        self.status.setText("Running pip…")
        for widget in (self.install_button, self.cpu, self.cuda):
            widget.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def reject(self) -> None:
        """Closing the dialog cancels a running installation."""
        self.cancel()
        super().reject()

    def finish(self, result: Optional[installer.InstallResult]) -> None:
        """Show the outcome; on success, prompt for a restart."""
        self.task = None
        self.result = result
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        ok = result is not None and result.ok
        self.progress.setValue(1 if ok else 0)
        self.status.setText(result.message if result is not None else "Installation canceled; nothing was installed.")
        if not ok:
            for widget in (self.install_button, self.cpu, self.cuda):
                widget.setEnabled(True)
            return
        self.restart_prompt = QMessageBox(QMessageBox.Icon.Information, "Restart QGIS",
                                          f"{result.message}\n\nTreeSeg uses the new packages after QGIS restarts.",
                                          QMessageBox.StandardButton.Ok, self)
        self.restart_prompt.open()
