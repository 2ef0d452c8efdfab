"""The batch command line: ``python -m treeseg_plugin INPUT... --output-folder OUT [options]``.

Fits one cluster model on the inputs (or applies ``--cluster-model``, or a classifier with ``--classifier``),
writes ``<name>_labels.tif`` per input and ``mosaic.vrt``; ``--workers N`` runs on a local Dask cluster of N
processes, ``--scheduler tcp://host:8786`` on an existing one. The Segment Trees options take the engine's
defaults (engine/jobs/segmentation.py). Exit status: 0 done, 1 an error (printed, with its fix), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import List, Optional, Sequence

from ..engine.errors import Canceled, EngineError
from ..engine.jobs.segmentation import DEVICES, PRECISIONS, STRIDES, SegmentationConfig

_DEFAULTS = SegmentationConfig("", "")


def _bands(text: str) -> List[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of band numbers, e.g. 1,2,3") \
            from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m treeseg_plugin",
        description="Segment many orthophotos with one DINOv3 cluster model, so every output shares its labels "
                    "and colours.")
    parser.add_argument("inputs", nargs="+", help="raster files, folders, glob patterns, .txt lists or VRTs")
    parser.add_argument("-o", "--output-folder", required=True, help="where the label rasters and mosaic.vrt go")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--cluster-model", help="apply this .tscm model instead of fitting one")
    models.add_argument("--classifier", help="apply this .tscc classifier (Classify from Examples) instead: class "
                                             "rasters, no clustering")
    parser.add_argument("--fit-rasters", type=int, default=0,
                        help="fit on this many inputs, spread evenly (default: all)")
    parser.add_argument("--window", type=int, default=0,
                        help="split rasters larger than this many pixels a side into windows (default: never)")
    parser.add_argument("--redo", action="store_true", help="make outputs that exist again")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=0, help="run on a local Dask cluster of N processes")
    where.add_argument("--scheduler", help="run on the Dask scheduler at this address (tcp://host:8786)")
    engine = parser.add_argument_group("Segment Trees settings")
    engine.add_argument("--model", default=_DEFAULTS.model, help="variant name or weights file")
    engine.add_argument("--device", default=_DEFAULTS.device, help=f"one of {', '.join(DEVICES)} or cuda:N")
    engine.add_argument("--precision", default=_DEFAULTS.precision, choices=PRECISIONS)
    engine.add_argument("--bands", type=_bands, help="R,G,B band numbers (or one band)")
    engine.add_argument("--stride", type=int, default=_DEFAULTS.stride, choices=STRIDES)
    for name in ("k", "k_min", "k_max", "seed", "tile_size", "overlap", "batch_size", "max_samples"):
        engine.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(_DEFAULTS, name))
    engine.add_argument("--elbow-threshold", type=float, default=_DEFAULTS.elbow_threshold)
    engine.add_argument("--working-resolution", type=float, default=_DEFAULTS.working_resolution,
                        help="encode at this many ground metres per pixel; outputs stay on each input's grid "
                             "(default 0: each input's own pixels)")
    engine.add_argument("--allow-download", action="store_true", help="download the weights if missing")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; returns the exit status."""
    from .run import BatchSettings, run_batch

    args = _parser().parse_args(argv)
    names = {f.name for f in dataclasses.fields(SegmentationConfig)}
    engine = dataclasses.replace(_DEFAULTS, **{k: v for k, v in vars(args).items() if k in names - {"cluster_model"}})
    settings = BatchSettings(args.inputs, args.output_folder, engine, args.cluster_model, args.classifier,
                             args.fit_rasters, args.window, args.scheduler, args.workers, args.redo)
    try:
        run_batch(settings)
    except (EngineError, Canceled) as error:
        print(f"treeseg: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("treeseg: interrupted; finished outputs are kept, run the same command again to go on.",
              file=sys.stderr)
        return 130
    return 0
