"""The worker that stays up between runs in one QGIS session (treeseg_plugin/worker/kept.py): Segment Trees through
processing.run in this process, real worker processes, a random-weight checkpoint in Meta's format.

Each run names its worker in its log ("Running in a worker process (pid N ...)"); the tests count the workers
started from those pids and from this process's children, never from timings.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from checkpoint_factory import make_state_dict, write_meta_pth
from data_factory import make_raster
from osgeo import gdal
from qgis.core import QgsProcessingException, QgsSettings
from recording_progress import RecordingFeedback
from treeseg.treeseg_plugin import settings as treeseg_settings
from treeseg.treeseg_plugin.plugin import TreeSegPlugin
from treeseg.treeseg_plugin.worker import kept

ALGORITHM = "treeseg:segmenttrees"
KEPT_LINE = "kept loaded from an earlier run in this process"


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> str:
    return str(make_raster(tmp_path_factory.mktemp("input") / "ortho.tif", 256, 256))


@pytest.fixture(autouse=True)
def fresh_session():
    """Each test starts without a kept worker and with the default settings, and leaves none behind."""
    kept.release()
    QgsSettings().remove(f"{treeseg_settings.GROUP}/keep_worker")
    QgsSettings().remove(f"{treeseg_settings.GROUP}/worker_idle_minutes")
    yield
    kept.release()
    QgsSettings().remove(f"{treeseg_settings.GROUP}/keep_worker")
    QgsSettings().remove(f"{treeseg_settings.GROUP}/worker_idle_minutes")


def segment(raster: str, weights: str, output: Path, feedback: RecordingFeedback | None = None,
            **parameters) -> RecordingFeedback:
    """One Segment Trees run through processing.run (``parameters`` added); its feedback (the log)."""
    import processing

    feedback = feedback or RecordingFeedback()
    processing.run(ALGORITHM, {"INPUT": raster, "WEIGHTS": weights, "TILE_SIZE": 128, "OVERLAP": 16, "K": 3,
                               "OUTPUT": str(output), **parameters}, feedback=feedback)
    return feedback


def worker_pid(feedback: RecordingFeedback) -> int:
    pids = [int(found.group(1)) for text in feedback.texts
            if (found := re.match(r"Running in a worker process \(pid (\d+)", text))]
    assert len(pids) == 1, feedback.text
    return pids[0]


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (killed, not yet reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def dead_child(pid: int) -> bool:
    """Whether child ``pid`` has ended, all its threads included (it can be reaped; it is not reaped here)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def labels(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


def test_five_runs_use_one_worker_and_load_the_model_once(treeseg_provider, raster, tiny, tmp_path):
    runs = [segment(raster, tiny, tmp_path / f"run{index}" / "labels.tif") for index in range(5)]

    assert len({worker_pid(feedback) for feedback in runs}) == 1  # one worker started for five runs
    assert KEPT_LINE not in runs[0].text and "Loaded " in runs[0].text
    for index, feedback in enumerate(runs[1:], start=1):
        assert KEPT_LINE in feedback.text and "Loaded " not in feedback.text  # weights not read again
        assert f"kept from {index} earlier run" in feedback.text
    assert kept.kept_pid() == worker_pid(runs[0]) and running(kept.kept_pid())
    store = QgsSettings()  # the defaults the README gives, stored for QGIS's Advanced settings editor
    assert store.value("treeseg/keep_worker", type=bool) is True
    assert store.value("treeseg/worker_idle_minutes", type=float) == 10.0
    first = labels(tmp_path / "run0" / "labels.tif")
    assert all((labels(tmp_path / f"run{index}" / "labels.tif") == first).all() for index in range(1, 5))


def test_the_kept_worker_writes_what_a_fresh_worker_writes(treeseg_provider, raster, tiny, tmp_path):
    segment(raster, tiny, tmp_path / "warm-up.tif")
    kept_run = segment(raster, tiny, tmp_path / "kept" / "labels.tif")
    QgsSettings().setValue(f"{treeseg_settings.GROUP}/keep_worker", False)
    fresh_run = segment(raster, tiny, tmp_path / "fresh" / "labels.tif")
    assert KEPT_LINE in kept_run.text and KEPT_LINE not in fresh_run.text
    assert (labels(tmp_path / "kept" / "labels.tif") == labels(tmp_path / "fresh" / "labels.tif")).all()


def test_a_killed_kept_worker_is_replaced_and_the_next_run_works(treeseg_provider, raster, tiny, tmp_path):
    first = worker_pid(segment(raster, tiny, tmp_path / "a.tif"))
    os.kill(first, signal.SIGKILL)  # as the out-of-memory killer would, while it waits for the next run
    assert wait_until(lambda: dead_child(first))
    second = segment(raster, tiny, tmp_path / "b.tif")
    assert worker_pid(second) != first and KEPT_LINE not in second.text
    assert labels(tmp_path / "b.tif").max() == 3
    assert kept.kept_pid() == worker_pid(second)


def kill_once_a_job_waits(pid: int) -> None:
    """SIGKILL ``pid`` (stopped) as soon as a job line waits in its stdin, so that it dies before it reads it."""
    with open(f"/proc/{pid}/fd/0", "rb", buffering=0) as pipe:  # the read end of its stdin pipe
        while struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0" * 4))[0] == 0:
            time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)


