"""TreeSeg > Getting Started: the three things a run needs (Python packages, weights, device), each with its
state and the action that fixes it. Opens by itself on the plugin's first start; never modal.

The states come from :func:`..readiness.check`, run in a background task (it imports torch), so QGIS stays
responsive while they are gathered. The actions are the plugin's own: the installer, the weights manager
(Add file… there), the Diagnostics report; the links open the gated models' pages and Meta's form.
"""

from __future__ import annotations

import html
from typing import Callable, Dict, Optional

from qgis.core import QgsApplication, QgsTask
from qgis.PyQt.QtCore import QUrl, pyqtSignal
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...processing_provider.dependencies import problem_list
from .. import installer, readiness
from ..dinov3.variants import META_DOWNLOAD_FORM, VARIANTS
from ..i18n import tr

OK, MISSING, WARNING = "ready", "missing", "check"
COLOURS = {OK: "#2e7d32", MISSING: "#c62828", WARNING: "#ef6c00"}
TORCH = installer.REQUIREMENTS[0].specifier  # what "Install the CUDA build…" gives the installer
DEFAULT_MODEL = VARIANTS["vits16"]
AERIAL_MODEL = VARIANTS["vitl16-sat493m"]
LINKS = {
    "default_model": f"https://huggingface.co/{DEFAULT_MODEL.hf_repo_id}",
    "aerial_model": f"https://huggingface.co/{AERIAL_MODEL.hf_repo_id}",
    "meta_form": META_DOWNLOAD_FORM,
}


class CheckTask(QgsTask):
    """Runs the check off the GUI thread; ``done`` delivers the :class:`readiness.Readiness` (or the error's text)."""

    done = pyqtSignal(object)

    def __init__(self, check: Callable[[], readiness.Readiness]):
        super().__init__(tr("TreeSeg: checking what a run needs"))
        self.check = check
        self.outcome: object = None

    def run(self) -> bool:
        try:
            self.outcome = self.check()
        except Exception as error:  # shown in the dialog: the check must never take QGIS down
            self.outcome = f"{type(error).__name__}: {error}"
        return True

    def finished(self, result: bool) -> None:
        self.done.emit(self.outcome)


