"""Property-based fuzzing of the checkpoint readers (hypothesis), without QGIS.

Whatever a weights file holds (a mutated safetensors header, a file cut at any byte, tensors of odd
shapes or types, a junk config.json or shard index), `load_backbone` either loads it or raises our
`CheckpointError`, whose message names the file and a fix, is one printable line and holds no
traceback. Never another exception type, never a crash, never a hang, never a large allocation.

Every example runs under a hang guard (SIGALRM fails an example after EXAMPLE_TIMEOUT_S; faulthandler
aborts the run with a traceback if C code hangs) and an address-space cap (RLIMIT_AS: current size +
MEMORY_HEADROOM), so a regression fails here instead of freezing the machine. Runs are derandomised
(stable in CI) and keep no example database. Linux only (resource, SIGALRM), like the rest of the suite.
"""

from __future__ import annotations

import contextlib
import copy
import faulthandler
import json
import math
import resource
import signal
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from treeseg.treeseg_plugin.dinov3 import CheckpointError, DinoV3Error, load_backbone, verify_weights

from tests.checkpoint_factory import hf_config, make_state_dict, meta_to_hf, write_meta_pth

EXAMPLE_TIMEOUT_S = 20  # one tiny checkpoint loads in ~0.05 s; this only catches hangs
MEMORY_HEADROOM = 4 << 30  # bytes of address space the loader may add; the fuzzed files are < 1 MB

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The fix every CheckpointError message must give (case-insensitive), see docs/troubleshooting.md.
FIXES = ("download it again", "use an unmodified released", "use the released file", "use the config.json",
         "put the model's config.json", "pass a dinov3", "use a dinov3 vit", "check the file's permissions",
         "remove it")

SAFETENSORS_DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64", "BOOL",
                      "F8_E4M3", "F8_E5M2", "F4", "F6_E2M3", "C64"]
BAD_DTYPES = ["", "f32", "F128", "Q9", "float32", "F32 ", "\x00"]
EDGE_INTS = [0, 1, 2, 3, 7, 8, 255, 256, -1, -(2**63), 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
             2**64 - 1, 2**64, 10**30]

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.sampled_from(EDGE_INTS), st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
JSON_JUNK = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)
NAMES = st.one_of(st.text(max_size=30), st.sampled_from(["", "__metadata__", "cls_token", "embeddings.cls_token",
                                                         "layer.999999999.norm1.weight", "a\nb\x1b[31m"]))


# ---------------------------------------------------------------- guards and the property


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmSize")


@pytest.fixture(scope="module", autouse=True)
def memory_cap() -> Iterator[None]:
    """Cap the address space while fuzzing: a huge allocation fails instead of swamping the machine."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _address_space() + MEMORY_HEADROOM
    except (OSError, ValueError, AttributeError):  # not Linux: run without the cap
        yield
        return
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


_TERMINAL_FD = 2  # where a fatal hang report goes: pytest's saved stderr when pytest captures fd 2


@pytest.fixture(scope="module", autouse=True)
def terminal_fd(pytestconfig) -> None:
    """Find the real stderr under pytest's capture, so that a hang report is not lost with the process."""
    global _TERMINAL_FD
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    err = getattr(getattr(capture, "_global_capturing", None), "err", None)
    _TERMINAL_FD = getattr(err, "targetfd_save", 2)


