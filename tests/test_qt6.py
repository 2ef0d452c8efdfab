"""QGIS 4 (Qt6) readiness: the plugin's own code uses only forms that work on both Qt5 and Qt6 builds.

An AST check over every production file (the plugin package, not tests or scripts) that fails on:

* imports from ``PyQt4`` / ``PyQt5`` / ``PyQt6`` instead of ``qgis.PyQt``;
* ``exec_`` (calls and definitions): Qt6 has only ``exec()``;
* unscoped enum members on Qt and QGIS classes (``Qt.AlignLeft``, ``QMessageBox.Ok``, ``Qgis.Critical``,
  ``QgsProcessing.TypeVectorPolygon``): Qt6's PyQt only knows ``Qt.AlignmentFlag.AlignLeft`` etc. The
  members are read from the classes themselves (the installed PyQt and PyQGIS), so the check flags exactly
  the ``Class.Member`` pairs whose member belongs to one of the class's enums, and never scoped forms such
  as ``QgsProcessingParameterNumber.Type.Integer`` or ``QgsProcessingParameterDefinition.Flag.FlagAdvanced``
  (which also exist on QGIS 3.22);
* ``QVariant`` type constants (``QVariant.Int``, ``QVariant.String``) and ``QVariant()`` as NULL.

These are the rewrites of QGIS's migration script (scripts/pyqt5_to_pyqt6/pyqt5_to_pyqt6.py in qgis/QGIS);
docs/qt6.md records what that script said about this repository. The slow test runs the Qt transition
rules of the ``qgis-plugin-analyzer`` package too.
"""

from __future__ import annotations

import ast
import enum
import importlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = [REPO_ROOT / "__init__.py", *sorted((REPO_ROOT / "processing_provider").rglob("*.py")),
              *sorted((REPO_ROOT / "treeseg_plugin").rglob("*.py"))]
