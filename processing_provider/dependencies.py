"""Checks that the engine's Python dependencies import, before the engine itself is imported."""

from __future__ import annotations

import importlib

# What the engine imports at run time (numpy and GDAL come with QGIS). scikit-learn is not among them:
# the engine has its own k-means, and scikit-learn is only a test-time reference (requirements/dev.txt).
REQUIRED_MODULES = {
    "torch": "torch",
    "safetensors": "safetensors",
    "huggingface_hub": "huggingface_hub",
}

INSTALL_HINT = (
    "Install them with TreeSeg's own installer: restart the QGIS desktop and click 'Install...' in the "
    "TreeSeg message bar; it puts them into a folder of the plugin's and keeps QGIS's numpy as it is. "
    "Never replace or upgrade the numpy that QGIS came with. For other routes (Debian's packages, an "
    "offline wheel folder) see the TreeSeg README, section 'Installing the dependencies'."
)


def missing_dependencies() -> str:
    """Empty when every dependency imports; otherwise a message naming each failure and the fix."""
    problems = []
    for module, package in REQUIRED_MODULES.items():
        try:
            importlib.import_module(module)
        except Exception as error:  # a broken install raises OSError or RuntimeError, not only ImportError
            problems.append(f"{package} ({type(error).__name__}: {error})")
    if not problems:
        return ""
    return f"TreeSeg cannot run: these Python packages do not import: {'; '.join(problems)}. {INSTALL_HINT}"