def test_a_kept_worker_that_dies_as_a_run_takes_it_is_replaced_for_that_run(treeseg_provider, raster, tiny,
                                                                            tmp_path):
    first = worker_pid(segment(raster, tiny, tmp_path / "a.tif"))
    os.kill(first, signal.SIGSTOP)  # alive when the run takes it, and it never reads the job ...
    killer = threading.Thread(target=kill_once_a_job_waits, args=(first,))
    killer.start()  # ... killed once the job waits in its input
    second = segment(raster, tiny, tmp_path / "b.tif")
    killer.join()
    assert not running(first)  # reaped by the run that replaced it
    assert worker_pid(second) != first and labels(tmp_path / "b.tif").max() == 3


def test_the_kept_worker_is_released_after_its_idle_time(treeseg_provider, raster, tiny, tmp_path):
    QgsSettings().setValue(f"{treeseg_settings.GROUP}/worker_idle_minutes", 0.02)  # 1.2 s
    pid = worker_pid(segment(raster, tiny, tmp_path / "a.tif"))
    assert wait_until(lambda: not running(pid))
    assert kept.kept_pid() is None
    assert worker_pid(segment(raster, tiny, tmp_path / "b.tif")) != pid


def test_unloading_the_plugin_ends_the_kept_worker(treeseg_provider, raster, tiny, tmp_path):
    pid = worker_pid(segment(raster, tiny, tmp_path / "a.tif"))
    assert running(pid)
    TreeSegPlugin(None).unload()
    assert not running(pid) and kept.kept_pid() is None


def test_switched_off_each_run_starts_a_fresh_worker_that_ends_with_it(treeseg_provider, raster, tiny, tmp_path):
    QgsSettings().setValue(f"{treeseg_settings.GROUP}/keep_worker", False)
    runs = [segment(raster, tiny, tmp_path / f"{index}.tif") for index in range(3)]
    pids = [worker_pid(feedback) for feedback in runs]
    assert len(set(pids)) == 3 and not any(running(pid) for pid in pids)
    assert kept.kept_pid() is None and all(KEPT_LINE not in feedback.text for feedback in runs)


def test_changed_weights_are_read_again(treeseg_provider, raster, tmp_path):
    weights = write_meta_pth(tmp_path / "tiny.pth", make_state_dict("tiny", seed=0))
    first = segment(raster, str(weights), tmp_path / "a.tif")
    write_meta_pth(weights, make_state_dict("tiny", seed=1))  # the same file name, new weights
    os.utime(weights, ns=(time.time_ns(), os.stat(weights).st_mtime_ns + 1_000_000_000))
    second = segment(raster, str(weights), tmp_path / "b.tif")
    assert worker_pid(second) == worker_pid(first)
    assert KEPT_LINE not in second.text and "Loaded " in second.text


def test_another_patch_stride_loads_the_model_again_in_the_kept_worker(treeseg_provider, raster, tiny, tmp_path):
    first = segment(raster, tiny, tmp_path / "a.tif")
    second = segment(raster, tiny, tmp_path / "b.tif", STRIDE=1)  # STRIDES[1]: 8 px instead of 16
    assert worker_pid(second) == worker_pid(first)
    assert KEPT_LINE not in second.text and "Loaded " in second.text and "stride 8)" in second.text


def test_a_kept_worker_started_with_another_environment_is_replaced(treeseg_provider, raster, tiny, tmp_path,
                                                                    monkeypatch):
    first = worker_pid(segment(raster, tiny, tmp_path / "a.tif"))
    monkeypatch.setenv("TREESEG_TEST_CHANGED", "1")  # e.g. CUDA_VISIBLE_DEVICES or a proxy set since the last run
    second = segment(raster, tiny, tmp_path / "b.tif")
    assert worker_pid(second) != first and KEPT_LINE not in second.text
    assert wait_until(lambda: not running(first))  # the kept worker that did not fit was released
    assert kept.kept_pid() == worker_pid(second)


def test_a_cancel_ends_the_kept_worker_writes_nothing_and_the_next_run_works(treeseg_provider, raster, tiny,
                                                                             tmp_path):
    warm = worker_pid(segment(raster, tiny, tmp_path / "warm-up.tif"))
    canceled = RecordingFeedback(cancel_at="Encoding tiles")
    output = tmp_path / "out" / "labels.tif"  # a folder the run creates
    with pytest.raises(QgsProcessingException, match="Canceled"):
        segment(raster, tiny, output, canceled)
    assert worker_pid(canceled) == warm  # the kept worker ran it ...
    assert not running(warm) and kept.kept_pid() is None  # ... and was ended with the run
    assert not output.parent.exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".treeseg-")] == []
    after = segment(raster, tiny, tmp_path / "after" / "labels.tif")
    assert worker_pid(after) != warm and labels(tmp_path / "after" / "labels.tif").max() == 3


def test_a_worker_that_answered_with_an_engine_error_is_kept(treeseg_provider, raster, tiny, tmp_path):
    """A damaged cluster model is refused by the engine in the worker: the worker answered, so it stays for the
    next run, which finds the model still loaded."""
    first = worker_pid(segment(raster, tiny, tmp_path / "a.tif"))
    damaged = tmp_path / "damaged.tscm"
    damaged.write_bytes(b"not a cluster model")
    refused = RecordingFeedback()
    with pytest.raises(QgsProcessingException, match="cluster model"):
        segment(raster, tiny, tmp_path / "b.tif", refused, CLUSTER_MODEL=str(damaged))
    assert worker_pid(refused) == first and kept.kept_pid() == first and running(first)
    third = segment(raster, tiny, tmp_path / "c.tif")
    assert worker_pid(third) == first and KEPT_LINE in third.text
