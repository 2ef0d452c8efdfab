"""The run skeleton (engine/runs/skeleton.py) on a tiny two-stage run with real staging: each stage's share of
the progress bar, cancel between stages, timing per stage, the commit handshake."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from treeseg.treeseg_plugin.engine.errors import Canceled, EngineError
from treeseg.treeseg_plugin.engine.runs.skeleton import Run, Stage, perform, stage_names

from tests.recording_progress import Log

TABLE = (Stage("Writing first", 30), Stage("Writing second", 60))


@dataclass
class TinyJob:
    output_path: str


def _validate(job: TinyJob) -> None:
    if not job.output_path.endswith(".txt"):
        raise EngineError("Not a .txt output.")


def _tiny_run(job: TinyJob, run: Run) -> str:
    """Stage one stages a companion, stage two the main output; half-way reports of each stage's share."""
    folder = os.path.dirname(job.output_path)
    with run.stage("Writing first") as report:
        with open(run.staging.path(os.path.join(folder, "first.txt")), "w") as file:
            file.write("first")
        report(0.5)
    with run.stage("Writing second") as report:
        with open(run.staging.path(job.output_path), "w") as file:
            file.write("second")
        report(0.5)
    run.commit(job.output_path, raster=False)
    return job.output_path


def test_stages_report_their_share_commit_and_time(tmp_path):
    log = Log()
    job = TinyJob(str(tmp_path / "out" / "main.txt"))
    assert perform(TABLE, _validate, job, log, "the outputs", _tiny_run) == job.output_path
    assert stage_names(TABLE) == ("Writing first", "Writing second") and log.stages == list(stage_names(TABLE))
    assert log.percents == [0, 15, 30, 60, 100]  # each stage's start, half its share; 100 once committed
    assert sorted(os.listdir(tmp_path / "out")) == ["first.txt", "main.txt"]

    timed = {}

    def timed_run(job: TinyJob, run: Run) -> str:
        result = _tiny_run(job, run)
        timed.update(zip(("wall", "cpu"), run.timings()))
        return result

    perform(TABLE, _validate, TinyJob(str(tmp_path / "again" / "main.txt")), Log(), "the outputs", timed_run)
    for seconds in timed.values():
        assert set(seconds) == {"Writing first", "Writing second", "total"}
        assert all(value >= 0 for value in seconds.values())
        assert seconds["Writing first"] + seconds["Writing second"] <= seconds["total"] + 1e-6


def test_cancel_between_stages_stops_before_the_next_and_leaves_nothing(tmp_path):
    log = Log()
    log.on_stage["Writing second"] = lambda: setattr(log, "is_canceled", lambda: True)
    with pytest.raises(Canceled):
        perform(TABLE, _validate, TinyJob(str(tmp_path / "out" / "main.txt")), log, "the outputs", _tiny_run)
    assert log.stages == ["Writing first", "Writing second"]
    assert log.percents == [0, 15, 30]  # stage two's body never ran (it reports 60 half-way)
    assert os.listdir(tmp_path) == []  # the staged companion and the folder the run made are gone


def test_the_last_word_before_commit_cancels(tmp_path):
    class NoCommit(Log):
        def may_commit(self) -> bool:
            return False

    (tmp_path / "main.txt").write_text("previous")
    with pytest.raises(Canceled):
        perform(TABLE, _validate, TinyJob(str(tmp_path / "main.txt")), NoCommit(), "the outputs", _tiny_run)
    assert os.listdir(tmp_path) == ["main.txt"] and (tmp_path / "main.txt").read_text() == "previous"


def test_settings_are_checked_and_resource_errors_translated(tmp_path):
    with pytest.raises(EngineError, match=r"Not a \.txt output"):
        perform(TABLE, _validate, TinyJob(str(tmp_path / "main.tif")), Log(), "the outputs", _tiny_run)
    assert os.listdir(tmp_path) == []

    def out_of_memory(job: TinyJob, run: Run) -> str:
        with run.stage("Writing first"):
            run.staging.path(job.output_path)
            raise MemoryError("Unable to allocate 9 GiB")

    with pytest.raises(EngineError, match=r"^Out of memory \(Unable to allocate 9 GiB\)"):
        perform(TABLE, _validate, TinyJob(str(tmp_path / "out" / "main.txt")), Log(), "the outputs", out_of_memory)
    assert os.listdir(tmp_path) == []
