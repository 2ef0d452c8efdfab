"""Behaviour of the performance paths (never their speed): out-of-memory back-off, precision choice,
the in-place inference fast path, cache-sized RoPE pieces, start-up imports, and the benchmark scripts.

Timing is measured by scripts/bench_*.py and reported in docs/benchmarks.md, never asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
import torch
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from osgeo import gdal
from recording_progress import Log
from treeseg.treeseg_plugin.dinov3 import load_backbone
from treeseg.treeseg_plugin.dinov3.layers import rope
from treeseg.treeseg_plugin.engine import EngineError, Progress, SegmentationConfig, run_segmentation
from treeseg.treeseg_plugin.engine.encode import runtime as engine_runtime
from treeseg.treeseg_plugin.engine.encode.features import FeatureStore, TileEncoder
from treeseg.treeseg_plugin.engine.encode.tiling import plan_tiles
from treeseg.treeseg_plugin.engine.errors import is_out_of_memory
from treeseg.treeseg_plugin.engine.raster.georef import Window
from treeseg.treeseg_plugin.engine.raster.input import InputRaster
from treeseg.treeseg_plugin.engine.raster.pixels import RasterSource
from treeseg.treeseg_plugin.engine.runs import segmentation as engine_pipeline

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = REPO_ROOT / "scripts"


class OomAbove:
    """The real backbone, except that forwards of more than `limit` images raise CUDA's OOM error
    (limit 0: every forward does). Records the batch sizes it was called with."""

    def __init__(self, backbone, limit: int, error: Optional[BaseException] = None) -> None:
        self._backbone = backbone
        self.limit = limit
        self.error = error
        self.calls: List[int] = []

    def __getattr__(self, name: str):
        return getattr(self._backbone, name)

    def forward_features(self, x: torch.Tensor):
        self.calls.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise self.error or torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 8.00 GiB total capacity)")
        return self._backbone.forward_features(x)


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> Path:
    return make_raster(tmp_path_factory.mktemp("raster") / "in.tif", 300, 260, kind="blobs")


def _wrap_model(monkeypatch, limit: int, error: Optional[BaseException] = None) -> List[OomAbove]:
    made: List[OomAbove] = []
    real = engine_pipeline.load_model

    def load(config, progress):
        backbone, device, precision = real(config, progress)
        made.append(OomAbove(backbone, limit, error))
        return made[-1], device, precision

    monkeypatch.setattr(engine_pipeline, "load_model", load)
    return made


def _run(raster: Path, out: Path, model: str, log: Progress, batch_size: int) -> np.ndarray:
    config = SegmentationConfig(input_path=str(raster), output_path=str(out), model=model, tile_size=128,
                                overlap=32, k=3, batch_size=batch_size, precision="fp32", device="cpu")
    run_segmentation(config, log)
    ds = gdal.Open(str(out))
    labels = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    return labels


# ---------------------------------------------------------------- out-of-memory back-off (issue #5)


def test_oom_halves_the_batch_and_retries(tmp_path, tiny, raster, monkeypatch):
    expected = _run(raster, tmp_path / "one.tif", tiny, Log(), batch_size=1)
    made = _wrap_model(monkeypatch, limit=1)
    log = Log()
    labels = _run(raster, tmp_path / "oom.tif", tiny, log, batch_size=4)
    (model,) = made
    assert model.calls[:3] == [4, 2, 1]  # halved twice, then kept at 1 for the rest of the run
    assert set(model.calls[3:]) == {1}
    halvings = [w for w in log.warnings if w.startswith("Out of memory")]
    assert halvings == ["Out of memory on cpu with 4 tiles per batch; retrying with 2.",
                        "Out of memory on cpu with 2 tiles per batch; retrying with 1."]
    assert np.array_equal(labels, expected)  # the same tiles, encoded one by one: the same result


def test_oom_at_batch_one_stops_with_advice(tmp_path, tiny, raster, monkeypatch):
    made = _wrap_model(monkeypatch, limit=0)
    log = Log()
    out = tmp_path / "out" / "labels.tif"
    out.parent.mkdir()
    with pytest.raises(EngineError) as caught:
        _run(raster, out, tiny, log, batch_size=2)
    message = str(caught.value)
    assert "even with one 128 x 128 px tile per batch" in message
    assert "smaller TILE_SIZE" in message and "lower PRECISION" in message
    assert "CUDA out of memory" in message
    assert made[0].calls == [2, 1]
    assert len([w for w in log.warnings if w.startswith("Out of memory")]) == 1
    assert list(out.parent.iterdir()) == []  # nothing left behind


def test_other_runtime_errors_are_not_taken_for_oom(tmp_path, tiny, raster, monkeypatch):
    made = _wrap_model(monkeypatch, limit=0, error=RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _run(raster, tmp_path / "labels.tif", tiny, Log(), batch_size=4)
    assert made[0].calls == [4]  # no retry


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory."))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Float but found BFloat16"))
    assert not is_out_of_memory(ValueError("out of memory"))


class OomOnCall(OomAbove):
    """The real backbone, except that forward number ``fail_at`` (0-based) raises CUDA's OOM error; records
    ("forward", (h, w), batch) for every forward that succeeded into ``events``."""

    def __init__(self, backbone, fail_at: int, events: list) -> None:
        super().__init__(backbone, limit=0)
        self.fail_at, self.events = fail_at, events

    def forward_features(self, x: torch.Tensor):
        self.calls.append(x.shape[0])
        if len(self.calls) - 1 == self.fail_at:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.events.append(("forward", tuple(x.shape[2:]), x.shape[0]))
        return self._backbone.forward_features(x)


def test_after_an_oom_no_shape_keeps_more_tiles_pending_than_the_smaller_batch(tmp_path, tiny):
    """Tiles of 64 px, overlap 16 over 140 x 304 px: per row two 64 x 64 tiles, then one 64 x 48 (the last
    column: the 144 px patch grid needs 48 more px after 96), six rows. Batch 4: the second forward (the second
    four 64 x 64 tiles, after the eleventh tile) runs out of memory while three 64 x 48 tiles wait; from then
    on the batch is 2, so after every tile fewer than 2 tiles of each shape may wait unencoded (before: 4)."""
    path = make_raster(tmp_path / "in.tif", 140, 304, kind="blobs")
    raster = InputRaster(str(path), (1, 2, 3), Progress())
    window = Window(0, 0, 140, 304)
    source = RasterSource(raster, window, Progress(), lambda fraction: None)
    plan = plan_tiles(304, 140, 64, 16, 16)
    wide, narrow = (64, 64), (64, 48)
    assert [tile.shape for tile in plan.tiles] == [wide, wide, narrow] * 6
    events: list = []
    backbone = OomOnCall(load_backbone(tiny), fail_at=1, events=events)
    log = Log()
    with FeatureStore(str(tmp_path), plan.grid_rows, plan.grid_cols, backbone.embed_dim) as store:
        encoder = TileEncoder(backbone, source, window, plan, store, batch_size=4)
        encoder.run(log, lambda fraction: events.append(("tile", round(fraction * len(plan.tiles)))))
    raster.close()
    assert log.warnings == ["Out of memory on cpu with 4 tiles per batch; retrying with 2."]
    waiting = {wide: 0, narrow: 0}
    batch, done = 4, 0
    for event in events:
        if event[0] == "forward":
            _, shape, size = event
            assert size <= batch
            waiting[shape] -= size
        else:
            shape = plan.tiles[done].shape
            done = event[1]
            waiting[shape] += 1
            if done >= 11:
                batch = 2  # the out-of-memory forward came after the eleventh tile
            if done < len(plan.tiles):
                assert max(waiting.values()) < batch, (done, waiting)
    assert waiting == {wide: 0, narrow: 0}  # every tile encoded once


# ---------------------------------------------------------------- precision choice


def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(engine_runtime, "cpu_has_native_bf16", lambda: True)
    assert engine_runtime.resolve_precision("auto", "cpu") == "bf16"
    assert engine_runtime.resolve_precision("fp32", "cpu") == "fp32"  # an explicit choice is kept
    assert engine_runtime.resolve_precision("auto", "mps") == "fp32"
    monkeypatch.setattr(engine_runtime, "cpu_has_native_bf16", lambda: False)
    assert engine_runtime.resolve_precision("auto", "cpu") == "fp32"


def test_native_bf16_detection_matches_the_cpu_flags(monkeypatch):
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else None
    if flags is not None:
        assert engine_runtime.cpu_has_native_bf16() == ("amx_bf16" in flags or "avx512_bf16" in flags)
    # without torch's checks (older torch), the Linux flags decide
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    if flags is not None and sys.platform.startswith("linux"):
        assert engine_runtime.cpu_has_native_bf16() == ("amx_bf16" in flags or "avx512_bf16" in flags)


# ---------------------------------------------------------------- inference fast path


def _plain_ffn(ffn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The official feed-forward formulas, out of place."""
    if hasattr(ffn, "fc1"):
        return ffn.fc2(torch.nn.functional.gelu(ffn.fc1(x)))
    return ffn.w3(torch.nn.functional.silu(ffn.w1(x)) * ffn.w2(x))