@contextlib.contextmanager
def hang_guard() -> Iterator[None]:
    """Fail an example that runs longer than EXAMPLE_TIMEOUT_S.

    SIGALRM interrupts Python code (and keeps interrupting it every second, in case some code swallows the
    exception); the flag catches a timeout even if the loader turned an interruption into a CheckpointError.
    A hang inside C code that SIGALRM cannot break aborts the run after twice that time (faulthandler, with
    every thread's traceback on the real stderr) rather than blocking CI forever.
    """
    fired = []

    def interrupt(signum: int, frame: object) -> None:
        fired.append(signum)
        raise TimeoutError(f"an example ran for more than {EXAMPLE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, EXAMPLE_TIMEOUT_S, 1.0)  # again every second, in case one is swallowed
    faulthandler.dump_traceback_later(2 * EXAMPLE_TIMEOUT_S, exit=True, file=_TERMINAL_FD)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
    assert not fired, f"an example ran for more than {EXAMPLE_TIMEOUT_S} s"


def check_message(error: DinoV3Error, path: Path) -> None:
    message = str(error)
    assert str(path) in message, message
    assert message.isprintable(), f"control characters or line breaks in: {message!r}"
    assert len(message) < 3000, message
    assert "Traceback" not in message and 'File "' not in message, message
    assert any(fix in message.lower() for fix in FIXES), f"no fix in: {message}"


def outcome(path: Path) -> str:
    """'loaded' or 'refused' (a clear CheckpointError); any other exception fails the example.

    verify_weights (the weights manager's Verify, which never materialises the model) must agree: the same
    refusal with the same message, or a pass."""
    with hang_guard():
        try:
            verified = verify_weights(path, verify_hash=False)
        except CheckpointError as error:
            verified = error
        try:
            backbone = load_backbone(path, verify_hash=False)
        except CheckpointError as error:
            check_message(error, path)
            assert isinstance(verified, CheckpointError) and str(verified) == str(error)
            return "refused"
    assert backbone.embed_dim > 0
    assert not isinstance(verified, CheckpointError), verified
    assert verified.config == backbone.config and verified.weights.tensors_loaded == backbone.weights.tensors_loaded
    return "loaded"


# ---------------------------------------------------------------- the files being mutated


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


class Quiet(dict):
    """A dict that hypothesis prints in a few characters (it prints every argument of a failing example)."""

    def __repr__(self) -> str:
        return f"<{len(self)} entries: {', '.join(map(str, self))}>"


@pytest.fixture(scope="module")
def tiny_sd() -> Dict[str, torch.Tensor]:
    return Quiet(make_state_dict("tiny", seed=0))


@pytest.fixture(scope="module")
def originals(tiny_sd, work) -> Dict[str, bytes]:
    """The tiny checkpoint as a zip .pth, a legacy (non-zip) .pth and an HF model.safetensors."""
    zip_pth = write_meta_pth(work / "original.pth", dict(tiny_sd))
    legacy = work / "legacy.pth"
    torch.save(dict(tiny_sd), legacy, _use_new_zipfile_serialization=False)
    safetensors = work / "original.safetensors"
    save_file(meta_to_hf(tiny_sd), str(safetensors))
    return Quiet(pth=zip_pth.read_bytes(), **{"legacy.pth": legacy.read_bytes()},
                 safetensors=safetensors.read_bytes())


def split_safetensors(blob: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + length]), blob[8 + length:]


def join_safetensors(header: Any, data: bytes) -> bytes:
    raw = json.dumps(header).encode("utf-8")  # NaN / Infinity are written as such: not valid JSON
    return len(raw).to_bytes(8, "little") + raw + data


def write(work: Path, name: str, blob: bytes) -> Path:
    path = work / name
    path.write_bytes(blob)
    return path


def test_the_originals_load(originals, work):
    for name, blob in originals.items():
        target = "model.safetensors" if name == "safetensors" else f"weights-{name}"
        assert outcome(write(work, target, blob)) == "loaded", name


# ---------------------------------------------------------------- safetensors headers


@FUZZ
@given(prefix=st.one_of(st.binary(min_size=8, max_size=8), st.sampled_from(EDGE_INTS).filter(
    lambda n: 0 <= n < 2**64).map(lambda n: n.to_bytes(8, "little")), st.integers(-16, 16)))
def test_length_prefix(prefix, originals, work):
    blob = originals["safetensors"]
    if isinstance(prefix, int):  # near the true length: the header is cut or runs into the data
        length = int.from_bytes(blob[:8], "little") + prefix
        prefix = max(length, 0).to_bytes(8, "little")
    mutated = prefix + blob[8:]
    result = outcome(write(work, "model.safetensors", mutated))
    if prefix[:8] != blob[:8]:
        assert result == "refused"


