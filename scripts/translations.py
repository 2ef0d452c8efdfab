"""The translations of TreeSeg's QGIS side: extract its user-visible strings into i18n/treeseg_<lang>.ts, compile the
.qm files QGIS loads, and find user-visible strings that cannot be translated (docs/translations.md).

    .venv/bin/python scripts/translations.py update    # every .ts: new strings added unfinished, gone ones dropped
    .venv/bin/python scripts/translations.py compile   # every .ts -> .qm with lrelease (apt: qttools5-dev-tools)
    .venv/bin/python scripts/translations.py check     # exit 1 on an untranslatable or an untranslated string
    .venv/bin/python scripts/translations.py add LANG  # start i18n/treeseg_LANG.ts

Strings are found by reading the code (ast), not by running it: the arguments of ``tr(...)``, ``self.tr(...)`` and
``QCoreApplication.translate(context, ...)``, and the literals declared as data that a function translates later
(DATA_ARGUMENTS: the Processing parameters' labels and help, ``translatable(...)``).
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess  # nosec B404: runs lrelease, a fixed local tool
import sys
import xml.etree.ElementTree as ElementTree  # reads our own .ts files, never foreign input
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
I18N_DIR = REPO_ROOT / "i18n"
QGIS_SIDE = ("processing_provider", "treeseg_plugin/gui", "treeseg_plugin/plugin.py", "treeseg_plugin/i18n.py",
             "treeseg_plugin/settings.py")
"""Where the QGIS side's user-visible strings live (what the plugin shows; the engine's messages stay English, and
so do diagnostics.py's report and installer.py's, which runs outside QGIS too: docs/translations.md)."""
DEFAULT_CONTEXT = "TreeSeg"  # treeseg_plugin/i18n.py: CONTEXT (tests/test_translations.py checks they agree)
DATA_ARGUMENTS = {"translatable": 0, "_spec": 2, "ParameterSpec": 2, "with_help": 0, "number": 0, "_destination": 1,
                  "_settings_enum": 0, "orthophoto": 0, "bands": 0}
"""Functions whose literal argument at this position is shown translated later (parameters.py's declarations)."""
TEXT_SINKS = {
    "QAction", "QLabel", "QPushButton", "QCheckBox", "QRadioButton", "QGroupBox", "QToolButton", "QMessageBox",
    "QgsMessageBarItem", "setText", "setWindowTitle", "setToolTip", "setStatusTip", "setWhatsThis",
    "setPlaceholderText", "setTitle", "setLabelText", "setHelp", "addTab", "addRow", "addButton", "information",
    "warning", "critical", "question", "getOpenFileName", "getSaveFileName", "getExistingDirectory", "pushMessage",
    "pushInfo", "pushWarning", "pushCritical", "pushSuccess", "pushCommandInfo", "reportError", "setProgressText",
    "createMessage", "setHorizontalHeaderLabels", "QgsProcessingException",
}
"""Calls whose text arguments the user reads: widgets, message bars, Processing feedback and errors (and every
``...Error``/``...Exception`` raised on the QGIS side)."""
RETURNED_TEXT = {"displayName", "group", "shortHelpString", "shortDescription", "longName"}
"""Processing methods whose returned text is shown (a provider's ``name`` too)."""
NOT_WORDS = {"TreeSeg"}  # the product's name is the same in every language
WORD = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True)
class Message:
    context: str
    source: str
    file: str
    line: int


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