@pytest.mark.parametrize("preset", ["tiny", "tiny-swiglu-nobias"])
def test_fused_block_equals_the_plain_formula_and_keeps_inputs(tmp_path, preset):
    """Fused residuals and in-place activations give the plain formula's values; no block changes its input."""
    bb = load_backbone(write_meta_pth(tmp_path / "m.pth", make_state_dict(preset, seed=5)))
    vit = bb.vit
    x = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        tokens, (rows, cols) = vit.prepare_tokens(x)
        table = vit.rope_embed(rows, cols, 16)
        before = tokens.clone()
        block = vit.blocks[0]
        fast = block(tokens, table)
        assert torch.equal(tokens, before)
        plain = tokens + block.ls1(block.attn(block.norm1(tokens), table))
        plain = plain + block.ls2(_plain_ffn(block.mlp, block.norm2(plain)))
    assert (fast - plain).abs().max() <= 1e-5
    assert torch.equal(bb.get_intermediate_layers(x, n=2, norm=False)[0],
                       bb.get_intermediate_layers(x, n=[0, 1], norm=False)[0])  # snapshots are not overwritten


def _rope_reference(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """The official formula on half-width tables, in fp32, rounded once."""
    patches = x[..., x.shape[-2] - sin.shape[0]:, :].float()
    a, b = patches.chunk(2, dim=-1)
    out = x.clone()
    out[..., x.shape[-2] - sin.shape[0]:, :] = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
    return out


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("piece_bytes", [1 << 20, 4096, 64])
def test_rope_in_pieces_is_bit_identical(monkeypatch, one_thread, dtype, piece_bytes):
    """Whatever the piece size (several heads, one head, a run of tokens): the official arithmetic."""
    monkeypatch.setattr(rope, "_PIECE_BYTES", piece_bytes)
    calls = []
    rotate = rope._rotate
    monkeypatch.setattr(rope, "_rotate", lambda part, *args: calls.append(part.numel()) or rotate(part, *args))
    gen = torch.Generator().manual_seed(1)
    batch, tokens, heads, head_dim, grid = 2, 5 + 7 * 9, 3, 16, 7 * 9
    angles = torch.rand(grid, head_dim // 2, generator=gen) * 6
    sin, cos = angles.sin(), angles.cos()
    full_sin, full_cos = torch.cat([-sin, sin], -1), torch.cat([cos, cos], -1)
    qkv = torch.randn(batch, tokens, 3, heads, head_dim, generator=gen).to(dtype).permute(2, 0, 3, 1, 4)
    expected = _rope_reference(qkv[:2], sin, cos)
    rope.rope_apply_(qkv[:2], full_sin, full_cos)
    assert torch.equal(qkv[:2], expected)
    assert sum(calls) == 2 * batch * heads * grid * head_dim
    runs_per_head = {1 << 20: None, 4096: 2, 64: grid}[piece_bytes]  # 4096 B: runs of 32 of the 63 tokens
    assert len(calls) == (1 if runs_per_head is None else 2 * batch * heads * runs_per_head)


def test_rope_in_one_piece_on_several_threads(monkeypatch):
    """With several threads (each op a parallel region with a barrier), RoPE is four ops, whatever the size."""
    if torch.get_num_threads() < 2:
        pytest.skip("needs several threads")
    monkeypatch.setattr(rope, "_PIECE_BYTES", 64)
    calls = []
    rotate = rope._rotate
    monkeypatch.setattr(rope, "_rotate", lambda part, *args: calls.append(part.numel()) or rotate(part, *args))
    angles = torch.rand(12, 8)
    qkv = torch.randn(2, 17, 3, 2, 16).permute(2, 0, 3, 1, 4)
    expected = _rope_reference(qkv[:2], angles.sin(), angles.cos())
    rope.rope_apply_(qkv[:2], torch.cat([-angles.sin(), angles.sin()], -1), torch.cat([angles.cos()] * 2, -1))
    assert torch.equal(qkv[:2], expected) and len(calls) == 1


def test_model_build_does_not_import_dynamo():
    """A meta-device arange goes through torch._refs, which imports torch._dynamo (seconds of start-up)."""
    code = ("import sys, torch\n"
            "from treeseg_plugin.dinov3.vision_transformer import DinoVisionTransformer, ViTConfig\n"
            "DinoVisionTransformer(ViTConfig(384, 12, 6, 'mlp', 1536))\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=300)


# ---------------------------------------------------------------- benchmark scripts run


def _script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_gpu_check_smoke_on_cpu(tmp_path):
    """scripts/gpu_check.py --smoke: every section runs on the CPU at tiny sizes, OOM back-off included."""
    out = _script("gpu_check.py", "--smoke", "--json", str(tmp_path / "gpu.json"))
    assert "OOM back-off: ok" in out
    import json

    report = json.loads((tmp_path / "gpu.json").read_text())
    rows = report["throughput"]  # every precision and tile size, at the engine's batch (SegmentationConfig's 4)
    assert [(r["model"], r["precision"], r["size"], r["batch"]) for r in rows] == [
        ("tiny", precision, size, 4) for precision in ("fp32", "bf16") for size in (64, 96)]
    assert all(r["images_per_s"] > 0 and r["cosine_min"] > 0.9 for r in rows)
    assert all(r["cosine_min"] > 0.99999 for r in rows[:2])  # fp32 against itself
    run = report["segment_trees"]  # a whole run through the worker process
    assert run["wall_s"] > run["timings_s"]["total"] > 0 and run["device"] == "cpu"
    assert report["oom_backoff"]["batch_sizes"][:3] == [4, 2, 1]
    chmv2 = report["chmv2"]  # one tiny ViT + head forward per tile size and precision
    assert [(r["precision"], r["size"]) for r in chmv2] == [("fp32", 32), ("fp32", 64), ("bf16", 32), ("bf16", 64)]
    assert all(r["s_per_tile"] > 0 for r in chmv2) and [r["max_abs_diff_m"] for r in chmv2[:2]] == [0, 0]
    assert all(0 < r["max_abs_diff_m"] < 5 for r in chmv2[2:])  # bf16 heights near fp32's


def test_bench_backbone_runs(tmp_path):
    out = _script("bench_backbone.py", "--model", "tiny", "--size", "64", "--rounds", "1", "--threads", "1",
                  "--square", "256", "--json", str(tmp_path / "b.json"))
    assert "| 1 | fp32 |" in out and "| 1 | bf16 |" in out


def test_bench_attention_runs_every_kernel(tmp_path):
    """Every kernel runs and reports its error against the float64 reference. How the bf16 kernels compare is
    a measurement of the installed torch (docs/benchmarks.md), not asserted: Debian 13's torch 2.6 gave flash
    errors 8x those of torch 2.13 on the same inputs."""
    _script("bench_attention.py", "--tokens", "37", "--rounds", "1", "--threads", "1",
            "--json", str(tmp_path / "a.json"))
    import json
    import math

    rows = {(r["dtype"], r["kernel"]): r for r in json.loads((tmp_path / "a.json").read_text())["results"]}
    assert set(rows) == {("fp32", "flash"), ("fp32", "flash-contiguous"), ("fp32", "explicit"),
                         ("bf16", "flash"), ("bf16", "flash-contiguous"), ("bf16", "explicit"),
                         ("bf16", "explicit-fp32-scores"), ("bf16", "explicit-shifted")}
    assert all(math.isfinite(row["error_scale_4"]) and row["error_scale_4"] > 0 for key, row in rows.items()
               if key[0] == "bf16")
    assert rows["fp32", "explicit"]["error_scale_4"] < 1e-3


def test_bench_classify_runs_both_and_reports_the_fit_share(tmp_path):
    out = _script("bench_classify.py", "--model", "tiny", "--width", "256", "--height", "256", "--examples", "3",
                  "--repeats", "1", "--threads", "1", "--json", str(tmp_path / "c.json"))
    assert "fit / Segment Trees run" in out and "load average" in out and "leave-one-polygon-out" in out
    import json

    results = json.loads((tmp_path / "c.json").read_text())["results"]
    for row in results.values():  # the share is the fit stage over the Segment Trees run
        assert 0 < row["fit_s"] < row["classify_s"] and row["fit_share"] == row["fit_s"] / row["segment_s"]
