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


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to dotted names from the repository root."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    package = parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


QGIS_FREE = ("dinov3", "engine", "worker", "batch")


def test_dependencies_point_one_way():
    """The torch/GDAL core (dinov3/, engine/, worker/, batch/, every module below them) imports no QGIS and no
    QGIS-bound module of the plugin; the provider imports no GUI code."""
    qgis_bound = ("treeseg_plugin.settings", "treeseg_plugin.gui", "treeseg_plugin.plugin", "treeseg_plugin.i18n",
                  "treeseg_plugin.diagnostics", "processing_provider", "qgis", "processing")
    checked = 0
    for package in QGIS_FREE:
        for path in sorted((REPO_ROOT / "treeseg_plugin" / package).rglob("*.py")):
            checked += 1
            wrong = {m for m in imported_modules(path) if m.startswith(qgis_bound)}
            assert not wrong, (path, wrong)
    assert checked > 80  # the sub-packages are walked too
    for path in sorted((REPO_ROOT / "processing_provider").rglob("*.py")):
        assert not {m for m in imported_modules(path) if m.startswith("treeseg_plugin.gui")}, path


# The engine's wings, each above the ones it may import (docs/architecture.md).
WING_ORDER = ("runs", "classify", "cluster", "trees", "encode", "raster", "jobs", "progress", "errors")
SIDE_BY_SIDE = {frozenset({"cluster", "trees"})}


def test_the_engine_wings_import_downwards_only():
    """A wing imports only wings below it in WING_ORDER (cluster and trees stand side by side, apart)."""
    engine = REPO_ROOT / "treeseg_plugin" / "engine"
    arrows = set()
    for path in engine.rglob("*.py"):
        parts = path.relative_to(engine).with_suffix("").parts
        if parts == ("__init__",):
            continue  # the package's API re-exports from every wing
        wing = parts[0]
        for module in imported_modules(path):
            target = module.split(".")
            if target[:2] == ["treeseg_plugin", "engine"] and len(target) > 2 and target[2] != wing:
                arrows.add((wing, target[2]))
    assert arrows, "no arrows found: the walk is broken"
    upward = [(a, b) for a, b in arrows if b not in WING_ORDER or WING_ORDER.index(b) <= WING_ORDER.index(a)
              or frozenset({a, b}) in SIDE_BY_SIDE]
    assert not upward, upward
