#!/usr/bin/env bash
# Set up (idempotent), run the static checks that plugins.qgis.org and our reviewers run (ruff on the
# repository, bandit on the plugin code), then the whole test suite: unit, QGIS, qgis_process, packaging.
# Pytest arguments (e.g. one test file) select tests; the static checks always run first (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check --no-cache .
.venv/bin/python -m bandit -q -r -ll __init__.py treeseg_plugin processing_provider
exec .venv/bin/python -m pytest "$@"
