"""``python -m treeseg_plugin``: the batch command (treeseg_plugin/batch/cli.py)."""

import sys

from .batch.cli import main

sys.exit(main())
