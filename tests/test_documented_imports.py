"""Every import of TreeSeg that the documentation shows works as shown.

The lines are collected from the docstrings of all modules under treeseg_plugin/ and processing_provider/
and from the code blocks of README.md and docs/*.md; each runs in a fresh interpreter of this
environment with the repository on PYTHONPATH, as a user's script would run it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
IMPORT = re.compile(r"^\s*(?:>>> )?((?:from treeseg_plugin[\w.]* import|import treeseg_plugin)\b.*)$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _statements(lines: List[str]) -> Iterator[Tuple[int, str]]:
    """(line number, statement) of each TreeSeg import among ``lines``, parenthesised ones joined."""
    for number, line in enumerate(lines, 1):
        match = IMPORT.match(line)
        if not match:
            continue
        statement = match.group(1).split("  #")[0].strip()
        following = iter(lines[number:])
        while statement.count("(") > statement.count(")"):
            statement += " " + next(following).strip()
        yield number, statement


def _docstrings(path: Path) -> Iterator[Tuple[int, str]]:
    """(first line, text) of the module's, classes' and functions' docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                yield body[0].lineno, body[0].value.value


def _code_blocks(path: Path) -> Iterator[List[str]]:
    """The lines of each fenced code block of a Markdown file."""
    block = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            if block is not None:
                yield block
            block = [] if block is None else None
        elif block is not None:
            block.append(line)


def documented_imports() -> List[Tuple[str, str]]:
    """(where, statement) of every TreeSeg import shown in docstrings and Markdown code blocks."""
    found = []
    for package in ("treeseg_plugin", "processing_provider"):
        for path in sorted((REPO / package).rglob("*.py")):
            for first, text in _docstrings(path):
                for number, statement in _statements(text.splitlines()):
                    found.append((f"{path.relative_to(REPO)}:{first + number - 1}", statement))
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for index, block in enumerate(_code_blocks(path), 1):
            for _, statement in _statements(block):
                found.append((f"{path.relative_to(REPO)} block {index}", statement))
    return found


DOCUMENTED = documented_imports()


def test_the_collection_finds_docstrings_and_markdown():
    """The known examples are found, so that a broken collector cannot pass by finding nothing."""
    statements = {statement for _, statement in DOCUMENTED}
    assert "from treeseg_plugin.dinov3.chmv2 import load_canopy_height_model" in statements
    assert "from treeseg_plugin.dinov3 import load_backbone" in statements
    assert any(where.startswith("docs/") for where, _ in DOCUMENTED)
    assert any(where.endswith(".py:3") for where, _ in DOCUMENTED)


@pytest.mark.parametrize(("where", "statement"), DOCUMENTED, ids=[f"{w}: {s}" for w, s in DOCUMENTED])
def test_documented_import_runs(where, statement):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", statement], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{where}: `{statement}` fails:\n{done.stderr[-2000:]}"
