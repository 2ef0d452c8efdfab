"""Build the installable plugin zip: dist/treeseg-<version>.zip holding the folder treeseg/.

Only what QGIS needs goes in: metadata, licence, icon, README, the two Python packages and the compiled
translations (i18n/*.qm, committed beside their .ts sources), without tests, scripts, caches or development files.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from treeseg_plugin.version import plugin_version  # noqa: E402  (the repository root is on the path now)

PLUGIN_FOLDER = "treeseg"
TOP_LEVEL_FILES = ("__init__.py", "metadata.txt", "LICENSE", "README.md", "icon.svg")
PACKAGES = ("treeseg_plugin", "processing_provider")
TRANSLATIONS = "i18n"  # only the .qm files QGIS loads; the .ts sources stay in the repository
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej"}


def plugin_files() -> list[Path]:
    """Repository-relative paths of every file that belongs in the zip, sorted."""
    files = [Path(name) for name in TOP_LEVEL_FILES]
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*")):
            relative = path.relative_to(REPO_ROOT)
            if path.is_file() and not EXCLUDED_PARTS & set(relative.parts) and path.suffix not in EXCLUDED_SUFFIXES:
                files.append(relative)
    files += [path.relative_to(REPO_ROOT) for path in (REPO_ROOT / TRANSLATIONS).glob("*.qm")]
    return sorted(files)


def build(output_dir: Path) -> Path:
    """Write the zip (with fixed timestamps, so the same tree gives the same bytes) and return its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{PLUGIN_FOLDER}-{plugin_version()}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in plugin_files():
            info = zipfile.ZipInfo(f"{PLUGIN_FOLDER}/{relative.as_posix()}", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, (REPO_ROOT / relative).read_bytes())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist")
    print(build(parser.parse_args().output_dir))


if __name__ == "__main__":
    main()