def _mutation(data: st.DataObject, header: dict, data_size: int) -> None:
    """Apply one random change to a parsed safetensors header, in place."""
    def span(entry: object) -> list:  # an earlier mutation may have broken the entry
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        return offsets if isinstance(offsets, list) and len(offsets) == 2 and \
            all(isinstance(o, int) for o in offsets) else [0, 0]

    names = [k for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if not names:
        return
    name = data.draw(st.sampled_from(names), label="tensor")
    entry = header[name]
    begin, end = span(entry)
    other = span(header[data.draw(st.sampled_from(names), label="other tensor")])
    offsets = st.sampled_from([*EDGE_INTS, begin, end, data_size, data_size + 1, *other, end - 1, begin + 1])
    kind = data.draw(st.sampled_from(["dtype", "shape", "offsets", "drop", "extra", "rename", "entry",
                                      "metadata", "new", "swap"]), label="mutation")
    if kind == "dtype":
        entry["dtype"] = data.draw(st.one_of(st.sampled_from(SAFETENSORS_DTYPES + BAD_DTYPES), JSON_JUNK))
    elif kind == "shape":
        entry["shape"] = data.draw(st.one_of(
            st.lists(st.one_of(st.sampled_from(EDGE_INTS), st.integers(0, 300)), max_size=6),
            st.permutations(entry["shape"]).map(list), JSON_JUNK))
    elif kind == "offsets":
        entry["data_offsets"] = data.draw(st.one_of(st.lists(offsets, min_size=2, max_size=2),
                                                    st.lists(offsets, max_size=4), JSON_JUNK))
    elif kind == "drop":
        if entry:
            del entry[data.draw(st.sampled_from(sorted(entry)))]
    elif kind == "extra":
        entry[data.draw(st.text(max_size=8))] = data.draw(JSON_JUNK)
    elif kind == "rename":
        header[data.draw(NAMES, label="new name")] = header.pop(name)
    elif kind == "entry":
        header[name] = data.draw(JSON_JUNK, label="junk entry")
    elif kind == "metadata":
        header["__metadata__"] = data.draw(st.one_of(JSON_JUNK, st.dictionaries(st.text(max_size=8),
                                                                                  st.text(max_size=8))))
    elif kind == "new":
        header[data.draw(NAMES, label="new name")] = {
            "dtype": data.draw(st.sampled_from(SAFETENSORS_DTYPES)),
            "shape": data.draw(st.lists(st.integers(0, 4), max_size=3)),
            "data_offsets": data.draw(st.lists(offsets, min_size=2, max_size=2))}
    else:  # swap the data of two tensors of the same byte size: a valid file with wrong values
        same = [k for k in names if k != name and span(header[k])[1] - span(header[k])[0] == end - begin]
        if same:
            partner = header[data.draw(st.sampled_from(same))]
            entry["data_offsets"], partner["data_offsets"] = partner["data_offsets"], entry["data_offsets"]


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_mutated_header_fields(data, originals, work):
    header, body = split_safetensors(originals["safetensors"])
    header = copy.deepcopy(header)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutation(data, header, len(body))
    outcome(write(work, "model.safetensors", join_safetensors(header, body)))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_random_bytes_in_header(data, originals, work):
    """Bytes overwritten inside the JSON header (non-UTF-8, broken JSON, changed digits), length kept."""
    blob = bytearray(originals["safetensors"])
    length = int.from_bytes(blob[:8], "little")
    for _ in range(data.draw(st.integers(1, 4), label="overwrites")):
        position = data.draw(st.integers(8, 8 + length - 1), label="position")
        patch = data.draw(st.binary(min_size=1, max_size=6), label="bytes")
        blob[position:position + len(patch)] = patch[: 8 + length - position]
    outcome(write(work, "model.safetensors", bytes(blob)))


@FUZZ
@given(header=st.one_of(JSON_JUNK, st.dictionaries(NAMES, JSON_JUNK, max_size=6)),
       body=st.sampled_from(["original", "empty", "junk"]))
def test_junk_json_header(header, body, originals, work):
    data = {"original": split_safetensors(originals["safetensors"])[1], "empty": b"", "junk": b"\xff" * 333}[body]
    assert outcome(write(work, "model.safetensors", join_safetensors(header, data))) == "refused"


def test_deeply_nested_header_is_refused(work):
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = write(work, "model.safetensors", len(raw).to_bytes(8, "little") + raw)
    assert outcome(path) == "refused"
    with pytest.raises(CheckpointError, match="not valid UTF-8 JSON"):
        load_backbone(path)


def test_huge_header_length_is_refused_before_reading(work):
    path = write(work, "model.safetensors", (2**63).to_bytes(8, "little") + b'{"a": 1}')
    with pytest.raises(CheckpointError, match="header length says 9223372036854775808 bytes but only 8 follow"):
        load_backbone(path)


# ---------------------------------------------------------------- truncation


@pytest.mark.parametrize("kind", ["pth", "legacy.pth", "safetensors"])
@FUZZ
@given(cut=st.one_of(st.integers(0, 64), st.floats(0, 1, exclude_max=True)))
def test_truncated_files_are_refused(kind, cut, originals, work):
    blob = originals[kind]
    end = cut if isinstance(cut, int) else int(cut * len(blob))
    name = "model.safetensors" if kind == "safetensors" else "weights.pth"
    assert outcome(write(work, name, blob[:end])) == "refused"


# ---------------------------------------------------------------- tensors of odd shapes and types


TORCH_DTYPES = [torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8, torch.bool, torch.uint8]


@settings(FUZZ, max_examples=100)
@given(data=st.data(), container=st.sampled_from(["pth", "safetensors"]))
def test_odd_tensors_in_valid_files(data, container, tiny_sd, work):
    """Valid containers holding reshaped, retyped, empty, 0-d, extra or missing tensors."""
    state = dict(tiny_sd) if container == "pth" else meta_to_hf(tiny_sd)
    keys = sorted(state)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        key = data.draw(st.sampled_from(keys), label="key")
        kind = data.draw(st.sampled_from(["shape", "reshape", "dtype", "drop", "add", "block", "value"]))
        if kind == "shape":
            shape = data.draw(st.lists(st.integers(0, 5), max_size=4), label="shape")
            state[key] = torch.ones(shape)
        elif kind == "reshape" and key in state:
            numel = state[key].numel()
            shape = data.draw(st.sampled_from([[numel], [1, numel], [numel, 1, 1], [1, 1, 1, numel]]))
            state[key] = state[key].reshape(shape).contiguous()
        elif kind == "dtype" and key in state:
            state[key] = state[key].to(data.draw(st.sampled_from(TORCH_DTYPES))).contiguous()
        elif kind == "drop":
            state.pop(key, None)
        elif kind == "add":
            state[data.draw(NAMES.filter(lambda n: n and n != "__metadata__"), label="new key")] = torch.ones(
                data.draw(st.lists(st.integers(0, 3), max_size=3)))
        elif kind == "block":  # a block index far beyond the others
            prefix = "blocks." if container == "pth" else "layer."
            index = data.draw(st.sampled_from([2, 3, 10**3, 10**8, 2**31, 10**30]))
            state[f"{prefix}{index}.norm1.weight"] = torch.ones(64)
        elif kind == "value" and key in state and state[key].is_floating_point():
            state[key] = state[key].clone()
            state[key].view(-1)[0] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e38]))
    if container == "pth":
        path = work / "weights.pth"
        torch.save(state, path)
    else:
        path = work / "model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    outcome(path)


