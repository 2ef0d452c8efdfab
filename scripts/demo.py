"""Run Segment Trees on the bundled sample through the real qgis_process.bin and print what it produced.

Weights, in this order: --weights, $TREESEG_WEIGHTS, the Hugging Face cache (ViT-S/16 LVD-1689M).
DINOv3 weights are gated, so a fresh machine has none: then, and only because this is a demo, a
random-weight ViT-S/16 checkpoint is generated under build/demo/ with NOT-PRETRAINED in its name, and the
run is announced as a pipeline check whose clusters mean little. The plugin itself never does this.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "sample" / "OSBS_029.tif"
OUT_DIR = REPO_ROOT / "build" / "demo"
RANDOM_WEIGHTS = OUT_DIR / "dinov3_vits16_RANDOM-NOT-PRETRAINED.pth"
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]


def find_weights(requested: str | None) -> tuple[str, bool]:
    """(weights source, is_pretrained)."""
    from treeseg_plugin.dinov3 import WeightsNotFoundError
    from treeseg_plugin.dinov3.weights import resolve_weights

    if requested:
        return requested, True
    try:
        return str(resolve_weights("vits16").path), True
    except WeightsNotFoundError as error:
        print(f"No pretrained DINOv3 weights here:\n  {error}\n")
    from checkpoint_factory import make_state_dict, write_meta_pth

    if not RANDOM_WEIGHTS.exists():
        write_meta_pth(RANDOM_WEIGHTS, make_state_dict("vits16", seed=0))
    banner = "!" * 100
    print(f"{banner}\nDEMO ONLY: using a RANDOM-WEIGHT ViT-S/16 ({RANDOM_WEIGHTS.name}) to show the pipeline.\n"
          "Its clusters follow colour and texture only. Pass --weights or set TREESEG_WEIGHTS for real results.\n"
          f"{banner}")
    return str(RANDOM_WEIGHTS), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default=os.environ.get("TREESEG_WEIGHTS"), help=".pth/.safetensors file")
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    weights, pretrained = find_weights(args.weights)
    output, report = OUT_DIR / "OSBS_029_labels.tif", OUT_DIR / "OSBS_029_report.html"

    with tempfile.TemporaryDirectory(prefix="treeseg-demo-") as scratch:
        plugins = Path(scratch) / "plugins"
        plugins.mkdir()
        (plugins / "treeseg").symlink_to(REPO_ROOT, target_is_directory=True)
        env = dict(os.environ, HOME=scratch, QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen",
                   PYTHONPATH=sysconfig.get_paths()["purelib"])
        qgis_process = "qgis_process.bin"
        subprocess.run([qgis_process, "plugins", "enable", "treeseg"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        command = [qgis_process, "--json", "run", "treeseg:segmenttrees", "--", f"INPUT={SAMPLE}",
                   f"WEIGHTS={weights}", f"OUTPUT={output}", f"STATS={report}"]
        print("$", " ".join(command))
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"Segment Trees failed:\n{done.stdout}\n{done.stderr}")
    payload = json.loads(done.stdout[done.stdout.index("{"):])
    log = payload.get("log", {}).get("info", [])
    print("\n".join(log) if isinstance(log, list) else str(log))
    print(f"\nLabels: {output} (style: {output.with_suffix('.qml')})\nReport: {report}\n"
          f"Chosen K: {payload['results']['CHOSEN_K']}"
          + ("" if pretrained else "   (random weights: a pipeline check, not a segmentation)"))


if __name__ == "__main__":
    main()
