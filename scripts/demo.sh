#!/usr/bin/env bash
# Set up (idempotent), then run Segment Trees on the bundled sample with qgis_process.bin.
# Weights: demo.sh [--weights FILE], or TREESEG_WEIGHTS, or the Hugging Face cache (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