# ---------------------------------------------------------------- config.json and the shard index


CONFIG_FIELDS = sorted(hf_config("tiny"))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_junk_config_json(data, tiny_sd, work):
    folder = work / "hf"
    folder.mkdir(exist_ok=True)
    save_file(meta_to_hf(tiny_sd), str(folder / "model.safetensors"))
    config = hf_config("tiny")
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        field = data.draw(st.sampled_from(CONFIG_FIELDS), label="field")
        if data.draw(st.booleans(), label="drop"):
            config.pop(field, None)
        else:
            config[field] = data.draw(JSON_JUNK, label="value")
    raw = data.draw(st.one_of(st.just(json.dumps(config).encode()), st.binary(max_size=40),
                              JSON_JUNK.map(lambda j: json.dumps(j).encode())), label="config.json")
    (folder / "config.json").write_bytes(raw)
    with hang_guard():
        try:
            load_backbone(folder)
        except CheckpointError as error:
            check_message(error, folder)  # names config.json or model.safetensors, both in the folder


@settings(FUZZ, max_examples=30)
@given(weight_map=st.one_of(JSON_JUNK, st.dictionaries(st.text(max_size=8), st.one_of(
    st.sampled_from(["model.safetensors", "../model.safetensors", "/etc/passwd", "..", ".", "", "sub/x.safetensors",
                     "C:\\x.safetensors"]), JSON_JUNK), max_size=4)))
def test_junk_shard_index(weight_map, tiny_sd, work):
    folder = work / "sharded" / "inner"
    folder.mkdir(parents=True, exist_ok=True)
    save_file(meta_to_hf(tiny_sd), str(folder / "model.safetensors"))
    save_file(meta_to_hf(tiny_sd), str(folder.parent / "model.safetensors"))  # a file the index must not reach
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    with hang_guard():
        try:
            load_backbone(index)
        except DinoV3Error as error:  # CheckpointError, or WeightsNotFoundError for shards not there
            message = str(error)
            assert str(index) in message and message.isprintable() and len(message) < 3000, message
            return
    names = set(weight_map.values())  # it loaded: only from a shard in the index's own folder
    assert names == {"model.safetensors"}, names


def test_shard_index_cannot_point_outside_its_folder(tiny_sd, work):
    folder = work / "escape" / "inner"
    folder.mkdir(parents=True)
    save_file(meta_to_hf(tiny_sd), str(folder.parent / "model.safetensors"))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {k: "../model.safetensors" for k in meta_to_hf(tiny_sd)}}))
    with pytest.raises(CheckpointError, match=r"must name \.safetensors files in its own folder") as error:
        load_backbone(index)
    assert "'../model.safetensors'" in str(error.value)