def qgis_side_files(root: Path = REPO_ROOT) -> list[Path]:
    """The Python files of :data:`QGIS_SIDE`, sorted."""
    files: list[Path] = []
    for entry in QGIS_SIDE:
        path = root / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _name(node: ast.AST) -> str:
    """``f`` for ``f(...)``, ``obj.f(...)`` and ``a.b.f(...)``; "" otherwise."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _is_text(node: ast.AST) -> bool:
    """A literal a user would read: a string with words, an f-string, or text joined with ``+`` or ``%``."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(WORD.search(node.value)) and node.value not in NOT_WORDS
    if isinstance(node, ast.JoinedStr):  # words of its own, not only translated pieces put together
        return any(_is_text(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _is_text(node.left) or _is_text(node.right)
    return isinstance(node, (ast.List, ast.Tuple)) and any(_is_text(item) for item in node.elts)


def _tr_context(function: ast.FunctionDef) -> str | None:
    """The context a ``def tr`` translates in: the literal first argument of a ``translate`` call in it."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and _name(node.func) == "translate" and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
    return None


class _Contexts:
    """The context of ``tr`` in each class (its own ``def tr`` or ``tr = ...``, else a base class's) and at module
    level. A Qt class (QDialog, QgsTask...) that defines none translates with PyQt's ``QObject.tr``, whose context
    is the class's own name."""

    def __init__(self, trees: dict[Path, ast.Module]):
        self.own: dict[str, str] = {}
        self.bases: dict[str, list[str]] = {}
        self.modules: dict[Path, str] = {}
        for path, tree in trees.items():
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name == "tr":
                    self.modules[path] = _tr_context(node) or DEFAULT_CONTEXT
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    self.bases[node.name] = [_name(base) for base in node.bases]
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name == "tr":
                            self.own[node.name] = _tr_context(item) or DEFAULT_CONTEXT
                        elif isinstance(item, ast.Assign) and any(_name(target) == "tr" for target in item.targets):
                            self.own[node.name] = DEFAULT_CONTEXT  # tr = staticmethod(tr): the plugin's tr

    def of(self, path: Path, class_name: str | None, method: bool) -> str:
        """The context of ``tr(...)`` (``method``: ``self.tr(...)``) written in ``class_name`` of ``path``."""
        if not method or class_name is None:
            return self.modules.get(path, DEFAULT_CONTEXT)
        written_in, seen, todo = class_name, set(), [class_name]
        while todo:
            name = todo.pop(0)
            if name in self.own:
                return self.own[name]
            if name not in self.bases and name.startswith("Q"):  # a Qt or QGIS class: QObject.tr
                return written_in
            seen.add(name)
            todo += [base for base in self.bases.get(name, []) if base and base not in seen]
        return self.modules.get(path, DEFAULT_CONTEXT)


class _Scanner(ast.NodeVisitor):
    """Collects one file's messages and problems, knowing the class and function it is in."""

    def __init__(self, path: Path, contexts: _Contexts, root: Path):
        self.path, self.contexts = path, contexts
        self.file = path.relative_to(root).as_posix()
        self.classes: list[ast.ClassDef] = []
        self.functions: list[str] = []
        self.messages: list[Message] = []
        self.problems: list[Problem] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    def visit_Return(self, node: ast.Return) -> None:
        function = self.functions[-1] if self.functions else ""
        provider = bool(self.classes) and "QgsProcessingProvider" in {_name(b) for b in self.classes[-1].bases}
        if node.value is not None and _is_text(node.value) and \
                (function in RETURNED_TEXT or (provider and function == "name")):
            self._problem(node, f"{function}() returns text that is not translatable: wrap it in self.tr()")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if name == "tr" and len(node.args) == 1:
            class_name = self.classes[-1].name if self.classes else None
            method = isinstance(node.func, ast.Attribute) and _name(node.func.value) == "self"
            self._message(node.args[0], self.contexts.of(self.path, class_name, method))
        elif name == "translate" and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant):
            self._message(node.args[1], node.args[0].value)
        elif name in DATA_ARGUMENTS and len(node.args) > DATA_ARGUMENTS[name]:
            self._message(node.args[DATA_ARGUMENTS[name]], DEFAULT_CONTEXT)
        else:
            self._check_sink(node, name)
        self.generic_visit(node)

    def _message(self, node: ast.AST, context: str) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.messages.append(Message(context, node.value, self.file, node.lineno))
        elif isinstance(node, (ast.JoinedStr, ast.BinOp)) or \
                (isinstance(node, ast.Call) and _name(node.func) == "format"):
            self._problem(node, "text is formatted before it is translated, so no translation matches: translate "
                                "the literal with {placeholders} and call .format() on the result")

    def _check_sink(self, node: ast.Call, name: str) -> None:
        if name.startswith(("QgsProcessingParameter", "QgsProcessingOutput")):
            texts = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "description")]
        elif name in TEXT_SINKS or name.endswith(("Error", "Exception")):
            texts = [*node.args, *(k.value for k in node.keywords if k.arg in ("text", "title", "message"))]
        else:
            return
        for text in texts:
            if _is_text(text):
                self._problem(text, f"text shown by {name}() is not translatable: wrap it in tr()")

    def _problem(self, node: ast.AST, what: str) -> None:
        self.problems.append(Problem(self.file, node.lineno, what))


