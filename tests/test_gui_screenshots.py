"""scripts/screenshots.py renders the README's pictures from the current code: non-empty, varied, small PNGs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from qgis.PyQt.QtGui import QImage

REPO_ROOT = Path(__file__).resolve().parent.parent
PICTURES = {  # name: minimum size in pixels
    "segment-trees-dialog.png": (900, 600),
    "weights-manager.png": (900, 400),
    "settings.png": (600, 300),
    "getting-started.png": (800, 500),
    "result.png": (600, 300),
    "layers.png": (600, 300),
}

pytestmark = pytest.mark.slow


def distinct_colours(image: QImage, step: int = 4) -> int:
    return len({image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)})


def test_screenshot_script_writes_the_readme_pictures(qgis_app, tmp_path):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "screenshots.py"), "--output-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(PICTURES)
    for name, (min_width, min_height) in PICTURES.items():
        path = tmp_path / name
        assert 10_000 < path.stat().st_size < 300_000, name
        image = QImage(str(path))
        assert not image.isNull(), name
        assert image.width() >= min_width and image.height() >= min_height, name
        assert distinct_colours(image) > 20, name
    result = QImage(str(tmp_path / "result.png"))
    assert distinct_colours(result, step=2) > 1000  # the orthophoto, not just the flat label colours


def test_the_documentation_shows_the_pictures_with_the_random_weights_caveat():
    """The README shows the result and the first start; the user guide every picture; both say "random weights"."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    guide = (REPO_ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    for name in ("layers.png", "getting-started.png"):
        assert f"](docs/images/{name})" in readme
    for name in PICTURES:
        assert f"](images/{name})" in guide
        assert (REPO_ROOT / "docs" / "images" / name).is_file()
    assert "random weights" in readme.lower() and "random weights" in guide.lower()
