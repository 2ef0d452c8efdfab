"""The weights manager: every released DINOv3 ViT and CHMv2, where their weights are, download, verify, add a
file. Files are found as the algorithms find them (settings.locate)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .. import settings as treeseg_settings
from ..dinov3.chmv2 import config as chmv2
from ..dinov3.variants import VARIANTS
from ..i18n import tr, translatable
from .weights_tasks import WeightsTask, download_weights, hub_offline, import_weights, verify_weights

COLUMNS = (translatable("Model"), translatable("Parameters"), translatable("Licence"), translatable("Status"))
STATUS_COLUMN = 3
PLACES = (translatable("weights folder"), translatable("Hugging Face cache"), translatable("torch hub cache"),
          translatable("Hugging Face model folder"), translatable("downloaded from Hugging Face"),
          translatable("local file"))
"""Where settings.locate finds weights (Location.where), named in the status column in the user's language."""


@dataclass(frozen=True)
class CanopyHeightEntry:
    """CHMv2's row, with the attributes the table reads from a backbone variant."""

    name: str = chmv2.WEIGHTS_NAME
    display_name: str = chmv2.DISPLAY_NAME
    params_millions: float = VARIANTS[chmv2.BACKBONE_VARIANT].params_millions + chmv2.HEAD_PARAMS_MILLIONS
    hf_repo_id: str = chmv2.HF_REPO_ID
    meta_filename: str = chmv2.DECODER_FILENAME


def licence_note(variant) -> str:
    """Short text for the table; :func:`licence_detail` is its tooltip."""
    return tr("Gated: Hugging Face or Meta's form") if variant.hf_repo_id else tr("Gated: Meta's form only")


def licence_detail(variant) -> str:
    from ..dinov3.variants import META_DOWNLOAD_FORM

    if variant.name == chmv2.WEIGHTS_NAME:
        return tr("Accept the licence at https://huggingface.co/{repo} (the model with its backbone), or request "
                  "{file} through Meta's form ({form}): Meta's decoder holds only the head and runs with the ViT-L/16 "
                  "(SAT-493M) weights listed above.").format(
                      repo=variant.hf_repo_id, file=variant.meta_filename, form=chmv2.CHMV2_DOWNLOAD_FORM)
    meta = tr("request {file} through Meta's form ({form})").format(file=variant.meta_filename,
                                                                    form=META_DOWNLOAD_FORM)
    if variant.hf_repo_id:
        return tr("Accept the DINOv3 licence at https://huggingface.co/{repo} before downloading, or {meta}.").format(
            repo=variant.hf_repo_id, meta=meta)
    return tr("Not on Hugging Face: {meta}.").format(meta=meta)


def status_text(location: Optional[treeseg_settings.Location]) -> str:
    """"Missing", or where the weights are and what the loader verified."""
    if location is None:
        return tr("Missing")
    file = location.path
    if file.is_dir():
        file = next((file / name for name in treeseg_settings.HF_WEIGHT_FILES if (file / name).is_file()), file)
    text = tr("Found in the {where}: {file}").format(where=tr(location.where), file=file)
    record = treeseg_settings.verification_of(file)
    if record is None:
        return text + tr(" (not verified yet: select it and press Verify)")
    return text + tr("; verified: {loaded}/{total} tensors, SHA-256 {sha256}").format(
        loaded=record["tensors_loaded"], total=record["tensors_total"], sha256=record["sha256"])


