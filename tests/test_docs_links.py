"""Every relative link in the README and docs/ leads somewhere: the file exists and, for a link with
``#anchor``, the file has a heading whose GitHub anchor that is (lower case, punctuation dropped, spaces to
hyphens). The README's split into docs/ moved many sections; a reader who follows a dead link is lost."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*)$", text, re.M)}


def relative_links(page: Path) -> list:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text)
            if not re.match(r"[a-z]+:", target) and not target.startswith("mailto")]


def test_the_anchor_rule_is_githubs():
    assert anchor("## 8. Crowns against NEON annotations".lstrip("# ")) == "8-crowns-against-neon-annotations"
    assert anchor("Fit once, apply everywhere") == "fit-once-apply-everywhere"
    assert anchor("What stops a run (before anything is written)") == "what-stops-a-run-before-anything-is-written"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_and_heading(page):
    dead = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            dead.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            dead.append(f"{target}: no heading with that anchor")
    assert not dead, dead
