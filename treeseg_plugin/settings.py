"""TreeSeg's settings, the Hugging Face token and the weights folder.

Settings live in QgsSettings under ``treeseg/``: the weights folder, the ID of an authentication
configuration, "allow downloads", the default device and precision. The Segment Trees dialog takes its
defaults from them. ``keep_worker`` and ``worker_idle_minutes`` (QGIS's Advanced settings) say whether
and how long the worker stays up between runs (:func:`kept_worker_seconds`).

The Hugging Face token itself lives only in QGIS's authentication database: an authentication
configuration of type **Basic** whose *password* is the token (the user name is not used). QgsSettings
holds nothing but its ID; without one, ``HF_TOKEN`` from the environment is used. The token is never
logged, stored elsewhere nor put into messages.

The weights folder holds the files that the weights manager imported, under names that
:func:`weights_in_folder` finds again: Meta's file name (``dinov3_vits16_pretrain_lvd1689m-08c60483.pth``)
or a Hugging Face model folder named after the repository (``dinov3-vits16-pretrain-lvd1689m/``); for CHMv2
(entry ``chmv2``) Meta's decoder ``dinov3_vitl16_chmv2_dpt_head-3703d643.pth`` or ``dinov3-vitl16-chmv2-dpt-head/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsSettings

from .dinov3.chmv2 import config as chmv2
from .dinov3.variants import VARIANTS
from .engine.jobs.segmentation import DEVICES, PRECISIONS
from .i18n import tr

GROUP = "treeseg"
AUTH_METHOD = "Basic"
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
DEFAULT_IDLE_MINUTES = 10.0  # a kept worker is released after this long without a run


class TokenError(Exception):
    """The chosen authentication configuration cannot give a token (the message never holds one)."""


@dataclass
class TreeSegSettings:
    """What the Settings dialog edits."""

    weights_folder: str
    auth_config_id: str = ""
    allow_download: bool = False
    device: str = "auto"
    precision: str = "auto"


def profile_folder() -> Path:
    """The active QGIS profile folder (e.g. ``~/.local/share/QGIS/QGIS3/profiles/default``)."""
    return Path(QgsApplication.qgisSettingsDirPath())


def default_weights_folder() -> Path:
    return profile_folder() / "treeseg" / "weights"


def dependencies_base() -> Path:
    """Where the dependency installer keeps its private folders (``<profile>/python``)."""
    return profile_folder() / "python"


def _key(name: str) -> str:
    return f"{GROUP}/{name}"


def load_settings() -> TreeSegSettings:
    """The stored settings, with defaults for anything unset or invalid."""
    store = QgsSettings()
    device = store.value(_key("device"), "auto", type=str)
    precision = store.value(_key("precision"), "auto", type=str)
    return TreeSegSettings(
        weights_folder=store.value(_key("weights_folder"), "", type=str) or str(default_weights_folder()),
        auth_config_id=store.value(_key("auth_config_id"), "", type=str),
        allow_download=store.value(_key("allow_download"), False, type=bool),
        device=device if device in DEVICES else "auto",
        precision=precision if precision in PRECISIONS else "auto",
    )


def save_settings(settings: TreeSegSettings) -> None:
    store = QgsSettings()
    store.setValue(_key("weights_folder"), settings.weights_folder)
    store.setValue(_key("auth_config_id"), settings.auth_config_id)
    store.setValue(_key("allow_download"), bool(settings.allow_download))
    store.setValue(_key("device"), settings.device)
    store.setValue(_key("precision"), settings.precision)


def is_desktop() -> bool:
    """True inside the QGIS desktop application (not qgis_process, not a script)."""
    return QgsApplication.platform() == "desktop"


def kept_worker_seconds() -> Optional[float]:
    """How long the worker stays up after a run, with its model loaded, for the next one: the idle time
    ``treeseg/worker_idle_minutes`` (default 10) in seconds; None (a fresh worker per run) when
    ``treeseg/keep_worker`` is off or in qgis_process, which runs one algorithm per process."""
    store = QgsSettings()
    for name, default in (("keep_worker", True), ("worker_idle_minutes", DEFAULT_IDLE_MINUTES)):
        if not store.contains(_key(name)):  # stored, so that QGIS's Advanced settings editor lists it
            store.setValue(_key(name), default)
    if QgsApplication.platform() == "qgis_process" or not store.value(_key("keep_worker"), True, type=bool):
        return None
    minutes = store.value(_key("worker_idle_minutes"), DEFAULT_IDLE_MINUTES, type=float)
    return 60.0 * (minutes if minutes > 0 else DEFAULT_IDLE_MINUTES)


def first_start() -> bool:
    """True only the first time it is asked in this QGIS profile: the plugin's first start, when the Getting
    started dialog opens by itself (``treeseg/getting_started_shown`` remembers it)."""
    store = QgsSettings()
    if store.value(_key("getting_started_shown"), False, type=bool):
        return False
    store.setValue(_key("getting_started_shown"), True)
    return True


def allow_download_default() -> bool:
    """The "allow downloads" setting in QGIS desktop; always False elsewhere (no silent headless downloads)."""
    return is_desktop() and load_settings().allow_download


# ---------------------------------------------------------------- the Hugging Face token


def token_from_auth_config(config_id: str, interactive: bool = True) -> Optional[str]:
    """The token in authentication config ``config_id``.

    With ``interactive=False`` the database is read only when its master password is already set, so a
    headless run never waits for a password prompt; None then.
    """
    manager = QgsApplication.authManager()
    if manager.isDisabled():
        raise TokenError(tr("QGIS's authentication system is disabled (no Qt crypto support), so TreeSeg cannot "
                            "read the Hugging Face token; set HF_TOKEN instead."))
    if not interactive and not manager.masterPasswordIsSet():
        return None
    ok, config = manager.loadAuthenticationConfig(config_id, QgsAuthMethodConfig(), True)
    if not ok or not config.isValid():
        raise TokenError(tr("Authentication configuration '{config}' could not be read (removed, or the master "
                            "password was not given). Choose another one in TreeSeg > Settings.").format(
                                config=config_id))
    if config.method() != AUTH_METHOD:
        raise TokenError(tr("Authentication configuration '{config}' is of type {method}; TreeSeg reads the token "
                            "from the password of a {expected} configuration.").format(
                                config=config.name(), method=config.method(), expected=AUTH_METHOD))
    token = config.config("password").strip()
    if not token:
        raise TokenError(tr("Authentication configuration '{config}' has an empty password; put the Hugging Face "
                            "access token there.").format(config=config.name()))
    return token


def hf_token(settings: Optional[TreeSegSettings] = None, interactive: bool = True) -> Optional[str]:
    """The token from the configured authentication config, else ``HF_TOKEN``; None when there is none."""
    settings = settings or load_settings()
    if settings.auth_config_id:
        token = token_from_auth_config(settings.auth_config_id, interactive)
        if token:
            return token
    return os.environ.get("HF_TOKEN") or None


def has_token_source(settings: Optional[TreeSegSettings] = None) -> bool:
    """Whether a token is configured (an auth config or HF_TOKEN), without reading the database."""
    settings = settings or load_settings()
    return bool(settings.auth_config_id or os.environ.get("HF_TOKEN"))


# ---------------------------------------------------------------- the weights folder


def _folder_names(name: str) -> Optional[Tuple[str, str]]:
    """(Meta file name, Hugging Face folder name) of a weights entry: a variant or CHMv2."""
    if name == chmv2.WEIGHTS_NAME:
        return chmv2.DECODER_FILENAME, chmv2.HF_REPO_NAME
    variant = VARIANTS.get(name)
    return None if variant is None else (variant.meta_filename, variant.hf_repo_name)


def weights_in_folder(name: str, folder: Optional[str] = None) -> Optional[Path]:
    """The weights of variant ``name`` (or of CHMv2, ``chmv2``) in the weights folder (Meta file first), or None."""
    names = _folder_names(name)
    if names is None:
        return None
    root = Path(folder or load_settings().weights_folder).expanduser()
    meta_file = root / names[0]
    if meta_file.is_file():
        return meta_file
    hf_folder = root / names[1]
    if any((hf_folder / file_name).is_file() for file_name in HF_WEIGHT_FILES):
        return hf_folder
    return None


def _fingerprint(path: Path) -> Dict[str, float]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime": stat.st_mtime}


def _verifications() -> Dict[str, Dict[str, Any]]:
    try:
        stored = json.loads(QgsSettings().value(_key("verified"), "{}", type=str))
    except ValueError:
        return {}
    return stored if isinstance(stored, dict) else {}


def remember_verification(path: Path, sha256: str, tensors_loaded: int, tensors_total: int) -> None:
    """Record that the loader verified ``path`` (kept while its size and time stamp stay the same)."""
    records = _verifications()
    records[str(path)] = {**_fingerprint(Path(path)), "sha256": sha256, "tensors_loaded": tensors_loaded,
                          "tensors_total": tensors_total}
    QgsSettings().setValue(_key("verified"), json.dumps(records))


def verification_of(path: Path) -> Optional[Dict[str, Any]]:
    """The recorded verification of ``path`` if the file is unchanged since, else None."""
    record = _verifications().get(str(path))
    if record is None or not Path(path).is_file():
        return None
    fingerprint = _fingerprint(Path(path))
    if record.get("size") != fingerprint["size"] or record.get("mtime") != fingerprint["mtime"]:
        return None
    return record


@dataclass
class Location:
    """Where a variant's weights were found."""

    path: Path
    where: str  # "weights folder", "Hugging Face cache", "torch hub cache"