class GettingStartedDialog(QDialog):
    """Packages, weights and device with their states; Install…, the gated-access links, Add file…, Weights…,
    Install the CUDA build… (only where a CPU-only torch misses an NVIDIA GPU), Diagnostics…; *Check again*
    re-reads everything (so does a change in the weights manager). ``open_installer()`` installs what is
    missing, ``open_installer(packages)`` those packages."""

    def __init__(self, parent: Optional[QWidget], open_installer: Callable[..., None],
                 open_weights: Callable[[], QDialog], open_diagnostics: Callable[[], None],
                 check: Callable[[], readiness.Readiness] = readiness.check):
        super().__init__(parent)
        self.setWindowTitle(tr("TreeSeg – Getting started"))
        self.setObjectName("treeseg_getting_started_dialog")
        self.setModal(False)
        self.check = check
        self.open_weights = open_weights
        self.task: Optional[CheckTask] = None
        self.readiness: Optional[readiness.Readiness] = None
        self.states: Dict[str, str] = {}
        self.watched_weights: Optional[QDialog] = None

        intro = QLabel(tr(
            "Segment Trees needs three things. Each shows its state and what fixes it; QGIS stays usable "
            "meanwhile. This window opens again from <i>Raster &gt; Tree Segmentation &gt; Getting Started…</i>"))
        intro.setWordWrap(True)
        self.packages = self._state_label()
        self.weights = self._state_label()
        self.device = self._state_label()
        self.install_button = self._button(tr("Install…"), open_installer)
        steps = QLabel(tr(
            "DINOv3 weights are gated by Meta. Either <b>(a)</b> sign in to Hugging Face, open the model's page "
            "and accept the licence, create a read token and choose it in <i>Weights… &gt; Settings…</i>, tick "
            "<i>Allow downloading weights</i> and press <i>Download</i>; or <b>(b)</b> request the files through "
            "Meta's form (the links come by e-mail), then press <i>Add file…</i> to add the downloaded file."))
        steps.setWordWrap(True)
        self.link_buttons = {
            "default_model": self._button(tr("{model} on Hugging Face").format(model=DEFAULT_MODEL.display_name),
                                          lambda: self.open_link("default_model")),
            "aerial_model": self._button(tr("{model} on Hugging Face").format(model=AERIAL_MODEL.display_name),
                                         lambda: self.open_link("aerial_model")),
            "meta_form": self._button(tr("Meta's request form"), lambda: self.open_link("meta_form")),
        }
        self.add_file_button = self._button(tr("Add file…"), self.add_file)
        self.weights_button = self._button(tr("Weights…"), self.show_weights)
        self.cuda_button = self._button(tr("Install the CUDA build…"), lambda: open_installer((TORCH,)))
        self.cuda_button.setVisible(False)
        self.diagnostics_button = self._button(tr("Diagnostics…"), open_diagnostics)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self._group(tr("1. Python packages"), [self.packages], [self.install_button]))
        layout.addWidget(self._group(tr("2. DINOv3 weights"), [self.weights, steps],
                                     [*self.link_buttons.values(), self.add_file_button, self.weights_button]))
        layout.addWidget(self._group(tr("3. Device"), [self.device], [self.cuda_button, self.diagnostics_button]))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.check_button = buttons.addButton(tr("Check again"), QDialogButtonBox.ButtonRole.ActionRole)
        self.check_button.clicked.connect(self.refresh)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 560)
        self.refresh()

    # ---------------------------------------------------------------- layout

    @staticmethod
    def _state_label() -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        return label

    def _button(self, text: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(text, self)
        button.clicked.connect(lambda: slot())
        return button

    def _group(self, title: str, labels: list, buttons: list) -> QGroupBox:
        group = QGroupBox(title, self)
        column = QVBoxLayout(group)
        for label in labels:
            column.addWidget(label)
        row = QHBoxLayout()
        for button in buttons:
            row.addWidget(button)
        row.addStretch(1)
        column.addLayout(row)
        return group

    # ---------------------------------------------------------------- states

    def refresh(self) -> None:
        """Gather the states again in a background task (one at a time)."""
        if self.task is not None:
            return
        for label in (self.packages, self.weights, self.device):
            label.setText(tr("Checking…"))
        self.check_button.setEnabled(False)
        self.task = CheckTask(self.check)
        self.task.done.connect(self.show_states)
        QgsApplication.taskManager().addTask(self.task)

    def show_states(self, outcome: object) -> None:
        """Show each state (or, if the check itself failed, its error in all three)."""
        self.task = None
        self.check_button.setEnabled(True)
        if not isinstance(outcome, readiness.Readiness):
            for name, label in (("packages", self.packages), ("weights", self.weights), ("device", self.device)):
                self._set(name, label, WARNING, tr("The check failed: {error}").format(error=outcome))
            return
        self.readiness = outcome
        self._set("packages", self.packages, *self.packages_state(outcome))
        self._set("weights", self.weights, *self.weights_state(outcome))
        self._set("device", self.device, *self.device_state(outcome))
        self.install_button.setEnabled(bool(outcome.problems))
        self.cuda_button.setVisible(bool(outcome.gpus) and outcome.cpu_only_torch)

    def _set(self, name: str, label: QLabel, state: str, text: str) -> None:
        self.states[name] = state
        words = {OK: tr("Ready"), MISSING: tr("Missing"), WARNING: tr("Check")}
        shown = f"<b style=\"color:{COLOURS[state]}\">{words[state]}</b>"
        label.setText(tr("{state}: {text}").format(state=shown, text=text))

    def packages_state(self, ready: readiness.Readiness) -> tuple:
        if not ready.problems:
            return OK, tr("torch, safetensors and huggingface_hub are installed.")
        listed = html.escape(problem_list(list(ready.problems)))
        return MISSING, tr("{problems}. Press <i>Install…</i>: pip installs them into TreeSeg's own folder (QGIS's "
                           "numpy stays), then restart QGIS.").format(problems=listed)

    def weights_state(self, ready: readiness.Readiness) -> tuple:
        if ready.found:
            models = "; ".join(f"{html.escape(name)} ({html.escape(tr(location.where))}: "
                               f"<tt>{html.escape(str(location.path))}</tt>)" for name, location in ready.found)
            return OK, tr("Segment Trees finds {models}.").format(models=models)
        folder = html.escape(ready.weights_folder)
        return MISSING, tr("no DINOv3 weights in the weights folder (<tt>{folder}</tt>) or the Hugging Face and "
                           "torch hub caches.").format(folder=folder)

    def device_state(self, ready: readiness.Readiness) -> tuple:
        gpu = html.escape(ready.gpus[0]) if ready.gpus else ""
        found = (tr("An NVIDIA GPU was found ({gpu}).").format(gpu=gpu) if gpu else
                 tr("No NVIDIA GPU was found (nvidia-smi): runs use the CPU, more slowly."))
        if ready.torch_missing:
            build = tr("Install… selects PyTorch's CUDA build.") if gpu else tr(
                "Install… selects PyTorch's CPU build.")
            return MISSING, tr("PyTorch is not installed yet (step 1). {gpu} {build}").format(gpu=found, build=build)
        version = ready.torch.get("version")
        if version is None:
            return MISSING, tr("PyTorch does not import: {error}. Install it again (step 1).").format(
                error=html.escape(ready.torch.get("torch", "")))
        build = tr("CPU-only build") if ready.cpu_only_torch else tr("CUDA {cuda} build").format(
            cuda=ready.torch.get("CUDA build"))
        described = tr("PyTorch {version} ({build}).").format(version=html.escape(version), build=html.escape(build))
        if ready.cuda:
            device = html.escape(ready.torch.get("CUDA device 0", gpu))
            return OK, tr("{torch} Runs use the GPU: {device}.").format(torch=described, device=device)
        if ready.mps:
            return OK, tr("{torch} Runs use Apple's GPU (MPS).").format(torch=described)
        if gpu and ready.cpu_only_torch:
            return WARNING, tr("{torch} {gpu} This PyTorch cannot use it, so runs use the CPU: install PyTorch's "
                               "CUDA build into TreeSeg's folder with <i>Install the CUDA build…</i>."
                               ).format(torch=described, gpu=found)
        if gpu:
            return WARNING, tr("{torch} {gpu} This PyTorch cannot use it (NVIDIA driver missing or too old?), so runs "
                               "use the CPU: see <i>Diagnostics…</i>.").format(torch=described, gpu=found)
        return OK, f"{described} {found}"

    # ---------------------------------------------------------------- actions

    def open_link(self, name: str) -> None:
        QDesktopServices.openUrl(QUrl(LINKS[name]))

    def show_weights(self) -> QDialog:
        """Open the weights manager; whatever it changes is checked again here."""
        weights = self.open_weights()
        if weights is not self.watched_weights:
            weights.changed.connect(self.refresh)
            self.watched_weights = weights
        return weights

    def add_file(self) -> None:
        """The weights manager's *Add file…* (verified by the loader, then copied into the weights folder)."""
        self.show_weights().add_file()
