"""Background jobs of the weights manager: download from Hugging Face, verify with the loader, import.

Each job is a plain function (testable without a task manager) that :class:`WeightsTask` runs as a
cancellable QgsTask. Messages never contain the Hugging Face token.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from qgis.core import Qgis, QgsMessageLog, QgsTask

from ..i18n import tr

LOG_TAG = "TreeSeg"
COPY_CHUNK = 8 << 20
OFFLINE_VALUES = {"1", "ON", "YES", "TRUE"}

Report = Callable[[float], None]
IsCanceled = Callable[[], bool]


class JobCanceledError(Exception):
    """The user canceled the job."""


class DownloadError(Exception):
    """A download failed; the message says why and what to do, without the token."""


def log(message: str) -> None:
    QgsMessageLog.logMessage(message, LOG_TAG, Qgis.MessageLevel.Info)


def hub_offline() -> bool:
    """Whether huggingface_hub is in offline mode (HF_HUB_OFFLINE)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return os.environ.get("HF_HUB_OFFLINE", "").upper() in OFFLINE_VALUES
    return bool(constants.HF_HUB_OFFLINE)


def manual_route(repo_id: Optional[str], meta_filename: str) -> str:
    """How to get weights without TreeSeg downloading them (CHMv2's Meta file has a form of its own)."""
    from ..dinov3.chmv2.config import CHMV2_DOWNLOAD_FORM, HF_REPO_ID
    from ..dinov3.variants import META_DOWNLOAD_FORM

    form = CHMV2_DOWNLOAD_FORM if repo_id == HF_REPO_ID else META_DOWNLOAD_FORM
    hub = tr("on a machine with internet, accept the licence at https://huggingface.co/{repo} and run "
             "'huggingface-cli download {repo}', or ").format(repo=repo_id) if repo_id else ""
    return tr("To add the weights by hand: {hub}request {file} through Meta's form ({form}); then use Add file... "
              "here, or give the file as Weights file.").format(hub=hub, file=meta_filename, form=form)


def progress_bar_class(report: Report, is_canceled: IsCanceled) -> type:
    """A tqdm class for huggingface_hub that reports byte progress (0..1) and stops when canceled."""
    from tqdm import tqdm

    class ProgressBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a name; plain tqdm does not
            kwargs.update(file=io.StringIO(), disable=False)
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if is_canceled():
                raise JobCanceledError()
            shown = super().update(n)
            if self.unit == "B" and self.total:
                report(min(1.0, self.n / self.total))
            return shown

    return ProgressBar


def download_weights(repo_id: str, token: Optional[str], report: Report, is_canceled: IsCanceled) -> Path:
    """Download the weights of ``repo_id`` into the Hugging Face cache; the snapshot folder."""
    from ..dinov3.chmv2.config import DECODER_FILENAME, HF_REPO_ID
    from ..dinov3.variants import VARIANTS
    from ..dinov3.weights import download_failure, download_snapshot

    if hub_offline():
        files = {**{v.hf_repo_id: v.meta_filename for v in VARIANTS.values()}, HF_REPO_ID: DECODER_FILENAME}
        filename = files.get(repo_id, tr("the .pth file"))
        offline = tr("Offline: HF_HUB_OFFLINE is set, so {repo} cannot be downloaded.").format(repo=repo_id)
        raise DownloadError(f"{offline} {manual_route(repo_id, filename)}")
    try:
        folder = download_snapshot(repo_id, token, tqdm_class=progress_bar_class(report, is_canceled))
    except JobCanceledError:
        raise
    except Exception as error:  # hub and network errors: reduced to a token-free sentence
        reason = download_failure(error, repo_id, token)
    else:
        return folder
    raise DownloadError(tr("Downloading {repo} failed: {reason}.").format(repo=repo_id, reason=reason))


@dataclass
class Verified:
    """What the loader found in a weights file."""

    path: Path
    variant: str  # released variant name, or "custom"
    dataset: Optional[str]
    tensors_loaded: int
    tensors_total: int
    sha256: str


def verify_weights(source: str) -> Verified:
    """Check ``source`` as the loader that uses it does, without materialising the model: a backbone as the
    DINOv3 loader (every tensor's shape, dtype and values, streamed: no more memory than the largest tensor),
    a CHMv2 file as Canopy Height's (variant "chmv2"); raises DinoV3Error."""
    from ..dinov3 import verify_weights as verify
    from ..dinov3.chmv2.config import WEIGHTS_NAME
    from ..dinov3.chmv2.loading import is_chmv2_weights, verify_canopy_height_weights

    if is_chmv2_weights(Path(source)):
        head = verify_canopy_height_weights(source, log=log)
        return Verified(head.path, WEIGHTS_NAME, "sat493m", head.tensors_loaded, head.tensors_total, head.sha256)
    checked = verify(source, log=log)
    weights = checked.weights
    return Verified(Path(weights.path), checked.variant, weights.dataset, weights.tensors_loaded,
                    weights.tensors_total, weights.sha256())


