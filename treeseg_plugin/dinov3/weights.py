"""Finding DINOv3 weights and checking their integrity.

What `source` means:
1. a variant name from VARIANTS ("vits16", "vitl16-sat493m", ...) always means that released model (its
   Hugging Face repo id), even when a file or folder of that name exists: write "./vits16" for that;
2. a string of the form owner/name without a weights suffix is a repo id (a local folder of that name is
   "./owner/name");
3. anything else (a path object, an absolute or ./ path, a name with a .pth / .pt / .safetensors / .json
   suffix, a bare name that is not a variant) is a path: a weights file (.pth / .safetensors /
   model.safetensors.index.json) or a Hugging Face model folder (model.safetensors or its shard index,
   optional config.json).
For a repo id ("facebook/dinov3-vits16-pretrain-lvd1689m"): the local Hugging Face cache (HF_HOME /
   HF_HUB_CACHE, works offline), then, for a variant, Meta's file in the torch hub cache
   (<torch hub dir>/checkpoints/<Meta filename>), then a download if allow_download=True and not
   HF_HUB_OFFLINE (token: the `token` argument, else huggingface_hub's own HF_TOKEN / login).

Meta filenames end in "-<first 8 hex digits of the file's SHA-256>.pth"; that hash is checked.
The token is never logged nor put into messages: hub errors are reduced to their type and a scrubbed line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import torch

from .errors import CheckpointError, WeightsNotFoundError, format_keys, scrub_token
from .variants import DATASET_NAMES, META_DOWNLOAD_FORM, NORMALISATION, VARIANTS, Variant, hf_repo_name

Source = Union[str, "os.PathLike[str]"]
Log = Optional[Callable[[str], None]]

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
HF_DOWNLOAD_PATTERNS = ["config.json", "preprocessor_config.json", "model.safetensors", "model*.safetensors",
                        "model.safetensors.index.json"]
WEIGHTS_SUFFIXES = (".pth", ".pt", ".safetensors", ".json")
_META_HASH = re.compile(r"-([0-9a-f]{8})\.pth$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{8,}")  # masked in hub error details even when it is not ours


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path  # the weights file (for sharded HF weights: the shard index)
    shards: Tuple[Path, ...] = ()
    config_path: Optional[Path] = None  # HF config.json next to safetensors weights
    preprocessor_path: Optional[Path] = None  # HF preprocessor_config.json (image mean/std)
    origin: str = "local file"
    repo_id: Optional[str] = None


@dataclass
class WeightsInfo:
    """What was loaded. `sha256()` hashes the file on first use (free when the Meta hash was checked)."""

    path: Path
    format: str  # "meta-pth" | "hf-safetensors"
    tensors_loaded: int
    tensors_total: int
    dataset: Optional[str]  # "lvd1689m" | "sat493m" | None (a custom architecture: ImageNet normalisation)
    _sha256: Optional[str] = field(default=None, repr=False, compare=False)

    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256


def torch_hub_checkpoint(variant: Variant) -> Path:
    """Where torch.hub keeps Meta's file of `variant`: <torch hub dir>/checkpoints/<Meta filename>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / variant.meta_filename


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_meta_hash(path: Path, log: Log = None) -> Optional[str]:
    """For a Meta filename "...-<8 hex>.pth": the file's SHA-256 (checked against the name), else None."""
    match = _META_HASH.search(path.name)
    if not match:
        return None
    if log:
        log(f"Checking SHA-256 of {path.name} ...")
    try:
        digest = sha256_file(path)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({type(error).__name__}: {error.strerror or error}). "
                              "Check the file's permissions.") from None
    if not digest.startswith(match.group(1)):
        raise CheckpointError(
            f"{path}: SHA-256 {digest[:8]}... does not match the {match.group(1)} in its name: the file is "
            f"incomplete or corrupt. Download it again (Meta's form: {META_DOWNLOAD_FORM}). If you gave this "
            f"name to a file you trust, rename it without the '-{match.group(1)}' suffix (only names ending in "
            "-<8 hex digits>.pth are checked), or pass verify_hash=False to load_backbone in Python."
        )
    return digest


