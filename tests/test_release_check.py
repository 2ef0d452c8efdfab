"""scripts/release_check.py, offline: the shipped zip is blocked only by the metadata a maintainer must set,
a zip with that metadata set passes, and planted problems are each reported by name."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, Optional

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
REAL_METADATA = {  # what a maintainer sets (RELEASING.md); offline, only their form is checked
    "homepage": "https://github.com/treeseg-maintainer/treeseg-qgis",
    "tracker": "https://github.com/treeseg-maintainer/treeseg-qgis/issues",
    "repository": "https://github.com/treeseg-maintainer/treeseg-qgis",
    "email": "maintainer@treeseg-qgis.net",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped_zip(tmp_path_factory) -> Path:
    """The zip scripts/package.py builds from this checkout."""
    done = subprocess.run([sys.executable, str(SCRIPTS / "package.py"), "--output-dir",
                           str(tmp_path_factory.mktemp("dist"))], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip())


def with_metadata(text: str, fields: Dict[str, Optional[str]]) -> str:
    """metadata.txt ``text`` with each of ``fields`` set to its value, or removed when the value is None."""
    lines = [line for line in text.splitlines() if line.split("=", 1)[0] not in fields]
    return "\n".join(lines + [f"{name}={value}" for name, value in fields.items() if value is not None]) + "\n"


def planted(source: Path, target: Path, fields: Dict[str, Optional[str]], extra: Dict[str, bytes] = {},  # noqa: B006
            executable: str = "") -> Path:
    """A copy of the zip ``source`` with metadata ``fields`` changed and ``extra`` files added."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "treeseg/metadata.txt":
                data = with_metadata(data.decode("utf-8"), fields).encode("utf-8")
            copy.writestr(info, data)
        for name, data in extra.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name == executable else 0o644) << 16
            copy.writestr(info, data)
    return target


def release_check(archive: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / "release_check.py"), "--zip", str(archive)],
                          capture_output=True, text=True, timeout=600)


def test_the_shipped_zip_is_blocked_only_by_the_maintainer_metadata(shipped_zip):
    done = release_check(shipped_zip)
    blockers = [line for line in done.stdout.splitlines() if line.startswith("BLOCKER")]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(blockers) == 4 and all("[metadata-placeholder]" in line for line in blockers), blockers
    named = {line.split(": ", 1)[1].split("=")[0] for line in blockers}
    assert named == {"homepage", "tracker", "repository", "email"}
    assert any("treeseg@example.org" in line for line in blockers)


def test_with_the_maintainer_metadata_set_the_zip_passes(shipped_zip, tmp_path):
    done = release_check(planted(shipped_zip, tmp_path / "ready.zip", REAL_METADATA))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 blocker(s)" in done.stdout


def test_planted_problems_are_each_named(shipped_zip, tmp_path):
    fields = {**REAL_METADATA, "author": None, "tracker": "http://bugs", "email": "someone@mail.example.com",
              "supportsQt6": "True"}
    extra = {
        "treeseg/treeseg_plugin/styles_old.py": b"import xml.etree.ElementTree as ET\n\nprint(ET, undefined_name)\n",
        "treeseg/treeseg_plugin/keys.txt": b"aws_access_key_id = " + b"AKIA" + b"IOSFODNN7EXAMPLE\n",
        "treeseg/treeseg_plugin/__pycache__/plugin.cpython-311.pyc": b"\0",
        "treeseg/treeseg_plugin/run.py": b"print('hello')\n",
    }
    archive = planted(shipped_zip, tmp_path / "bad.zip", fields, extra, executable="treeseg/treeseg_plugin/run.py")
    done = release_check(archive)
    out = done.stdout
    assert done.returncode == 1
    expected = [
        "[metadata] treeseg/metadata.txt: mandatory field 'author' is missing or empty",
        "[metadata-placeholder] treeseg/metadata.txt: tracker=http://bugs",
        "[metadata-placeholder] treeseg/metadata.txt: email=someone@mail.example.com",
        "[metadata] treeseg/metadata.txt: supportsQt6 is deprecated",
        "[bandit B405] treeseg_plugin/styles_old.py:1",
        "[flake8 F821] treeseg_plugin/styles_old.py:3",
        "[detect-secrets AWS Access Key] treeseg_plugin/keys.txt:1",
        "[layout] treeseg/treeseg_plugin/__pycache__/plugin.cpython-311.pyc: the zip holds compiled Python (.pyc)",
        "[layout] treeseg/treeseg_plugin/run.py: the zip holds an executable Python file",
    ]
    missing = [line for line in expected if line not in out]
    assert not missing, out
