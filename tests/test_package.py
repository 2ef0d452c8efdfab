"""The packaged zip installs into a clean plugin folder and qgis_process finds the algorithm there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from qgis_process_runner import enable_plugin, qgis_process_env, run

PACKAGE_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "package.py"

pytestmark = pytest.mark.slow


def build(output_dir: Path) -> Path:
    """scripts/package.py --output-dir OUTPUT_DIR, as a developer runs it; returns the zip it printed."""
    done = subprocess.run([sys.executable, str(PACKAGE_SCRIPT), "--output-dir", str(output_dir)],
                          capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def test_zip_holds_the_plugin_and_nothing_else(tmp_path):
    archive = build(tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert all(name.startswith("treeseg/") for name in names)
    for required in ("treeseg/__init__.py", "treeseg/metadata.txt", "treeseg/icon.svg", "treeseg/LICENSE",
                     "treeseg/processing_provider/segment_trees.py", "treeseg/treeseg_plugin/plugin.py",
                     "treeseg/processing_provider/models/tree_inventory.model3", "treeseg/i18n/treeseg_fr.qm"):
        assert required in names
    for unwanted in ("tests/", "scripts/", "__pycache__", ".pyc", ".venv", ".ci/", "sample/", "requirements/", ".ts"):
        assert not any(unwanted in name for name in names), unwanted
    assert build(tmp_path / "again").read_bytes() == archive.read_bytes()


def test_zip_installs_and_algorithm_shows_up(tmp_path):
    plugins = tmp_path / "profile-plugins"
    zipfile.ZipFile(build(tmp_path)).extractall(plugins)
    env = qgis_process_env(tmp_path / "home", plugins)
    enable_plugin("treeseg", env)
    done = run(["help", "treeseg:segmenttrees"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Segment Trees" in done.stdout
    assert "OUTPUT: <outputRaster>" in done.stdout
