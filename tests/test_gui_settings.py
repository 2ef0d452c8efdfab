"""TreeSeg > Settings: open, change, persist, cancel; the token lives only in QGIS's authentication database."""

from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsProcessingContext, QgsProcessingFeedback, QgsSettings
from treeseg.treeseg_plugin import settings as treeseg_settings
from treeseg.treeseg_plugin.gui.settings_dialog import SettingsDialog

TOKEN = "hf_TreeSegTestToken0123456789abcdef"  # noqa: S105 (a fake token for the tests)
MASTER_PASSWORD = "treeseg-tests-master"  # noqa: S105 (the throw-away test profile)


def segment_trees():
    """A fresh Segment Trees instance, outside the Processing registry (test_plugin.py expects it empty)."""
    from treeseg.processing_provider.segment_trees import SegmentTreesAlgorithm

    return SegmentTreesAlgorithm().create()


@pytest.fixture()
def clean_settings(qgis_app):
    QgsSettings().remove(treeseg_settings.GROUP)
    yield
    QgsSettings().remove(treeseg_settings.GROUP)


def store_auth_config(method: str, password: str, name: str = "Hugging Face") -> str:
    manager = QgsApplication.authManager()
    assert manager.setMasterPassword(MASTER_PASSWORD, True)
    config = QgsAuthMethodConfig(method)
    config.setName(name)
    config.setConfig("username", "treeseg")
    config.setConfig("password", password)
    ok, config = manager.storeAuthenticationConfig(config)
    assert ok
    return config.id()


@pytest.fixture()
def token_config(clean_settings) -> str:
    config_id = store_auth_config("Basic", TOKEN)
    yield config_id
    QgsApplication.authManager().removeAuthenticationConfig(config_id)


def all_settings_text() -> str:
    store = QgsSettings()
    return "\n".join(f"{key}={store.value(key)}" for key in store.allKeys())


def test_dialog_shows_the_defaults(clean_settings):
    dialog = SettingsDialog()
    chosen = dialog.chosen()
    assert Path(chosen.weights_folder) == Path(QgsApplication.qgisSettingsDirPath()) / "treeseg" / "weights"
    assert (chosen.auth_config_id, chosen.allow_download, chosen.device, chosen.precision) == ("", False, "auto",
                                                                                             "auto")
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == ["auto", "cuda", "mps", "cpu"]


def test_changes_persist_after_ok(clean_settings, tmp_path):
    dialog = SettingsDialog()
    dialog.weights_folder.setFilePath(str(tmp_path / "weights"))
    dialog.allow_download.setChecked(True)
    dialog.device.setCurrentText("cpu")
    dialog.precision.setCurrentText("bf16")
    dialog.accept()

    stored = treeseg_settings.load_settings()
    assert stored == treeseg_settings.TreeSegSettings(str(tmp_path / "weights"), "", True, "cpu", "bf16")
    reopened = SettingsDialog()
    assert reopened.chosen() == stored
    reopened.restore_defaults()
    assert reopened.chosen().device == "auto" and not reopened.chosen().allow_download
    reopened.reject()
    assert treeseg_settings.load_settings() == stored


def test_cancel_changes_nothing(clean_settings, tmp_path):
    before = treeseg_settings.load_settings()
    dialog = SettingsDialog()
    dialog.weights_folder.setFilePath(str(tmp_path))
    dialog.device.setCurrentText("cuda")
    dialog.reject()
    assert treeseg_settings.load_settings() == before
    assert treeseg_settings.GROUP + "/device" not in QgsSettings().allKeys()


def test_token_is_read_from_the_auth_database_and_never_stored_in_settings(token_config):
    dialog = SettingsDialog()
    dialog.auth_config.setConfigId(token_config)
    dialog.allow_download.setChecked(True)
    dialog.accept()

    assert treeseg_settings.load_settings().auth_config_id == token_config
    assert treeseg_settings.hf_token() == TOKEN
    QgsSettings().sync()
    assert TOKEN not in all_settings_text()
    assert TOKEN not in Path(QgsSettings().fileName()).read_text(encoding="utf-8", errors="replace")
    assert token_config in all_settings_text()  # only the ID is stored