def locate(variant_name: str, weights_folder: str) -> Optional[Location]:
    """The weights of ``variant_name``: the weights folder, then the caches the algorithm searches."""
    in_folder = weights_in_folder(variant_name, weights_folder)
    if in_folder is not None:
        return Location(in_folder, "weights folder")
    try:
        from .dinov3 import DinoV3Error
        from .dinov3.weights import resolve_weights
    except ImportError:  # torch or huggingface_hub missing: only the weights folder can be searched
        return None
    try:
        resolved = resolve_weights(chmv2.HF_REPO_ID if variant_name == chmv2.WEIGHTS_NAME else variant_name)
    except (DinoV3Error, ImportError):
        return None
    return Location(resolved.path, resolved.origin)


def canopy_height_sources(weights: str, backbone: Optional[str], folder: Optional[str] = None) \
        -> Tuple[str, Optional[str]]:
    """The (model, backbone) Canopy Height loads: ``weights`` if given, else CHMv2 from the weights folder
    (Meta's decoder first), else the Hugging Face model (cache, or a download when allowed). Meta's decoder
    gets ``backbone``, else the SAT-493M ViT-L/16 as Segment Trees finds it; the Weights manager shows the
    same files (:func:`locate`)."""
    model = weights or str(weights_in_folder(chmv2.WEIGHTS_NAME, folder) or chmv2.HF_REPO_ID)
    if model.lower().endswith(".pth") and not backbone:
        backbone = str(weights_in_folder(chmv2.BACKBONE_VARIANT, folder) or chmv2.BACKBONE_VARIANT)
    return model, backbone or None