FORBIDDEN_MODULES = ("PyQt4", "PyQt5", "PyQt6")
# Where names imported in plugin code can come from, and the real module to introspect.
ENUM_SOURCES = {"qgis.PyQt.QtCore": "qgis.PyQt.QtCore", "qgis.PyQt.QtGui": "qgis.PyQt.QtGui",
                "qgis.PyQt.QtWidgets": "qgis.PyQt.QtWidgets", "qgis.core": "qgis.core", "qgis.gui": "qgis.gui"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _is_enum_type(value: object) -> bool:
    """A Python Enum (PyQt6, QGIS 4) or a sip enum type (PyQt5, QGIS 3)."""
    if not isinstance(value, type):
        return False
    return issubclass(value, enum.Enum) or type(value).__name__ == "enumtype"


@cache
def enum_members(module: str, class_name: str) -> Dict[str, str]:
    """``{member: enum name}`` for the enums reachable on ``module.class_name`` (inherited ones too).

    A member of several enums (``Qgis.Success``) maps to all their names, joined by " or ".
    """
    try:
        cls = getattr(importlib.import_module(module), class_name)
    except (ImportError, AttributeError):
        return {}
    if not isinstance(cls, type):
        return {}
    enums = {}
    for name in dir(cls):
        try:
            value = getattr(cls, name)
        except Exception:  # noqa: S112 - some descriptors raise on class access
            continue
        if _is_enum_type(value):
            enums[name] = value
    members = {}
    for enum_name, enum_type in enums.items():
        if issubclass(enum_type, enum.Enum):
            names = list(enum_type.__members__)
        else:  # sip: the members are attributes of the class whose type is the enum
            names = [name for name in dir(cls) if isinstance(getattr(cls, name, None), enum_type)]
        for member in names:
            if member not in enums:  # a member never shadows an enum's own name
                members.setdefault(member, []).append(enum_name)
    for name in dir(cls):  # QGIS >= 3.30 keeps the old unscoped names as class attributes of Python enums
        value = getattr(cls, name, None)
        if isinstance(value, enum.Enum) and name not in enums and name not in members:
            owners = [enum_name for enum_name, enum_type in enums.items() if enum_type is type(value)]
            members[name] = owners or [type(value).__name__]
    return {member: " or ".join(sorted(owners)) for member, owners in members.items()}


def _imported_names(tree: ast.AST) -> Dict[str, Tuple[str, str]]:
    """``{local name: (module, class name)}`` for names imported from the enum sources."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ENUM_SOURCES:
            for alias in node.names:
                names[alias.asname or alias.name] = (ENUM_SOURCES[node.module], alias.name)
    return names


def check_source(source: str, path: str = "<snippet>",
                 members_of=enum_members) -> List[Finding]:
    """The Qt6-incompatible forms in ``source`` (see the module docstring)."""
    tree = ast.parse(source, filename=path)
    imported = _imported_names(tree)
    findings = []

    def add(node: ast.AST, message: str) -> None:
        findings.append(Finding(path, getattr(node, "lineno", 0), message))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    add(node, f"import {alias.name}: import from qgis.PyQt instead")
        elif isinstance(node, ast.ImportFrom):
            if node.module and node.module.split(".")[0] in FORBIDDEN_MODULES:
                add(node, f"from {node.module} import ...: import from qgis.PyQt instead")
        elif isinstance(node, ast.FunctionDef) and node.name == "exec_":
            add(node, "def exec_: Qt6 has only exec()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "QVariant" \
                and not node.args:
            add(node, "QVariant(): use qgis.core's NULL")
        elif isinstance(node, ast.Attribute):
            if node.attr == "exec_":
                add(node, ".exec_: use .exec()")
            if not isinstance(node.value, ast.Name):
                continue
            owner = node.value.id
            if owner == "QVariant" and node.attr[:1].isupper():
                add(node, f"QVariant.{node.attr}: QVariant type constants are gone in Qt6 (use QMetaType.Type)")
                continue
            if owner in imported:
                enum_names = members_of(*imported[owner]).get(node.attr)
                if enum_names is not None:
                    scoped = " or ".join(f"{owner}.{name}.{node.attr}" for name in enum_names.split(" or "))
                    add(node, f"{owner}.{node.attr}: unscoped enum, write {scoped}")
    return sorted(findings, key=lambda finding: finding.line)


def check_files(paths: Iterable[Path]) -> List[Finding]:
    findings = []
    for path in paths:
        findings += check_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))
    return findings


def test_production_code_is_qt6_ready():
    assert len(PRODUCTION) > 20
    findings = check_files(PRODUCTION)
    assert not findings, "Qt6-incompatible code:\n" + "\n".join(map(str, findings))


# ------------------------------------------------------------------ the checker itself

HEADER = ("from qgis.PyQt.QtCore import Qt, QVariant\nfrom qgis.PyQt.QtWidgets import QMessageBox, QDialog, "
          "QSizePolicy\nfrom qgis.core import Qgis, QgsProcessing, QgsProcessingParameterNumber, "
          "QgsProcessingParameterDefinition, QgsProcessingAlgorithm\n")


@pytest.mark.parametrize(("snippet", "fragment"), [
    ("from PyQt5.QtWidgets import QDialog", "from PyQt5.QtWidgets import"),
    ("import PyQt5.QtCore", "import PyQt5.QtCore"),
    ("from PyQt4 import QtGui", "from PyQt4 import"),
    ("from PyQt6.QtCore import Qt", "from PyQt6.QtCore import"),
    ("dialog.exec_()", ".exec_"),
    ("class D:\n    def exec_(self):\n        pass", "def exec_"),
    ("label.setAlignment(Qt.AlignLeft)", "Qt.AlignLeft: unscoped enum, write Qt.AlignmentFlag.AlignLeft"),
    ("x = QMessageBox.Ok", "QMessageBox.Ok: unscoped enum, write QMessageBox.StandardButton.Ok"),
    ("x = QDialog.Accepted", "QDialog.Accepted: unscoped enum, write QDialog.DialogCode.Accepted"),
    ("x = QSizePolicy.Expanding", "QSizePolicy.Expanding: unscoped enum, write QSizePolicy.Policy.Expanding"),
    ("field_type = QVariant.Int", "QVariant.Int: QVariant type constants"),
    ("value = QVariant()", "QVariant(): use qgis.core's NULL"),
    ("level = Qgis.Critical", "Qgis.Critical: unscoped enum, write Qgis.MessageLevel.Critical"),
    ("level = Qgis.Info", "Qgis.Info: unscoped enum, write Qgis.MessageLevel.Info"),
    ("level = Qgis.Warning", "Qgis.Warning: unscoped enum, write Qgis.MessageLevel.Warning"),
    ("level = Qgis.Success", "Qgis.MessageLevel.Success"),  # also in other enums: all are named
    ("kind = QgsProcessing.TypeVectorPolygon",
     "QgsProcessing.TypeVectorPolygon: unscoped enum, write QgsProcessing.SourceType.TypeVectorPolygon"),
    ("flag = QgsProcessingAlgorithm.FlagNoThreading",
     "QgsProcessingAlgorithm.FlagNoThreading: unscoped enum, write QgsProcessingAlgorithm.Flag.FlagNoThreading"),
    ("kind = QgsProcessingParameterNumber.Integer",
     "QgsProcessingParameterNumber.Integer: unscoped enum, write QgsProcessingParameterNumber.Type.Integer"),
])
def test_checker_flags_qt6_incompatible_code(snippet, fragment):
    findings = check_source(HEADER + snippet)
    assert len(findings) == 1, findings
    assert fragment in findings[0].message
    assert findings[0].line == HEADER.count("\n") + 1 + (1 if snippet.startswith("class") else 0)


@pytest.mark.parametrize("snippet", [
    "label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)",
    "x = QMessageBox.StandardButton.Ok",
    "x = QDialog.DialogCode.Accepted",
    "dialog.exec()",
    "level = Qgis.MessageLevel.Critical",
    "kind = QgsProcessing.SourceType.TypeVectorPolygon",
    "kind = QgsProcessingParameterNumber.Type.Integer",
    "flags = QgsProcessingParameterDefinition.Flag.FlagAdvanced",
    "flag = QgsProcessingAlgorithm.Flag.FlagNoThreading",
    "output = QgsProcessing.TEMPORARY_OUTPUT",  # a string constant, not an enum
    "version = Qgis.QGIS_VERSION",
    "text = Qt.AlignmentFlag",  # the enum itself
    "x = other.AlignLeft",  # not a Qt class
    "class Qt:\n    AlignLeft = 1\ny = QgsProcessing",  # defined locally
])
def test_checker_accepts_qt5_and_qt6_forms(snippet):
    source = HEADER + snippet if not snippet.startswith("class Qt") else snippet
    assert check_source(source) == []


def test_checker_only_looks_at_names_imported_from_qt_or_qgis():
    assert check_source("Qt = object()\nx = Qt.AlignLeft") == []
    assert len(check_source("from qgis.PyQt.QtCore import Qt as Q\nx = Q.AlignLeft")) == 1


def test_enum_tables_come_from_the_installed_classes():
    members = enum_members("qgis.PyQt.QtCore", "Qt")
    assert members["AlignLeft"] == "AlignmentFlag"
    assert enum_members("qgis.core", "Qgis")["Critical"] == "MessageLevel"
    assert "MessageLevel" not in enum_members("qgis.core", "Qgis")
    assert enum_members("qgis.core", "NoSuchClass") == {}


# ------------------------------------------------------------------ qgis-plugin-analyzer's Qt rules

QT_RULES = {"QGIS_LEGACY_IMPORT", "PYQT5_IMPORT", "OBSOLETE_VARIANT"}  # plus every QT6_* rule


def _analyzer() -> Optional[str]:
    found = Path(sys.executable).with_name("qgis-analyzer")
    return str(found) if found.is_file() else shutil.which("qgis-analyzer")


def _rule_findings(payload: object) -> List[dict]:
    found = []
    if isinstance(payload, dict):
        rule = payload.get("type")
        if isinstance(rule, str) and (rule in QT_RULES or rule.startswith("QT6_")):
            found.append(payload)
        for value in payload.values():
            found += _rule_findings(value)
    elif isinstance(payload, list):
        for value in payload:
            found += _rule_findings(value)
    return found


@pytest.mark.slow
def test_qgis_plugin_analyzer_finds_no_qt_transition_problem(tmp_path):
    analyzer = _analyzer()
    if analyzer is None:
        pytest.skip("qgis-plugin-analyzer is not installed (requirements/dev.txt)")
    plugin = tmp_path / "treeseg"
    for path in PRODUCTION:
        target = plugin / path.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    shutil.copy(REPO_ROOT / "metadata.txt", plugin / "metadata.txt")
    done = subprocess.run([analyzer, "analyze", str(plugin), "--json", "--linters", "none", "--no-cache",
                           "--workers", "1"], capture_output=True, text=True, timeout=600, check=False,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    findings = _rule_findings(json.loads(done.stdout[done.stdout.index("{"):]))
    assert findings == [], findings