def test_headless_token_lookup_never_prompts_for_the_master_password(token_config, monkeypatch):
    settings = treeseg_settings.TreeSegSettings("", auth_config_id=token_config)
    manager = QgsApplication.authManager()
    manager.clearMasterPassword()
    try:
        assert treeseg_settings.hf_token(settings, interactive=False) is None
        monkeypatch.setenv("HF_TOKEN", "hf_fromEnvironment")
        assert treeseg_settings.hf_token(settings, interactive=False) == "hf_fromEnvironment"
    finally:
        assert manager.setMasterPassword(MASTER_PASSWORD, True)
    assert treeseg_settings.hf_token(settings, interactive=False) == TOKEN


@pytest.mark.parametrize(("method", "password", "expected"), [
    ("EsriToken", TOKEN, "of type EsriToken"),
    ("Basic", "", "empty password"),
])
def test_unusable_auth_configs_give_token_free_errors(clean_settings, method, password, expected):
    config_id = store_auth_config(method, password, name="not a token")
    try:
        with pytest.raises(treeseg_settings.TokenError, match=expected) as error:
            treeseg_settings.hf_token(treeseg_settings.TreeSegSettings("", auth_config_id=config_id))
        assert TOKEN not in str(error.value)
    finally:
        QgsApplication.authManager().removeAuthenticationConfig(config_id)
    with pytest.raises(treeseg_settings.TokenError, match="could not be read"):
        treeseg_settings.hf_token(treeseg_settings.TreeSegSettings("", auth_config_id="nosuchid"))


def test_algorithm_defaults_follow_the_settings(clean_settings, qgis_processing, monkeypatch):
    treeseg_settings.save_settings(treeseg_settings.TreeSegSettings("", "", True, "cpu", "fp32"))

    algorithm = segment_trees()
    assert algorithm.parameterDefinition("DEVICE").defaultValue() == 3
    assert algorithm.parameterDefinition("PRECISION").defaultValue() == 1
    assert algorithm.parameterDefinition("ALLOW_DOWNLOAD").defaultValue() is False  # not QGIS desktop

    monkeypatch.setattr(treeseg_settings, "is_desktop", lambda: True)
    algorithm = segment_trees()
    assert algorithm.parameterDefinition("ALLOW_DOWNLOAD").defaultValue() is True


def test_algorithm_reads_the_token_only_when_downloads_are_allowed(token_config, qgis_processing):
    treeseg_settings.save_settings(treeseg_settings.TreeSegSettings("", token_config))
    algorithm = segment_trees()
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    assert algorithm.prepareAlgorithm({"ALLOW_DOWNLOAD": False}, context, feedback)
    assert algorithm._token is None
    assert algorithm.prepareAlgorithm({"ALLOW_DOWNLOAD": True}, context, feedback)
    assert algorithm._token == TOKEN


def test_token_stays_out_of_the_log_and_errors_of_a_failed_download(token_config, qgis_processing, tmp_path):
    import processing
    from data_factory import make_raster
    from qgis.core import QgsProcessingException

    treeseg_settings.save_settings(treeseg_settings.TreeSegSettings(str(tmp_path / "weights"), token_config))
    raster = make_raster(tmp_path / "in.tif", 64, 64)
    feedback = QgsProcessingFeedback()
    with pytest.raises(QgsProcessingException) as error:
        processing.run(segment_trees(), {"INPUT": str(raster), "MODEL": 2, "ALLOW_DOWNLOAD": True,
                                                "OUTPUT": str(tmp_path / "out.tif")}, feedback=feedback)
    assert "offline" in str(error.value).lower()
    assert TOKEN not in str(error.value) and TOKEN not in feedback.textLog()
