"""The worker process that runs the engine for QGIS (treeseg_plugin.worker.client / .worker).

Real worker processes started with this Python; real QGIS Processing for the crash tests: the worker is
killed mid-run (SIGKILL, as the out-of-memory killer does; SIGSEGV, as a native crash) and the
algorithm must fail with a clear message, leave nothing behind, and work again on the next run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from data_factory import make_raster
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsProcessingFeedback
from recording_progress import Log
from treeseg.treeseg_plugin.engine import Canceled, EngineError, SegmentationConfig, run_segmentation
from treeseg.treeseg_plugin.engine.jobs.fit import ClusterFitResult
from treeseg.treeseg_plugin.engine.jobs.results import SegmentationResult
from treeseg.treeseg_plugin.engine.raster.staging import Staging
from treeseg.treeseg_plugin.worker.client import PLUGIN_ROOT, WorkerDiedError, death_message, run_job

ALGORITHM = "treeseg:segmenttrees"


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> str:
    return str(make_raster(tmp_path_factory.mktemp("input") / "ortho.tif", 160, 128))


def config(raster: str, weights: str, output: Path, **changes) -> SegmentationConfig:
    return SegmentationConfig(raster, str(output), model=weights, tile_size=64, overlap=16, k=3, **changes)


def leftovers(*folders: Path) -> list[str]:
    return [str(path) for folder in folders if folder.exists() for path in folder.rglob(".treeseg-*")]


def test_worker_writes_what_the_engine_writes_in_process(raster, tiny, tmp_path):
    progress = Log()
    result = run_job(config(raster, tiny, tmp_path / "worker" / "labels.tif"), progress)
    direct = run_segmentation(config(raster, tiny, tmp_path / "direct" / "labels.tif"))
    worker_labels = gdal.Open(result.output_path).ReadAsArray()
    assert (worker_labels == gdal.Open(direct.output_path).ReadAsArray()).all()
    assert result.chosen_k == direct.chosen_k == 3
    assert result.cluster_pixels == direct.cluster_pixels and set(result.wcss) == {3}
    assert any(line.startswith("Running in a worker process (pid ") for line in progress.lines)
    assert "Encoding tiles" in progress.stages and progress.percents[-1] == 100


def test_engine_errors_come_back_with_their_message(raster, tmp_path):
    with pytest.raises(EngineError, match=r"broken\.pth: not a PyTorch checkpoint or safetensors file") as raised:
        bad = tmp_path / "broken.pth"
        bad.write_bytes(b"not a checkpoint")
        run_job(config(raster, str(bad), tmp_path / "out" / "labels.tif"))
    assert not isinstance(raised.value, WorkerDiedError)
    assert not (tmp_path / "out").exists()


def test_cancel_stops_the_worker_and_removes_its_files(raster, tiny, tmp_path):
    class CancelWhileEncoding(Log):
        def is_canceled(self) -> bool:
            return "Encoding tiles" in self.stages

    out = tmp_path / "out"
    with pytest.raises(Canceled):
        run_job(config(raster, tiny, out / "labels.tif"), CancelWhileEncoding())
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_worker_without_torch_names_the_missing_package(raster, tiny, tmp_path, monkeypatch):
    system_python = "/usr/bin/python3"
    if not os.path.exists(system_python) or sys.prefix == sys.base_prefix:
        pytest.skip("needs a virtual environment over the system Python")
    if subprocess.run([system_python, "-c", "import torch"], capture_output=True, check=False).returncode == 0:
        pytest.skip("the system Python has its own torch (Debian's python3-torch)")
    venv = [entry for entry in sys.path if entry.startswith(sys.prefix)]
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in venv])
    with pytest.raises(EngineError, match=r"cannot import its Python packages .*torch.*Installing the dependencies"):
        run_job(config(raster, tiny, tmp_path / "labels.tif"), python=system_python)


def test_a_missing_interpreter_is_a_clear_error(raster, tiny, tmp_path):
    with pytest.raises(EngineError, match="Cannot start TreeSeg's worker process with the Python interpreter"):
        run_job(config(raster, tiny, tmp_path / "labels.tif"), python=str(tmp_path / "no-python"))


@pytest.mark.parametrize(("returncode", "words"), [
    (-signal.SIGKILL, ["was killed (SIGKILL)", "out-of-memory killer", "Lower the batch size"]),
    (-signal.SIGSEGV, ["crashed (segmentation fault)", "device 'cpu'"]),
    (-signal.SIGABRT, ["aborted", "CUDA"]),
    (-signal.SIGTERM, [f"stopped by signal {int(signal.SIGTERM)}"]),
    (3, ["exited with code 3", "Its last output: boom"]),
])
def test_death_messages_name_what_happened_and_the_fix(returncode, words):
    message = death_message(returncode, "first line\nboom")
    assert "nothing was written" in message
    for word in words:
        assert word in message


class KillingFeedback(QgsProcessingFeedback):
    """Kills the worker with ``signal_number`` as encoding starts (the pid is in its first log line)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__()
        self.signal_number = signal_number
        self.pid: int | None = None

    def pushInfo(self, info: str) -> None:
        found = re.match(r"Running in a worker process \(pid (\d+)", info)
        if found:
            self.pid = int(found.group(1))

    def setProgressText(self, text: str) -> None:
        if text == "Encoding tiles" and self.pid:
            os.kill(self.pid, self.signal_number)


