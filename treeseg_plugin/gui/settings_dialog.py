"""TreeSeg > Settings: weights folder, Hugging Face token (an auth config), downloads, device, precision."""

from __future__ import annotations

from typing import Optional

from qgis.gui import QgsAuthConfigSelect, QgsFileWidget
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from .. import settings as treeseg_settings
from ..i18n import tr, translatable

AUTH_CONFIG_HELP = translatable(
    "The Hugging Face access token is kept in QGIS's authentication database, never in the settings: "
    "add a <b>Basic authentication</b> configuration (any user name, the token as <b>password</b>) with the "
    "green + button and choose it here. Without one, the HF_TOKEN environment variable is used."
)


class SettingsDialog(QDialog):
    """Edits :class:`TreeSegSettings`; OK stores them, Cancel changes nothing."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setWindowTitle(tr("TreeSeg – Settings"))
        self.setObjectName("treeseg_settings_dialog")
        current = treeseg_settings.load_settings()

        self.weights_folder = QgsFileWidget()
        self.weights_folder.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.weights_folder.setFilePath(current.weights_folder)
        self.weights_folder.setToolTip(tr("Where Weights > Add file… copies verified weights; Segment Trees looks "
                                          "here first for the chosen model."))
        self.auth_config = QgsAuthConfigSelect(self)
        self.auth_config.setConfigId(current.auth_config_id)
        token_help = QLabel(tr(AUTH_CONFIG_HELP))
        token_help.setWordWrap(True)
        self.allow_download = QCheckBox(tr("Allow downloading weights from Hugging Face"))
        self.allow_download.setChecked(current.allow_download)
        self.allow_download.setToolTip(tr("The default of 'Allow downloading weights' in Segment Trees, in QGIS "
                                          "desktop. Headless runs (qgis_process) download only when asked to."))
        self.device = QComboBox()
        self.device.addItems(list(treeseg_settings.DEVICES))
        self.device.setCurrentText(current.device)
        self.precision = QComboBox()
        self.precision.addItems(list(treeseg_settings.PRECISIONS))
        self.precision.setCurrentText(current.precision)

        standard = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(standard.Ok | standard.Cancel | standard.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_defaults)

        form = QFormLayout(self)
        form.addRow(tr("Weights folder"), self.weights_folder)
        form.addRow(tr("Hugging Face token"), self.auth_config)
        form.addRow("", token_help)
        form.addRow("", self.allow_download)
        form.addRow(tr("Default device"), self.device)
        form.addRow(tr("Default precision"), self.precision)
        form.addRow(buttons)
        self.resize(640, self.sizeHint().height())

    def chosen(self) -> treeseg_settings.TreeSegSettings:
        """The settings as shown in the dialog."""
        return treeseg_settings.TreeSegSettings(
            weights_folder=self.weights_folder.filePath().strip() or str(treeseg_settings.default_weights_folder()),
            auth_config_id=self.auth_config.configId(),
            allow_download=self.allow_download.isChecked(),
            device=self.device.currentText(),
            precision=self.precision.currentText(),
        )

    def restore_defaults(self) -> None:
        """Show the defaults (stored only with OK); the chosen token configuration is kept."""
        self.weights_folder.setFilePath(str(treeseg_settings.default_weights_folder()))
        self.allow_download.setChecked(False)
        self.device.setCurrentText("auto")
        self.precision.setCurrentText("auto")

    def accept(self) -> None:
        treeseg_settings.save_settings(self.chosen())
        super().accept()