class WeightsDialog(QDialog):
    """Lists the released DINOv3 ViTs and CHMv2 with their status; downloads, verifies and imports weights.

    ``changed`` is emitted after each download, verification or import (whatever its outcome)."""

    changed = pyqtSignal()

    def __init__(self, parent: Optional[QWidget] = None, open_settings: Optional[Callable[[], None]] = None):
        super().__init__(parent)
        self.setWindowTitle(tr("TreeSeg – DINOv3 weights"))
        self.setObjectName("treeseg_weights_dialog")
        self.variants = [*VARIANTS.values(), CanopyHeightEntry()]
        self.locations: Dict[str, Optional[treeseg_settings.Location]] = {}
        self.task: Optional[WeightsTask] = None
        self.open_settings = open_settings

        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.notice.setOpenExternalLinks(True)

        self.table = self._variant_table()

        self.download_button = QPushButton(tr("Download"))
        self.download_button.clicked.connect(self.download_selected)
        self.verify_button = QPushButton(tr("Verify"))
        self.verify_button.clicked.connect(self.verify_selected)
        self.add_button = QPushButton(tr("Add file…"))
        self.add_button.clicked.connect(self.add_file)
        self.settings_button = QPushButton(tr("Settings…"))
        self.settings_button.clicked.connect(self.show_settings)
        self.settings_button.setVisible(open_settings is not None)
        self.cancel_button = QPushButton(tr("Cancel"))
        self.cancel_button.clicked.connect(self.cancel_task)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        actions = QHBoxLayout()
        for button in (self.download_button, self.verify_button, self.add_button, self.settings_button):
            actions.addWidget(button)
        actions.addStretch(1)
        running = QHBoxLayout()
        running.addWidget(self.progress, 1)
        running.addWidget(self.cancel_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.notice)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addLayout(running)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(1000, 460)
        self.refresh()
        self.show_running(False)

    def _variant_table(self) -> QTableWidget:
        """One read-only row per released variant, one selectable at a time; the status column stretches."""
        table = QTableWidget(len(self.variants), len(COLUMNS))
        table.setHorizontalHeaderLabels([tr(column) for column in COLUMNS])
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        header = table.horizontalHeader()
        for column in range(STATUS_COLUMN):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(STATUS_COLUMN, QHeaderView.ResizeMode.Stretch)
        table.itemSelectionChanged.connect(self.update_buttons)
        return table

    # ---------------------------------------------------------------- state

    def refresh(self) -> None:
        """Re-read the settings, search every variant's weights and redraw the table."""
        self.settings = treeseg_settings.load_settings()
        self.notice.setText(self.download_notice())
        for row, variant in enumerate(self.variants):
            location = treeseg_settings.locate(variant.name, self.settings.weights_folder)
            self.locations[variant.name] = location
            status = status_text(location)
            cells = (variant.display_name, f"{variant.params_millions:,.0f} M", licence_note(variant), status)
            tips = (variant.hf_repo_id or variant.meta_filename, cells[1], licence_detail(variant), status)
            for column, (text, tip) in enumerate(zip(cells, tips)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                self.table.setItem(row, column, item)
        self.update_buttons()

    def download_notice(self) -> str:
        """Whether "Download" can work here, and the manual route when it cannot."""
        folder = tr("Weights folder: {folder}.").format(folder=self.settings.weights_folder)
        if hub_offline():
            return folder + " " + tr("Offline (HF_HUB_OFFLINE is set): nothing can be downloaded. Get the weights on "
                                     "another machine (Hugging Face or Meta's form) and import them here with Add "
                                     "file…")
        if not self.settings.allow_download:
            return folder + " " + tr("Downloads are off: allow them in Settings, or get the weights by hand and "
                                     "import them with Add file…")
        if not treeseg_settings.has_token_source(self.settings):
            return folder + " " + tr("No Hugging Face token: choose an authentication configuration in Settings (or "
                                     "set HF_TOKEN) to download.")
        return folder + " " + tr("Downloads go to the Hugging Face cache, where Segment Trees finds them.")

    def selected_variant(self):
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return self.variants[rows.pop()] if len(rows) == 1 else None

    def can_download(self, variant) -> bool:
        allowed = self.settings.allow_download and treeseg_settings.has_token_source(self.settings)
        return bool(variant is not None and variant.hf_repo_id and allowed and not hub_offline())

    def update_buttons(self) -> None:
        variant = self.selected_variant()
        idle = self.task is None
        self.download_button.setEnabled(idle and self.can_download(variant))
        self.verify_button.setEnabled(idle and variant is not None and self.locations.get(variant.name) is not None)
        self.add_button.setEnabled(idle)

    def show_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.progress.setValue(0)
        self.update_buttons()

    # ---------------------------------------------------------------- actions

    def start(self, description: str, job: Callable[[WeightsTask], object],
              on_success: Callable[[WeightsTask], str]) -> None:
        """Run ``job`` as a task; ``on_success`` returns the message to show when it worked."""

        def done(task: WeightsTask) -> None:
            self.task = None
            if task.error is not None:
                self.message.setText(task.error)
            elif task.result is None:
                self.message.setText(tr("{task}: canceled.").format(task=description))
            else:
                self.message.setText(on_success(task))
            self.show_running(False)
            self.refresh()
            self.changed.emit()

        self.task = WeightsTask(description, job, done)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.message.setText(f"{description}…")
        self.show_running(True)
        QgsApplication.taskManager().addTask(self.task)

    def download_selected(self) -> None:
        variant = self.selected_variant()
        if not self.can_download(variant):
            return
        try:
            token = treeseg_settings.hf_token(self.settings)
        except treeseg_settings.TokenError as error:
            self.message.setText(str(error))
            return

        def job(task: WeightsTask) -> Path:
            return download_weights(variant.hf_repo_id, token, task.report, task.isCanceled)

        self.start(tr("Downloading {model}").format(model=variant.display_name), job,
                   lambda task: tr("Downloaded {model} to {path}. Press Verify to check it.").format(
                       model=variant.display_name, path=task.result))

    def verify_selected(self) -> None:
        variant = self.selected_variant()
        location = self.locations.get(variant.name) if variant is not None else None
        if location is None:
            return
        self.start(tr("Verifying {model}").format(model=variant.display_name),
                   lambda task: verify_weights(str(location.path)), self.remember)

    def add_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("Add DINOv3 or CHMv2 weights"), "",
                                              tr("DINOv3 / CHMv2 weights (*.pth *.safetensors)"))
        if not path:
            return
        folder = Path(self.settings.weights_folder).expanduser()

        def job(task: WeightsTask):
            return import_weights(Path(path), folder, task.report, task.isCanceled)

        self.start(tr("Importing {file}").format(file=Path(path).name), job, self.imported)

    def remember(self, task: WeightsTask) -> str:
        """Record a verification and say what was verified."""
        verified = task.result
        treeseg_settings.remember_verification(verified.path, verified.sha256, verified.tensors_loaded,
                                               verified.tensors_total)
        names = {variant.name: variant.display_name for variant in self.variants}
        what = names.get(verified.variant, tr("a custom ViT (not a released DINOv3 model)"))
        return tr("Verified {path}: {what}, {loaded}/{total} tensors, SHA-256 {sha256}.").format(
            path=verified.path, what=what, loaded=verified.tensors_loaded, total=verified.tensors_total,
            sha256=verified.sha256)

    def imported(self, task: WeightsTask) -> str:
        """Like :meth:`remember`, and says when the file is not found by its model name."""
        text = self.remember(task)
        path = task.result.path
        found = treeseg_settings.weights_in_folder(task.result.variant, self.settings.weights_folder)
        if found not in (path, path.parent):
            text += " " + tr("Not recognisable as a released file (name, hash or dataset), so no model name finds it: "
                             "choose it as Weights file in Segment Trees or Canopy Height.")
        return text

    def cancel_task(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def show_settings(self) -> None:
        if self.open_settings is not None:
            self.open_settings()
            self.refresh()
