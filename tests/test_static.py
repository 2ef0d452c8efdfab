"""Structural checks of the code: one import name for the plugin in tests, dependencies pointing one way.

ruff and bandit run in scripts/test.sh (the README's test command), before pytest."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def top_level_imports(path: Path) -> set[str]:
    """The first name of every module that ``path`` imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_tests_import_the_plugin_under_one_name_as_qgis_does():
    """Under two names one pytest session would hold two copies of every module (a monkeypatch on one
    misses the other): tests import ``treeseg.<package>``, the name of the plugin folder in conftest."""
    stray = {path.name: top_level_imports(path) & {"treeseg_plugin", "processing_provider"}
             for path in sorted((REPO_ROOT / "tests").glob("*.py"))}
    assert not {name: found for name, found in stray.items() if found}


def test_dependencies_point_one_way():
    """The torch/GDAL core (dinov3/, engine/) imports no QGIS; the provider imports no GUI code."""
    for package in ("dinov3", "engine"):
        for path in sorted((REPO_ROOT / "treeseg_plugin" / package).glob("*.py")):
            source = path.read_text(encoding="utf-8")
            assert not top_level_imports(path) & {"qgis", "processing"}, path
            assert "from ..settings" not in source and "from ..gui" not in source, path
    for path in sorted((REPO_ROOT / "processing_provider").glob("*.py")):
        assert ".gui" not in path.read_text(encoding="utf-8"), path