# ---------------------------------------------------------------- local files and folders


def _sibling(path: Path, name: str) -> Optional[Path]:
    candidate = path.parent / name
    return candidate if candidate.is_file() else None


def _shards(index: Path) -> Tuple[Path, ...]:
    try:
        with open(index, encoding="utf-8") as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise CheckpointError(f"{index}: unreadable safetensors shard index. Download it again.") from None
    # Shards are plain file names next to the index: never a path that leaves its folder.
    outside = [n for n in names if not isinstance(n, str) or not n or Path(n).name != n or n in (".", "..")]
    if outside or not names:
        raise CheckpointError(f"{index}: the shard index must name .safetensors files in its own folder "
                              f"(found: {format_keys([repr(n) for n in outside] or ['no files'], 3)}). "
                              "Download it again.")
    shards = tuple(index.parent / n for n in names)
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise WeightsNotFoundError(f"{index}: shard files missing next to it: {format_keys(missing)}. "
                                   "Download the complete model folder.")
    return shards


def _local_file(path: Path, origin: str = "local file", repo_id: Optional[str] = None) -> ResolvedWeights:
    hf_like = path.name.endswith((".safetensors", ".safetensors.index.json"))
    return ResolvedWeights(
        path=path,
        shards=_shards(path) if path.name.endswith(".index.json") else (),
        config_path=_sibling(path, "config.json") if hf_like else None,
        preprocessor_path=_sibling(path, "preprocessor_config.json") if hf_like else None,
        origin=origin,
        repo_id=repo_id,
    )


def _hf_folder(folder: Path, origin: str, repo_id: Optional[str] = None) -> Optional[ResolvedWeights]:
    for name in HF_WEIGHTS:
        if (folder / name).is_file():
            return _local_file(folder / name, origin, repo_id)
    return None


def _local(path: Path) -> ResolvedWeights:
    if path.is_file():
        return _local_file(path)
    resolved = _hf_folder(path, "Hugging Face model folder")
    if resolved is None:
        raise WeightsNotFoundError(
            f"{path}: no {' or '.join(HF_WEIGHTS)} in this folder. Pass a Hugging Face model folder "
            "(config.json + model.safetensors) or the .pth / .safetensors file itself."
        )
    return resolved


# ---------------------------------------------------------------- Hugging Face hub


def download_failure(error: Exception, repo_id: str, token: Optional[str]) -> str:
    """Why a download failed, in words, without the token (error details are scrubbed)."""
    name = type(error).__name__
    status = getattr(getattr(error, "response", None), "status_code", None)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    detail = _TOKEN_LIKE.sub("hf_***", scrub_token(first_line, token, os.environ.get("HF_TOKEN")))[:200]
    if name == "GatedRepoError" or status in (401, 403):
        why = f"access denied (gated repository {repo_id}: licence not accepted, or no/invalid token)"
    elif name == "RepositoryNotFoundError" or status == 404:
        why = f"repository {repo_id} not found, or not visible without a valid token"
    elif name in ("OfflineModeIsEnabled", "LocalEntryNotFoundError") or isinstance(error, OSError):
        why = "the Hugging Face Hub could not be reached (offline?)"
    else:
        why = "the download failed"
    return f"{why} [{name}: {detail}]" if detail else f"{why} [{name}]"


