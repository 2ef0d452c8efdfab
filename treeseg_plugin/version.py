"""The plugin's metadata: the one reader of metadata.txt (version for engine statistics, provider, diagnostics,
packaging; homepage for the algorithms' help links)."""

from __future__ import annotations

import configparser
from pathlib import Path

METADATA = Path(__file__).resolve().parent.parent / "metadata.txt"


def metadata_field(name: str, fallback: str = "unknown") -> str:
    """The value of ``name`` in metadata.txt's [general] section, or ``fallback`` when the file or field is
    missing."""
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(METADATA, encoding="utf-8")
    return metadata.get("general", name, fallback=fallback)


def plugin_version() -> str:
    """The ``version`` that metadata.txt declares, or "unknown" when the file is missing or has none."""
    return metadata_field("version")


def help_url(section: str) -> str:
    """The link to ``section`` (a README heading's anchor) of the ``homepage`` that metadata.txt declares."""
    return f"{metadata_field('homepage', '').rstrip('/')}#{section}"
