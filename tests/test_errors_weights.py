"""Weights problems and weights security, as a user of Segment Trees meets them (issue #5).

Every broken or missing checkpoint is given to the real algorithm through ``processing.run`` (and
``qgis_process.bin`` for the headless checks) on a small synthetic raster. Each case asserts what the user
sees: a QgsProcessingException whose message names the problem and the fix (the stable first words
listed in docs/troubleshooting.md), no traceback in it, nothing left in the destination folder, and
Processing still working afterwards (a good run follows the failures).

Security: the Hugging Face token never reaches a message, the log, QGIS's message log, stdout/stderr of
qgis_process or any output file; a pickle that would run code is refused before it can; the plugin's
code never evaluates strings, runs a shell or loads pickles other than weights-only.
"""

from __future__ import annotations

import ast
import json
import pickle
import zipfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest
import torch
from checkpoint_factory import make_state_dict, meta_to_hf, write_hf_folder, write_meta_pth
from data_factory import make_raster
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback
from qgis_process_runner import enable_plugin, qgis_process_env, run_algorithm
from recording_progress import RecordingFeedback
from safetensors.torch import save_file
from treeseg.treeseg_plugin.dinov3.variants import META_DOWNLOAD_FORM, VARIANTS

ALGORITHM = "treeseg:segmenttrees"
REPO_ROOT = Path(__file__).resolve().parent.parent
FAKE_TOKEN = "hf_TreeSegFakeToken0123456789SECRETabc"  # noqa: S105 - a fake token the tests hunt for
StateDict = Dict[str, torch.Tensor]
VIT_B = list(VARIANTS).index("vitb16")  # MODEL values: the enum follows VARIANTS
VIT_H_PLUS = list(VARIANTS).index("vith16plus")


@pytest.fixture()
def message_log() -> Iterator[List[str]]:
    """Everything written to QGIS's message log (Log Messages panel) meanwhile."""
    lines: List[str] = []

    def keep(message: str, tag: str, level: object) -> None:
        lines.append(f"{tag}: {message}")

    log = QgsApplication.messageLog()
    log.messageReceived.connect(keep)
    yield lines
    log.messageReceived.disconnect(keep)


@pytest.fixture(scope="module")
def tiny_sd() -> StateDict:
    return make_state_dict("tiny", seed=0)


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> Path:
    return make_raster(tmp_path_factory.mktemp("raster") / "ortho.tif", 64, 48, kind="regions")


@pytest.fixture(scope="module")
def good_weights(tmp_path_factory, tiny_sd) -> Path:
    return write_meta_pth(tmp_path_factory.mktemp("good") / "dinov3_tiny_random.pth", tiny_sd)


def run_segment_trees(parameters: dict, feedback: QgsProcessingFeedback | None = None) -> dict:
    import processing

    return processing.run(ALGORITHM, parameters, feedback=feedback)


def refused(raster: Path, destination: Path, **parameters) -> Tuple[str, List[str]]:
    """Run Segment Trees into an empty folder; it must fail and leave the folder empty.

    Returns the exception's message and the Processing log."""
    destination.mkdir(parents=True, exist_ok=True)
    feedback = RecordingFeedback()
    with pytest.raises(QgsProcessingException) as raised:
        run_segment_trees({"INPUT": str(raster), "OUTPUT": str(destination / "labels.tif"),
                           "STATS": str(destination / "stats.json"), **parameters}, feedback)
    message = str(raised.value)
    for text in (message, *feedback.lines):
        assert "Traceback" not in text and 'File "' not in text, text
    assert list(destination.iterdir()) == [], "the failed run left files behind"
    return message, feedback.lines


def assert_says(message: str, *needles: str) -> None:
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"


# ---------------------------------------------------------------- broken weights files


def _cut(data: bytes, keep: int) -> bytes:
    return data[:keep]