def _not_found(source: str, repo_id: str, variant: Optional[Variant], looked: list, reason: str) -> str:
    meta_file = f" (file {variant.meta_filename})" if variant else ""
    return (
        f"No DINOv3 weights found for '{source}' (Hugging Face repository {repo_id}). Looked in: "
        f"{'; '.join(looked)}. Not downloaded: {reason}. To get the weights: (1) log in to "
        f"https://huggingface.co/{repo_id}, accept the DINOv3 licence of this gated repository, create an "
        "access token and give it to TreeSeg (Settings > Hugging Face token, the HF_TOKEN environment "
        "variable, or the token argument in Python), then allow downloads (Allow downloading weights; "
        "ALLOW_DOWNLOAD=true in qgis_process; allow_download=True in Python); or "
        f"(2) request Meta's download link at {META_DOWNLOAD_FORM}{meta_file} and pass the downloaded "
        "file's path; or (3) pass the path of a local .pth / .safetensors file or Hugging Face model folder."
    )


def download_snapshot(repo_id: str, token: Optional[str], **options) -> Path:
    """Download ``repo_id``'s weights files (HF_DOWNLOAD_PATTERNS: safetensors and JSON, never pickle or
    code) into the Hugging Face cache, all from one commit; the snapshot folder, named by that commit.

    Repo ids are user input, so no commit can be fixed in the code: the repository's current commit is
    looked up first and every file is fetched at that revision (so a push during the download cannot mix
    two versions, and bandit B615 holds without an exception); the strict loader then verifies every tensor.
    """
    from huggingface_hub import HfApi, snapshot_download

    commit = HfApi().model_info(repo_id, token=token or None).sha
    if not commit:
        raise RuntimeError(f"the hub named no commit for {repo_id}")
    return Path(snapshot_download(repo_id, revision=commit, allow_patterns=HF_DOWNLOAD_PATTERNS,
                                  token=token or None, **options))


def _from_hub(
    source: str, repo_id: str, variant: Optional[Variant], allow_download: bool, token: Optional[str], log: Log
) -> ResolvedWeights:
    from huggingface_hub import constants, try_to_load_from_cache

    for name in HF_WEIGHTS:
        hit = try_to_load_from_cache(repo_id, name)
        if isinstance(hit, str):
            return _local_file(Path(hit), "Hugging Face cache", repo_id)
    looked = [f"Hugging Face cache {constants.HF_HUB_CACHE} (not cached)"]
    if variant is not None:
        hub_file = torch_hub_checkpoint(variant)
        if hub_file.is_file():
            return _local_file(hub_file, "torch hub cache")
        looked.append(f"{hub_file} (absent)")
    if variant is None and Path(source).exists():
        looked.append(f"'{source}' is read as a repository id; for the local folder of that name pass './{source}'")

    if not allow_download:
        reason = "downloading is off (allow_download=False)"
    elif constants.HF_HUB_OFFLINE:
        reason = "offline mode (HF_HUB_OFFLINE is set)"
    else:
        if log:
            log(f"Downloading {repo_id} from Hugging Face (several hundred MB for large models) ...")
        try:
            folder = download_snapshot(repo_id, token)
        except Exception as error:  # any hub/network failure becomes WeightsNotFoundError below
            reason = download_failure(error, repo_id, token)
        else:
            resolved = _hf_folder(Path(folder), "downloaded from Hugging Face", repo_id)
            if resolved is not None:
                return resolved
            reason = f"the repository has no {' or '.join(HF_WEIGHTS)}"
    # Raised outside the `except` block: no hub exception (which may hold request headers) is chained.
    raise WeightsNotFoundError(_not_found(source, repo_id, variant, looked, reason))


