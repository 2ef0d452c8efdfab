"""Static checks that plugins.qgis.org and our reviewers run: ruff on the repository, bandit on the plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_CODE = ["__init__.py", "treeseg_plugin", "processing_provider"]


def test_ruff_reports_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bandit_reports_nothing_medium_or_higher():
    done = subprocess.run([sys.executable, "-m", "bandit", "-q", "-r", "-ll", *PLUGIN_CODE], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