def _truncated_pth(folder: Path, sd: StateDict) -> Path:
    path = write_meta_pth(folder / "dinov3_truncated.pth", sd)
    path.write_bytes(_cut(path.read_bytes(), path.stat().st_size // 2))
    return path


def _truncated_safetensors(folder: Path, sd: StateDict) -> Path:
    path = folder / "model.safetensors"
    save_file(meta_to_hf(sd), str(path))
    path.write_bytes(_cut(path.read_bytes(), path.stat().st_size - 1000))
    return path


def _written(name: str, content: bytes) -> Callable[[Path, StateDict], Path]:
    def write(folder: Path, sd: StateDict) -> Path:
        (folder / name).write_bytes(content)
        return folder / name

    return write


def _foreign_zip(folder: Path, sd: StateDict) -> Path:
    path = folder / "weights.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "not a checkpoint")
    return path


class CustomObject:
    """Any class: a .pth holding one is not a plain weights file."""


def _custom_class(folder: Path, sd: StateDict) -> Path:
    path = folder / "weights.pth"
    torch.save({**sd, "extra": CustomObject()}, path)
    return path


def _convnext(folder: Path, sd: StateDict) -> Path:
    convnext = {"downsample_layers.0.0.weight": torch.ones(96, 3, 4, 4), "downsample_layers.0.1.weight": torch.ones(96),
                "stages.0.0.dwconv.weight": torch.ones(96, 1, 7, 7), "stages.0.0.gamma": torch.ones(96),
                "norm.weight": torch.ones(768)}
    return write_meta_pth(folder / "dinov3_convnext_tiny_pretrain_lvd1689m.pth", convnext)


def _hf_disagreeing(**overrides) -> Callable[[Path, StateDict], Path]:
    def write(folder: Path, sd: StateDict) -> Path:
        return write_hf_folder(folder / "hf", sd, "tiny", **overrides) / "model.safetensors"

    return write


def _poisoned(key: str, value: float) -> Callable[[Path, StateDict], Path]:
    def write(folder: Path, sd: StateDict) -> Path:
        sd = {k: v.clone() for k, v in sd.items()}
        sd[key].view(-1)[5] = value
        return write_meta_pth(folder / "weights.pth", sd)

    return write


def _hash_mismatch(folder: Path, sd: StateDict) -> Path:
    return write_meta_pth(folder / "dinov3_vits16_pretrain_lvd1689m-08c60483.pth", sd)


REDOWNLOAD = "download it again"
USE_RELEASED = "Use an unmodified released DINOv3 ViT checkpoint"
NOT_A_CHECKPOINT = ("not a PyTorch checkpoint or safetensors file", "Pass a DINOv3 .pth file from Meta")

BROKEN_WEIGHTS = {
    "missing file": (lambda folder, sd: folder / "nowhere" / "dinov3_vits16.pth",
                     ("no such file or folder", "Pass the path of a DINOv3 .pth / .safetensors file")),
    "truncated .pth": (_truncated_pth, ("unreadable PyTorch checkpoint", REDOWNLOAD)),
    "truncated .safetensors": (_truncated_safetensors, ("unreadable safetensors file", "past the end of the file",
                                                         REDOWNLOAD)),
    "random bytes": (_written("weights.pth", bytes(range(7, 256)) * 64), NOT_A_CHECKPOINT),
    "text file": (_written("weights.pth", b"these are not weights\n" * 40), NOT_A_CHECKPOINT),
    "zip that is not a torch file": (_foreign_zip, ("unreadable PyTorch checkpoint", REDOWNLOAD)),
    "empty file": (_written("weights.pth", b""), ("the file is empty", REDOWNLOAD)),
    "pickle with a custom class": (_custom_class, (
        "refused: the file is a pickle that holds Python objects, not only tensors",
        "test_errors_weights.CustomObject", "torch.load(weights_only=True)", "Use the released file")),
    "ConvNeXt checkpoint": (_convnext, ("DINOv3 ConvNeXt checkpoint", "not supported", "Use a DINOv3 ViT")),
    "config.json depth differs": (_hf_disagreeing(num_hidden_layers=12), (
        "disagrees with the weights", "num_hidden_layers 12 (weights: 2)",
        "Use the config.json from the same Hugging Face repository and revision as the weights")),
    "config.json width differs": (_hf_disagreeing(hidden_size=384), (
        "disagrees with the weights", "hidden_size 384 (weights: 64)", "Use the config.json")),
    "NaN tensor": (_poisoned("blocks.0.mlp.fc1.weight", float("nan")),
                   ("NaN or Inf values", "blocks.0.mlp.fc1.weight (NaN)", REDOWNLOAD)),
    "Inf tensor": (_poisoned("blocks.1.attn.proj.weight", float("-inf")),
                   ("NaN or Inf values", "blocks.1.attn.proj.weight (Inf)", REDOWNLOAD)),
    "SHA-256 mismatch": (_hash_mismatch, (
        "does not match the 08c60483 in its name", "Download it again", META_DOWNLOAD_FORM,
        "rename it without the '-08c60483' suffix")),
}


@pytest.mark.parametrize("case", BROKEN_WEIGHTS)
def test_broken_weights_file(case, treeseg_provider, raster, tiny_sd, tmp_path):
    write, needles = BROKEN_WEIGHTS[case]
    weights = write(tmp_path, tiny_sd)
    message, _ = refused(raster, tmp_path / "out", WEIGHTS=str(weights))
    assert str(weights) in message, message  # the message names the file
    assert_says(message, *needles)
    assert message.isprintable() and len(message) < 2000, message  # one line a user can read


def test_gated_model_not_cached_says_how_to_get_it(treeseg_provider, raster, tmp_path):
    """MODEL = ViT-B/16 with an empty Hugging Face cache: no weights, no download, the ways out."""
    message, log = refused(raster, tmp_path / "out", MODEL=VIT_B)
    repo = "facebook/dinov3-vitb16-pretrain-lvd1689m"
    assert_says(message, "No DINOv3 weights found for 'vitb16'", f"Hugging Face repository {repo}",
                "Not downloaded: downloading is off", f"https://huggingface.co/{repo}", "accept the DINOv3 licence",
                "HF_TOKEN", META_DOWNLOAD_FORM, "dinov3_vitb16_pretrain_lvd1689m-73cec8be.pth",
                "pass the path of a local .pth / .safetensors file")
    assert not any("Loaded" in line for line in log)  # nothing was loaded in place of the weights


def test_gated_model_offline_without_token(treeseg_provider, raster, tmp_path, monkeypatch):
    """Downloads allowed, but HF_HUB_OFFLINE=1 and no token: the message says so and gives the ways out."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    message, _ = refused(raster, tmp_path / "out", MODEL=VIT_H_PLUS, ALLOW_DOWNLOAD=True)
    assert_says(message, "No DINOv3 weights found for 'vith16plus'", "offline mode (HF_HUB_OFFLINE is set)",
                "https://huggingface.co/facebook/dinov3-vith16plus-pretrain-lvd1689m",
                "accept the DINOv3 licence", "access token", META_DOWNLOAD_FORM,
                "pass the path of a local .pth / .safetensors file")


def test_the_hash_fix_in_the_message_works_and_processing_still_runs(treeseg_provider, raster, tiny_sd, tmp_path):
    """After all the failures above, a good run works: the renamed file of the SHA-256 case loads."""
    misnamed = _hash_mismatch(tmp_path, tiny_sd)
    refused(raster, tmp_path / "refused", WEIGHTS=str(misnamed))
    renamed = misnamed.rename(misnamed.with_name("dinov3_vits16_pretrain_lvd1689m.pth"))  # what the message says
    output = tmp_path / "out" / "labels.tif"
    results = run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(renamed), "K": 2,
                                 "OUTPUT": str(output), "STATS": str(tmp_path / "out" / "stats.json")})
    assert results["CHOSEN_K"] == 2 and output.is_file()
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["chosen_k"] == 2


# ---------------------------------------------------------------- never run code from a checkpoint


class Payload:
    """Unpickling it creates a file: what a malicious checkpoint would do, made harmless."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_pickle_that_runs_code_is_refused_and_never_runs(container, treeseg_provider, raster, tiny_sd, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "dinov3_vits16_pretrain_lvd1689m.pth"
    torch.save({**tiny_sd, "payload": Payload(marker)}, path, _use_new_zipfile_serialization=container == "zip")
    torch.load(path, weights_only=False)  # proves the payload is live (it only touches `marker`)
    assert marker.exists()
    marker.unlink()

    message, _ = refused(raster, tmp_path / "out", WEIGHTS=str(path))
    assert_says(message, "refused: the file is a pickle that holds Python objects", "torch.load(weights_only=True)",
                "never runs code from a checkpoint")
    assert "can still be loaded" not in message and "weights_only=False" not in message  # no unsafe advice
    assert not marker.exists()


def test_old_protocol_pickle_is_never_unpickled(treeseg_provider, raster, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pth"
    path.write_bytes(pickle.dumps({"payload": Payload(marker)}, protocol=0))
    refused(raster, tmp_path / "out", WEIGHTS=str(path))
    assert not marker.exists()


def _python_sources() -> List[Path]:
    sources = [REPO_ROOT / "__init__.py"]
    for folder in ("treeseg_plugin", "processing_provider"):
        sources += sorted((REPO_ROOT / folder).rglob("*.py"))
    return sources


def _call_name(node: ast.Call) -> str:
    """'torch.load', 'eval', or '<expr>.exec' for a method of a computed object (Qt's dialog.exec())."""
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    parts.append(func.id if isinstance(func, ast.Name) else "<expr>")
    return ".".join(reversed(parts))


def scan(text: str, name: str) -> List[str]:
    """Calls and imports that evaluate code, run a shell or unpickle unsafely (an AST scan: comments,
    strings and Qt's ``dialog.exec()`` do not count)."""
    problems = []
    for node in ast.walk(ast.parse(text, name)):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = getattr(node, "module", None) or ""
            names = [alias.name for alias in node.names] + [module]
            bad = [n for n in names if n.split(".")[0] in ("pickle", "cPickle", "_pickle", "dill", "marshal",
                                                           "shelve", "joblib")]
            if module.startswith("torch") and any(alias.name == "load" for alias in node.names):
                bad.append(f"{module}.load")
            if bad:
                problems.append(f"{where}: imports {bad}")
        if not isinstance(node, ast.Call):
            continue
        call = _call_name(node)
        keywords = {k.arg: k.value for k in node.keywords}
        if call in ("eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec"):
            problems.append(f"{where}: {call}()")
        if call in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            problems.append(f"{where}: {call}() runs a shell")
        shell = keywords.get("shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
            problems.append(f"{where}: {call}(shell=...)")
        if call.startswith("torch.") and call.endswith(".load"):
            safe = keywords.get("weights_only")
            if not (isinstance(safe, ast.Constant) and safe.value is True):
                problems.append(f"{where}: {call}() without weights_only=True")
    return problems


def test_plugin_code_never_evaluates_code_nor_loads_unsafe_pickles():
    sources = _python_sources()
    names = {p.relative_to(REPO_ROOT).as_posix() for p in sources}
    assert {"__init__.py", "treeseg_plugin/dinov3/checkpoint/files.py", "treeseg_plugin/dinov3/checkpoint/loading.py",
            "processing_provider/segment_trees.py"} <= names
    problems = [problem for source in sources
                for problem in scan(source.read_text(encoding="utf-8"), source.relative_to(REPO_ROOT).as_posix())]
    assert problems == []


def test_the_scan_finds_what_it_looks_for():
    bad = """
import pickle
from torch import load
eval("1")
exec(code)
builtins.eval(x)
os.system("ls")
subprocess.run("ls", shell=True)
subprocess.Popen(["ls"], shell=flag)
torch.load(path)
torch.load(path, weights_only=False)
torch.serialization.load(path, weights_only=flag)
"""
    good = """
# eval(x) and exec(y) in a comment
text = "eval(x)"
dialog.exec()
SettingsDialog(window).exec()
model.eval()
Backbone(vit).eval()
subprocess.run(["ls"], shell=False)
torch.load(path, map_location="cpu", weights_only=True)
"""
    assert len(scan(bad, "bad.py")) == 11
    assert scan(good, "good.py") == []


# ---------------------------------------------------------------- the Hugging Face token stays secret


def assert_no_token(where: str, text: str | bytes) -> None:
    needle = FAKE_TOKEN.encode() if isinstance(text, bytes) else FAKE_TOKEN
    assert needle not in text, f"the token appears in {where}"
    secret = b"SECRETabc" if isinstance(text, bytes) else "SECRETabc"
    assert secret not in text, f"part of the token appears in {where}"


def assert_no_token_in_files(folder: Path) -> List[Path]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        assert_no_token(str(path), path.read_bytes())
    return files


def test_token_never_leaks_in_processing(treeseg_provider, raster, good_weights, tmp_path, monkeypatch, message_log):
    """HF_TOKEN set and downloads allowed (so the token is read and handed to the engine)."""
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)

    message, log = refused(raster, tmp_path / "failed", MODEL=VIT_B, ALLOW_DOWNLOAD=True)  # offline: not found
    assert "offline mode" in message
    for where, text in [("the message", message), *(("the Processing log", line) for line in log)]:
        assert_no_token(where, text)

    out = tmp_path / "done"
    feedback = RecordingFeedback()
    results = run_segment_trees({"INPUT": str(raster), "WEIGHTS": str(good_weights), "ALLOW_DOWNLOAD": True,
                                 "K": 2, "OUTPUT": str(out / "labels.tif"), "STATS": str(out / "stats.html"),
                                 "OUTPUT_POLYGONS": str(out / "clusters.gpkg")}, feedback)
    assert results["CHOSEN_K"] == 2
    files = assert_no_token_in_files(out)
    assert {p.name for p in files} >= {"labels.tif", "labels.qml", "stats.html", "clusters.gpkg"}
    for line in [*feedback.lines, *message_log, json.dumps(results, default=str)]:
        assert_no_token("the log", line)


@pytest.mark.slow
def test_token_never_leaks_through_qgis_process(good_weights, raster, plugins_dir, tmp_path):
    """Headless, HF_TOKEN in the environment: a failing and a succeeding run, stdout/stderr/JSON/files."""
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    env["HF_TOKEN"] = FAKE_TOKEN
    enable_plugin("treeseg", env)

    failed = tmp_path / "failed"
    failed.mkdir()
    done, payload = run_algorithm(ALGORITHM, {"INPUT": raster, "MODEL": VIT_B, "ALLOW_DOWNLOAD": "true",
                                              "OUTPUT": failed / "labels.tif"}, env)
    assert done.returncode != 0
    assert "No DINOv3 weights found for 'vitb16'" in done.stdout + done.stderr
    assert "offline mode (HF_HUB_OFFLINE is set)" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert list(failed.iterdir()) == []
    assert_no_token("qgis_process stdout/stderr (failed run)", done.stdout + done.stderr)

    out = tmp_path / "done"
    done, payload = run_algorithm(ALGORITHM, {"INPUT": raster, "WEIGHTS": good_weights, "ALLOW_DOWNLOAD": "true",
                                              "K": 2, "OUTPUT": out / "labels.tif", "STATS": out / "stats.json"}, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert payload is not None and payload["results"]["CHOSEN_K"] == 2
    assert_no_token("qgis_process stdout/stderr and its JSON log", done.stdout + done.stderr)
    files = assert_no_token_in_files(out)
    assert {p.name for p in files} >= {"labels.tif", "labels.qml", "stats.json"}
    assert not [key for key in _keys(json.loads((out / "stats.json").read_text())) if "token" in key.lower()]


def _keys(value: object) -> Iterator[str]:
    """Every key of a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)