@pytest.mark.parametrize(("signal_number", "expected"), [(signal.SIGKILL, "was killed (SIGKILL)"),
                                                          (signal.SIGSEGV, "crashed (segmentation fault)")])
def test_a_killed_worker_fails_the_algorithm_cleanly_and_the_next_run_works(
        treeseg_provider, raster, tiny, dest, signal_number, expected):
    import processing

    before = {path.name: path.read_bytes() for path in dest.iterdir()}
    parameters = {"INPUT": raster, "WEIGHTS": tiny, "TILE_SIZE": 64, "OVERLAP": 16, "K": 3,
                  "OUTPUT": str(dest / "labels.tif"), "STATS": str(dest / "stats.json"),
                  "OUTPUT_POLYGONS": str(dest / "new" / "polygons.gpkg")}
    feedback = KillingFeedback(signal_number)
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(ALGORITHM, parameters, feedback=feedback)
    assert feedback.pid is not None and expected in str(raised.value)
    assert "nothing was written" in str(raised.value)
    assert {path.name: path.read_bytes() for path in dest.iterdir()} == before  # no new folder, no temp file
    results = processing.run(ALGORITHM, parameters)
    assert gdal.Open(results["OUTPUT"]).ReadAsArray().max() == 3
    assert leftovers(dest) == []


