"""Checks that the engine's Python dependencies import, before the engine itself is imported."""

from __future__ import annotations

import importlib

REQUIRED_MODULES = {
    "torch": "torch",
    "sklearn": "scikit-learn",
    "safetensors": "safetensors",
    "huggingface_hub": "huggingface_hub",
}

INSTALL_HINT = (
    "Install them into QGIS's Python (keep numpy below 2 on QGIS 3.x), e.g. "
    "'python3 -m pip install torch scikit-learn safetensors huggingface_hub' from the OSGeo4W shell or a "
    "terminal; see the TreeSeg README, section 'Installing the dependencies'."
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