def resolve_weights(
    source: Source, *, allow_download: bool = False, token: Optional[str] = None, log: Log = None
) -> ResolvedWeights:
    """Where the weights for `source` are (see the module docstring for the search order)."""
    is_str = isinstance(source, str)
    repo_like = is_str and bool(_REPO_ID.match(source)) and not source.endswith(WEIGHTS_SUFFIXES)
    path = Path(source).expanduser()
    if not (is_str and source in VARIANTS) and not repo_like and path.exists():
        resolved = _local(path)
    elif is_str and source in VARIANTS:
        variant = VARIANTS[source]
        if variant.hf_repo_id is None:
            hub_file = torch_hub_checkpoint(variant)
            if not hub_file.is_file():
                raise WeightsNotFoundError(
                    f"'{source}' = {variant.display_name} has no Hugging Face repository and {hub_file} does "
                    f"not exist. Request Meta's download link at {META_DOWNLOAD_FORM} and pass the path of "
                    f"{variant.meta_filename}."
                )
            resolved = _local_file(hub_file, "torch hub cache")
        else:
            resolved = _from_hub(source, variant.hf_repo_id, variant, allow_download, token, log)
    elif repo_like:
        resolved = _from_hub(source, source, None, allow_download, token, log)
    else:
        raise WeightsNotFoundError(
            f"{source}: no such file or folder, and not a variant name ({', '.join(VARIANTS)}) nor a Hugging "
            "Face repository id (owner/name). Pass the path of a DINOv3 .pth / .safetensors file or model "
            f"folder; released weights: Hugging Face (facebook/dinov3-*) or Meta's form {META_DOWNLOAD_FORM}."
        )
    if log:
        where = f" ({resolved.repo_id})" if resolved.repo_id else ""
        log(f"Weights: {resolved.path} [{resolved.origin}{where}]")
    return resolved


def detect_dataset(resolved: ResolvedWeights) -> Tuple[Optional[str], str]:
    """Pretraining dataset from the names (repo id, file, folders) or preprocessor_config.json."""
    names = [resolved.repo_id or "", resolved.path.name, *reversed(resolved.path.parent.parts)]
    for name in names:
        for dataset in DATASET_NAMES:
            if dataset in name.lower():
                return dataset, f"'{dataset}' in '{name}'"
    if resolved.preprocessor_path is not None:
        try:
            with open(resolved.preprocessor_path, encoding="utf-8") as f:
                mean = tuple(round(float(m), 3) for m in json.load(f).get("image_mean", ()))
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            mean = ()
        for dataset, (dataset_mean, _) in NORMALISATION.items():
            if mean == dataset_mean:
                return dataset, f"image_mean in {resolved.preprocessor_path.name}"
    return None, "no dataset in the names"


def choose_dataset(resolved: ResolvedWeights, candidates: Sequence[Variant], cls_norm: Optional[bool]) \
        -> Tuple[Optional[str], str]:
    """The pretraining dataset whose input normalisation the weights need, and why (None: custom architecture).

    ``candidates`` are the released variants with the weights' shapes; ``cls_norm`` whether the file has
    local_cls_norm tensors (None when its layout never carries them: Hugging Face files). Weights of an
    architecture released with both datasets (ViT-L/16, ViT-7B/16) are refused when nothing tells which:
    SAT-493M and LVD-1689M need different statistics, and a wrong guess degrades the features silently.
    """
    dataset, reason = detect_dataset(resolved)
    if dataset is not None:
        return dataset, reason
    released = {v.dataset for v in candidates if cls_norm is None or v.local_cls_norm == cls_norm}
    if len(released) == 1:
        only = released.pop()
        tensors = "local_cls_norm tensors" if only == "sat493m" else "tensors"
        return only, f"the only DINOv3 release with these {tensors} was pretrained on {DATASET_NAMES[only]}"
    if not candidates:
        return None, "a custom architecture (no DINOv3 release has these shapes) and no dataset in the names"
    arch, display = candidates[0].arch, candidates[0].arch_display
    raise CheckpointError(
        f"{resolved.path}: cannot tell whether these {display} weights were pretrained on LVD-1689M (web "
        "images) or SAT-493M (satellite images), which need different input normalisation: no 'lvd1689m' or "
        "'sat493m' in the file, folder or repository name, and no preprocessor_config.json next to the file. "
        "Rename the file or its folder to name the dataset (e.g. "
        f"dinov3_{arch}_pretrain_sat493m.pth, or a folder {hf_repo_name(arch, 'sat493m')}/; lvd1689m for the "
        "web-image release), or put the model's preprocessor_config.json next to it."
    )
