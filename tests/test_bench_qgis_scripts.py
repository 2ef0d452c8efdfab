"""The benchmark scripts that drive ``qgis_process.bin`` run end to end at tiny sizes and report consistent
figures (never their speed: the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=SCRIPTS.parent, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_bench_hectares_runs_the_three_ways_and_the_working_resolution_gives_the_10_cm_labels(tmp_path):
    out = _script("bench_hectares.py", "--models", "tiny", "--side", "48", "--json", str(tmp_path / "h.json"))
    document = json.loads((tmp_path / "h.json").read_text())
    assert document["args"]["side"] == 48 and "date" in document and "machine" in document
    report = document["results"]
    assert report["hectares"] == pytest.approx((48 * 0.1) ** 2 / 1e4)  # a 4.8 m square
    tiny = report["models"]["tiny"]
    assert set(tiny["rows"]) == {"10 cm raster", "2.5 cm native", "2.5 cm at 0.1 m"}
    for row in tiny["rows"].values():
        assert row["wall_s"] > row["engine_s"] > 0
        assert row["ha_per_min_wall"] == pytest.approx(report["hectares"] / row["wall_s"] * 60)
    # averaging each 4 x 4 block of a nearest-neighbour 4x upsampling gives back the 10 cm pixels exactly
    assert tiny["agreement"] == 1.0
    assert "| tiny | 2.5 cm at 0.1 m |" in out


def test_bench_fixed_cost_splits_a_run_into_phases_that_add_up(tmp_path):
    trace = ["--trace", "2"] if shutil.which("strace") else []
    out = _script("bench_fixed_cost.py", "--model", "tiny", "--repeats", "1", *trace,
                  "--json", str(tmp_path / "f.json"))
    results = json.loads((tmp_path / "f.json").read_text())["results"]
    (one,) = results["rounds"]
    medians = results["medians"]
    assert medians["fixed_s"] == pytest.approx(one["whole_s"] - one["engine_work_s"])
    assert one["whole_s"] > one["load_model_s"] > 0 and one["native_without_plugin_s"] > 0
    assert "Fixed cost" in out
    if not trace:
        pytest.skip("strace is not installed: the traced phases were not checked")
    phases = results["traced"]  # medians of 2 runs are means: the phases add up to the whole
    whole = phases.pop("whole traced command")
    part = phases.pop("of which the interpreter check")
    assert all(seconds >= 0 for seconds in phases.values())
    assert 0 <= part <= phases["QGIS start-up and the algorithm's checks"]
    assert math.isclose(sum(phases.values()), whole, abs_tol=1e-6)
    assert phases["worker: engine run (model loading included)"] > 0
