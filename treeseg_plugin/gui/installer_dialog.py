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

from ...processing_provider.dependencies import problem_text
from .. import installer
from ..i18n import tr
from ..nvidia_gpus import CPU_DOWNLOAD, CUDA_DOWNLOAD, nvidia_gpus


class InstallTask(QgsTask):
    """Runs :func:`installer.install`; each pip line is emitted as ``line`` (delivered in the main thread)."""

    line = pyqtSignal(str)
    done = pyqtSignal(object)

    def __init__(self, plan: installer.InstallPlan):
        super().__init__(tr("Installing TreeSeg's Python packages"), QgsTask.Flag.CanCancel)
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
        self.setWindowTitle(tr("TreeSeg – Install Python packages"))
        self.setObjectName("treeseg_installer_dialog")
        self.folder = Path(folder)
        self.packages = tuple(packages)
        self.find_links = find_links
        self.task: Optional[InstallTask] = None
        self.result: Optional[installer.InstallResult] = None
        self.restart_prompt: Optional[QMessageBox] = None

        missing = "".join(f"<li>{problem_text(problem)}</li>" for problem in problems)
        needs = f"<p>{tr('TreeSeg needs these Python packages:')}</p><ul>{missing}</ul>" if missing else ""
        gpus = nvidia_gpus()
        preselected = (tr("An NVIDIA GPU was found ({gpu}): the CUDA build is selected.").format(gpu=gpus[0]) if gpus
                       else tr("No NVIDIA GPU was found (nvidia-smi): the CPU build is selected."))
        install = tr("pip will install <b>{packages}</b> into<br><code>{folder}</code><br>(TreeSeg's own folder: "
                     "QGIS's Python and its numpy are not changed). It downloads from PyPI and download.pytorch.org; "
                     "a CUDA build of PyTorch is {cuda}, the CPU build {cpu}.").format(
                         packages=", ".join(self.packages), folder=self.folder, cuda=CUDA_DOWNLOAD, cpu=CPU_DOWNLOAD)
        self.intro = QLabel(f"{needs}<p>{install}</p><p>{preselected}</p>")
        self.intro.setWordWrap(True)
        self.cpu = QRadioButton(tr("PyTorch for the CPU only (smaller; works everywhere)"))
        self.cuda = QRadioButton(tr("PyTorch with CUDA (NVIDIA GPU with a recent driver)"))
        (self.cuda if gpus else self.cpu).setChecked(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText(tr("pip's output appears here."))
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.install_button = self.buttons.addButton(tr("Install"), QDialogButtonBox.ButtonRole.ActionRole)
        self.install_button.clicked.connect(self.start)
        self.cancel_button = self.buttons.addButton(tr("Cancel installation"), QDialogButtonBox.ButtonRole.ActionRole)
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
        self.status.setText(tr("Running pip…"))
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
        self.status.setText(result.message if result is not None else
                            tr("Installation canceled; nothing was installed."))
        if not ok:
            for widget in (self.install_button, self.cpu, self.cuda):
                widget.setEnabled(True)
            return
        restart = tr("TreeSeg uses the new packages after QGIS restarts.")
        self.restart_prompt = QMessageBox(QMessageBox.Icon.Information, tr("Restart QGIS"),
                                          f"{result.message}\n\n{restart}", QMessageBox.StandardButton.Ok, self)
        self.restart_prompt.open()
