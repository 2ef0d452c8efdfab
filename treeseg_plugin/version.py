"""The plugin's version: the one reader of metadata.txt (engine statistics, provider, diagnostics, packaging)."""

from __future__ import annotations

import configparser
from pathlib import Path

METADATA = Path(__file__).resolve().parent.parent / "metadata.txt"


def plugin_version() -> str:
    """The ``version`` that metadata.txt declares, or "unknown" when the file is missing or has none."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(METADATA, encoding="utf-8")
    return metadata.get("general", "version", fallback="unknown")