class KillingBesideOtherRuns(KillingFeedback):
    """Kills the worker (SIGKILL) while other runs have temporary folders in the same output folder: one of this
    process, and folders named for the pids next to the worker's (its pid with a digit more, and less)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(signal.SIGKILL)
        self.folder = folder
        self.others: list[Path] = []

    def setProgressText(self, text: str) -> None:
        if text == "Encoding tiles" and self.pid:
            for name in (f".treeseg-tmp-{self.pid}0-x", f".treeseg-features-{str(self.pid)[:-1]}-x"):
                (self.folder / name).mkdir()
                (self.folder / name / "part.tif").write_bytes(b"another run's file")
                self.others.append(self.folder / name)
        super().setProgressText(text)


def test_a_killed_workers_leftovers_are_removed_but_not_other_runs_in_the_same_folder(
        treeseg_provider, raster, tiny, dest):
    import processing

    with Staging() as staging:  # another run in this process, writing into the same folder
        other = Path(staging.path(str(dest / "other.tif")))
        other.write_bytes(b"other labels")
        feedback = KillingBesideOtherRuns(dest)
        parameters = {"INPUT": raster, "WEIGHTS": tiny, "TILE_SIZE": 64, "OVERLAP": 16, "K": 3,
                      "OUTPUT": str(dest / "labels.tif")}
        with pytest.raises(QgsProcessingException, match=r"was killed \(SIGKILL\)"):
            processing.run(ALGORITHM, parameters, feedback=feedback)
        assert len(feedback.others) == 2
        assert sorted(leftovers(dest)) == sorted(map(str, [other.parent, *feedback.others]))
        assert all((path / "part.tif").is_file() for path in feedback.others)
        staging.commit(last="other.tif")
    assert (dest / "other.tif").read_bytes() == b"other labels"


def test_results_cross_the_pipe_as_strict_json():
    """A WCSS increase (a -inf drop) and the numbered dicts survive JSON without NaN or Infinity."""
    drop = {2: float("-inf"), 3: 12.5}
    segmentation = SegmentationResult("labels.tif", 3, {2: 0.0, 3: 1.0}, drop, {1: 10, 2: 5},
                                      {1: {"hectares": None}}, {"k": 3}, tree_clusters=[1])
    fit = ClusterFitResult("forest.tscm", 3, {2: 0.0, 3: 1.0}, drop, [{"path": "a.tif"}], {"total": 1.5},
                           {"total": 2.5})
    for result in (segmentation, fit):
        line = json.dumps(result.to_json(), allow_nan=False)
        assert type(result).from_json(json.loads(line)) == result



@pytest.mark.parametrize(("stdin", "returncode", "stderr"), [("", 0, ""), ('{"protocol": 0}\n', 2, "protocol 0")])
def test_the_worker_leaves_without_the_interpreters_teardown(tmp_path, stdin, returncode, stderr):
    """Once its input ends the worker exits at once (os._exit), skipping the interpreter's teardown that takes
    0.4-0.6 s with torch loaded (docs/benchmarks.md, "The fixed cost per qgis_process run"): exit handlers do not
    run, and the exit code and the last words on stderr still come through."""
    marker = tmp_path / "teardown-ran"
    (tmp_path / "sitecustomize.py").write_text(f"import atexit\natexit.register(open, {str(marker)!r}, 'w')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), PLUGIN_ROOT])}
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, timeout=60)
    assert marker.exists()  # the exit handler runs when a Python process ends normally
    marker.unlink()
    done = subprocess.run([sys.executable, "-m", "treeseg_plugin.worker.process"], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == returncode and stderr in done.stderr
    assert not marker.exists()

# -- a worker whose stdout closes before it exits ------------------------------------------------------

_SLOW_EXIT_WORKER = '''#!{python}
"""Stands in for the worker (its arguments, -m treeseg_plugin.worker.process, are ignored): answers, closes
its stdout, then goes on for a moment before it exits, as an interpreter tearing down torch does."""
import json, os, sys, time
sys.stdin.readline()
print(json.dumps({{"event": "started", "pid": os.getpid(), "python": sys.executable}}), flush=True)
if {staging!r}:
    os.makedirs(os.path.join({staging!r}, f".treeseg-stage-{{os.getpid()}}-x"))
answer = {answer!r}
if answer:
    print(answer, flush=True)
sys.stdout.close()
os.close(1)
open({closed!r}, "w").close()
time.sleep({sleep})
open({finished!r}, "w").close()
sys.exit({code})
'''


def slow_exit_worker(folder: Path, answer: str, code: int, sleep: float, staging: str = "") -> Path:
    """An executable Python script for ``run_job(python=...)``; it writes ``stdout-closed`` after closing its
    stdout and ``finished`` just before it exits with ``code``; with ``staging``, it first leaves a temporary
    folder of its own there, as a run does."""
    script = folder / "slow-exit-worker"
    script.write_text(_SLOW_EXIT_WORKER.format(python=sys.executable, answer=answer, code=code, sleep=sleep,
                                               staging=staging,
                                               closed=str(folder / "stdout-closed"),
                                               finished=str(folder / "finished")))
    script.chmod(0o755)
    return script


def test_a_worker_that_answered_is_left_to_exit(raster, tmp_path):
    expected = SegmentationResult(str(tmp_path / "labels.tif"), 3, {3: 1.0}, {3: 0.5}, {1: 10}, {1: {}}, {"k": 3})
    answer = json.dumps({"event": "result", "result": expected.to_json()})
    worker = slow_exit_worker(tmp_path, answer, code=0, sleep=1.0)
    result = run_job(SegmentationConfig(raster, str(tmp_path / "labels.tif")), Log(), python=str(worker))
    assert result == expected
    assert (tmp_path / "finished").exists()  # not killed while it was still exiting


def test_a_worker_that_fails_after_its_answer_leaves_no_temporary_folder(raster, tmp_path):
    """The result came, then the worker crashed while exiting (code 3): the result stands, and the worker's
    temporary folder beside the outputs is removed."""
    expected = SegmentationResult(str(tmp_path / "labels.tif"), 3, {3: 1.0}, {3: 0.5}, {1: 10}, {1: {}}, {"k": 3})
    answer = json.dumps({"event": "result", "result": expected.to_json()})
    worker = slow_exit_worker(tmp_path, answer, code=3, sleep=0.1, staging=str(tmp_path))
    assert run_job(SegmentationConfig(raster, str(tmp_path / "labels.tif")), Log(), python=str(worker)) == expected
    assert (tmp_path / "finished").exists() and leftovers(tmp_path) == []


def test_a_worker_that_dies_removes_the_output_folder_the_run_created(raster, tmp_path):
    """The worker made the missing output folder for its temporary folder, then died without an answer: both go."""
    out = tmp_path / "out"
    worker = slow_exit_worker(tmp_path, "", code=3, sleep=0.1, staging=str(out))
    with pytest.raises(WorkerDiedError, match="exited with code 3"):
        run_job(SegmentationConfig(raster, str(out / "labels.tif")), Log(), python=str(worker))
    assert (tmp_path / "finished").exists() and not out.exists()


def test_a_worker_that_closed_stdout_without_an_answer_is_judged_by_its_exit_code(raster, tmp_path):
    worker = slow_exit_worker(tmp_path, "", code=3, sleep=1.0)
    with pytest.raises(WorkerDiedError, match="exited with code 3 before finishing"):
        run_job(SegmentationConfig(raster, str(tmp_path / "labels.tif")), Log(), python=str(worker))
    assert (tmp_path / "finished").exists()


def test_a_cancel_while_waiting_for_the_worker_to_exit_stops_it(raster, tmp_path):
    class CancelOnceStdoutClosed(Log):
        def is_canceled(self) -> bool:
            return (tmp_path / "stdout-closed").exists()

    worker = slow_exit_worker(tmp_path, "", code=0, sleep=600)
    progress = CancelOnceStdoutClosed()
    try:
        with pytest.raises(Canceled):
            run_job(SegmentationConfig(raster, str(tmp_path / "labels.tif")), progress, python=str(worker))
    finally:
        pid = int(re.search(r"pid (\d+)", progress.text).group(1))
        alive = running(pid)
        if alive:
            os.kill(pid, signal.SIGKILL)
    assert not alive and not (tmp_path / "finished").exists()


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie has): from /proc, which a minimal Debian root
    has where ``ps`` is missing."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