def scan(files: list[Path], root: Path = REPO_ROOT) -> tuple[list[Message], list[Problem]]:
    """The translatable messages of ``files`` and the user-visible strings in them that are not translatable."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in files}
    contexts = _Contexts(trees)
    messages: list[Message] = []
    problems: list[Problem] = []
    for path, tree in trees.items():
        scanner = _Scanner(path, contexts, root)
        scanner.visit(tree)
        messages += scanner.messages
        problems += scanner.problems
    return messages, problems


def unique_messages(messages: list[Message]) -> dict[tuple[str, str], list[Message]]:
    """Messages by (context, source), in the order they first appear."""
    found: dict[tuple[str, str], list[Message]] = {}
    for message in messages:
        found.setdefault((message.context, message.source), []).append(message)
    return found


def read_ts(path: Path) -> dict[tuple[str, str], str]:
    """The finished translations of a .ts file by (context, source); unfinished ones are left out."""
    translations: dict[tuple[str, str], str] = {}
    for context in ElementTree.parse(path).getroot().iter("context"):  # noqa: S314  (our own file)
        name = context.findtext("name", "")
        for message in context.iter("message"):
            translation = message.find("translation")
            if translation is not None and translation.get("type") not in ("unfinished", "obsolete") and \
                    translation.text:
                translations[(name, message.findtext("source", ""))] = translation.text
    return translations


def ts_language(path: Path) -> str:
    """fr for i18n/treeseg_fr.ts."""
    return path.stem.partition("_")[2]


def write_ts(path: Path, messages: list[Message], translations: dict[tuple[str, str], str]) -> int:
    """Write ``path`` with every message (its translation when known, else unfinished); the unfinished count."""
    root = ElementTree.Element("TS", version="2.1", language=ts_language(path), sourcelanguage="en")
    contexts: dict[str, ElementTree.Element] = {}
    unfinished = 0
    for (context, source), places in unique_messages(messages).items():
        if context not in contexts:
            contexts[context] = ElementTree.SubElement(root, "context")
            ElementTree.SubElement(contexts[context], "name").text = context
        element = ElementTree.SubElement(contexts[context], "message")
        for place in dict.fromkeys(place.file for place in places):
            ElementTree.SubElement(element, "location", filename=f"../{place}")  # no line: fewer merge conflicts
        ElementTree.SubElement(element, "source").text = source
        translation = ElementTree.SubElement(element, "translation")
        if (context, source) in translations:
            translation.text = translations[(context, source)]
        else:
            translation.set("type", "unfinished")
            unfinished += 1
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode")
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n{text}\n', encoding="utf-8")
    return unfinished


def lrelease() -> str:
    """Qt's lrelease (Debian: qttools5-dev-tools; Qt 6's works too)."""
    for candidate in ("lrelease", "lrelease-qt5", "/usr/lib/qt5/bin/lrelease", "/usr/lib/qt6/bin/lrelease"):
        found = shutil.which(candidate)
        if found:
            return found
    raise SystemExit("lrelease not found: install qttools5-dev-tools (Debian/Ubuntu) or Qt's Linguist tools.")


def compile_ts(ts_path: Path, qm_path: Path) -> None:
    """``ts_path`` -> ``qm_path`` with lrelease (translations marked unfinished are left out)."""
    subprocess.run([lrelease(), "-silent", str(ts_path), "-qm", str(qm_path)], check=True)  # nosec B603


def ts_files() -> list[Path]:
    return sorted(I18N_DIR.glob("treeseg_*.ts"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("update", "compile", "check", "add"))
    parser.add_argument("language", nargs="?", help="for add: fr, de, pt_BR...")
    arguments = parser.parse_args()
    messages, problems = scan(qgis_side_files())
    for problem in problems:
        print(problem)
    if arguments.command == "add":
        paths = [I18N_DIR / f"treeseg_{arguments.language}.ts"]
        I18N_DIR.mkdir(exist_ok=True)
    else:
        paths = ts_files()
    status = 1 if problems else 0
    for path in paths:
        if arguments.command == "compile":
            compile_ts(path, path.with_suffix(".qm"))
            continue
        known = read_ts(path) if path.exists() else {}
        wanted = set(unique_messages(messages))
        missing = [key for key in wanted if key not in known]
        if arguments.command == "check":
            for context, source in missing:
                print(f"{path.name}: no translation of [{context}] {source[:70]!r}")
            status |= bool(missing)
        else:
            print(f"{path.name}: {len(wanted)} messages, {write_ts(path, messages, known)} to translate")
    return status


if __name__ == "__main__":
    sys.exit(main())