def import_destination(verified: Verified, folder: Path) -> Path:
    """Where a verified file goes in the weights folder, named so that :func:`weights_in_folder` finds it.

    A Meta .pth whose SHA-256 matches the released file gets Meta's name (CHMv2's decoder too, and a CHMv2
    .safetensors goes into dinov3-vitl16-chmv2-dpt-head/); a .safetensors of a released
    architecture with its dataset goes into the model's Hugging Face folder; any other .safetensors goes, with
    its name, into a folder of its own named after the variant, the dataset and its SHA-256 (its config.json
    belongs to it, and the dataset stays in the path for the loader); any other .pth keeps its name.
    """
    from ..dinov3.chmv2 import config as chmv2
    from ..dinov3.variants import VARIANTS

    source = verified.path
    if verified.variant == chmv2.WEIGHTS_NAME:
        if source.suffix == ".safetensors":
            return folder / chmv2.HF_REPO_NAME / "model.safetensors"
        released = verified.sha256.startswith(chmv2.DECODER_SHA8)
        return folder / (chmv2.DECODER_FILENAME if released else source.name)
    variant = VARIANTS.get(verified.variant)
    if variant is not None and source.suffix == ".pth" and verified.sha256.startswith(variant.meta_sha8):
        return folder / variant.meta_filename
    if source.suffix != ".safetensors":
        return folder / source.name
    if variant is not None and verified.dataset == variant.dataset:
        return folder / variant.hf_repo_name / "model.safetensors"
    own = "-".join(["dinov3", verified.variant, *([verified.dataset] if verified.dataset else []),
                    verified.sha256[:8]])
    return folder / own / source.name


def copy_file(source: Path, destination: Path, report: Report, is_canceled: IsCanceled) -> None:
    """Copy in chunks (cancelable); the destination appears complete or not at all."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    total = max(source.stat().st_size, 1)
    try:
        with open(source, "rb") as reader, open(partial, "wb") as writer:
            copied = 0
            for chunk in iter(lambda: reader.read(COPY_CHUNK), b""):
                if is_canceled():
                    raise JobCanceledError()
                writer.write(chunk)
                copied += len(chunk)
                report(copied / total)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def import_weights(source: Path, folder: Path, report: Report, is_canceled: IsCanceled) -> Verified:
    """Verify ``source`` with the loader, then copy it (and its Hugging Face JSON files) into ``folder``."""
    if source.suffix not in (".pth", ".safetensors"):
        raise ValueError(tr("{file}: choose a .pth or .safetensors file.").format(file=source.name))
    verified = verify_weights(str(source))
    destination = import_destination(verified, Path(folder))
    if destination.resolve() != source.resolve():
        if destination.exists():
            raise FileExistsError(tr("{destination} already exists; remove it first to import {file}.").format(
                destination=destination, file=source.name))
        copy_file(source, destination, report, is_canceled)
        if destination.suffix == ".safetensors":
            for name in ("config.json", "preprocessor_config.json"):
                if (source.parent / name).is_file():
                    shutil.copy2(source.parent / name, destination.parent / name)
    return Verified(destination, verified.variant, verified.dataset, verified.tensors_loaded,
                    verified.tensors_total, verified.sha256)


class WeightsTask(QgsTask):
    """Runs one job in the background; ``on_done(task)`` is then called in the main thread.

    After the run, ``result`` holds the job's return value, or ``error`` a message (None when canceled).
    """

    def __init__(self, description: str, job: Callable[[WeightsTask], Any], on_done: Callable[[WeightsTask], None]):
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.job = job
        self.on_done = on_done
        self.result: Any = None
        self.error: Optional[str] = None

    def report(self, fraction: float) -> None:
        self.setProgress(100.0 * fraction)

    def run(self) -> bool:
        try:
            self.result = self.job(self)
        except JobCanceledError:
            return False
        except Exception as error:  # shown to the user; loader and download messages say what to do
            self.error = str(error) or type(error).__name__
            return False
        return not self.isCanceled()

    def finished(self, result: bool) -> None:
        self.on_done(self)
