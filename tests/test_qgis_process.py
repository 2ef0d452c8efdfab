"""The real qgis_process.bin sees the plugin headless (classFactory(None) + initProcessing only)."""

from __future__ import annotations

import pytest
from qgis_process_runner import enable_plugin, qgis_process_env, run, run_algorithm

pytestmark = pytest.mark.slow


def test_help_lists_parameters_and_outputs(plugins_dir, tmp_path):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    done = run(["help", "treeseg:segmenttrees"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("INPUT: Orthophoto", "MODEL: DINOv3 model", "K_MAX: Maximum K", "ALLOW_DOWNLOAD",
                 "OUTPUT: <outputRaster>", "STATS: <outputHtml>", "OUTPUT_POLYGONS: <outputVector>",
                 "CHOSEN_K: <outputNumber>"):
        assert line in done.stdout, line


def test_diagnostics_runs_headless(plugins_dir, tmp_path):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    report_file = tmp_path / "diagnostics.txt"
    done, payload = run_algorithm("treeseg:diagnostics", {"OUTPUT": report_file}, env)
    assert done.returncode == 0 and payload is not None, done.stdout + done.stderr
    report = payload["results"]["REPORT"]
    assert report_file.read_text(encoding="utf-8") == report
    assert "application: qgis_process" in report and "version: 2." in report  # torch from this venv
