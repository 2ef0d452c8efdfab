"""The fit on the examples: their patch features, the grouped cross-validation, the classifier's scores.

The examples were rasterised onto the patch grid before the model loaded (engine/raster/examples.py); here the
cells that are not valid patches (more than half NoData) are left out, a class left without any cell is dropped
with a warning, and what remains is fitted: two classes or more, the logistic regression
(engine/classify/linear.py) after its cross-validation (engine/classify/validation.py); one class, the
similarity to its mean feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..encode.features import FeatureStore
from ..errors import EngineError
from ..progress import Progress, check_canceled
from ..raster.examples import Examples
from .linear import Linear, fit_logistic, fit_similarity
from .model import CLASSES, SIMILARITY
from .validation import check_examples, cross_validate, example_warnings


@dataclass(frozen=True)
class ExampleFit:
    """What the examples gave: the scores, the mode, the classes, examples and patches per class, the grouped
    cross-validation (None when not asked for, or with one class) and the warnings about the examples."""

    linear: Linear
    mode: str
    names: Tuple[str, ...]
    polygons: Dict[str, int]
    patches: Dict[str, int]
    accuracy: Optional[Dict[str, Any]]
    warnings: List[str]


def usable_examples(examples: Examples, cross_validation: bool, progress: Progress) -> Examples:
    """``examples`` without the classes no cell holds (a warning names them), checked for cross-validation."""
    examples, dropped = examples.compact()
    for name in dropped:
        progress.warning(f"Class '{name}' has no example on a valid part of the raster (or the extent): it is left "
                         "out. Draw its examples where the raster has data.")
    if not examples.names:
        raise EngineError("Every example lies over NoData (or masked pixels): there is nothing to fit. Draw the "
                          "examples where the raster has data.")
    check_examples(examples.per_class(), cross_validation)
    return examples


def fit_examples(store: FeatureStore, examples: Examples, regularisation: float, cross_validation: bool,
                 progress: Progress, report: Callable[[float], None]) -> ExampleFit:
    """Fit the classifier on the valid patches under ``examples``; ``report`` gets the share of the folds done."""
    examples = usable_examples(examples.masked(store.valid_flags()), cross_validation, progress)
    rows, cols = np.nonzero(examples.cells)
    group = examples.cells[rows, cols]
    y = examples.classes[group - 1]
    x = store.gather(rows, cols)
    names = examples.names
    polygons = examples.per_class()
    patches = {name: int(np.sum(y == i)) for i, name in enumerate(names)}
    counts = ", ".join(f"'{name}' {polygons[name]} ({patches[name]} patches)" for name in names)
    progress.info(f"Examples per class: {counts}.")
    if len(names) == 1:
        if cross_validation:
            progress.info("One class: the output is the similarity to its examples (0-100); there is no accuracy "
                          "to cross-validate.")
        return ExampleFit(fit_similarity(x), SIMILARITY, names, polygons, patches, None, [])
    linear = fit_logistic(x, y, len(names), regularisation)
    accuracy = None
    if cross_validation:
        accuracy = cross_validate(x, y, group, names, regularisation, linear,
                                  lambda done: _fold_done(progress, report, done))
    return ExampleFit(linear, CLASSES, names, polygons, patches, accuracy, example_warnings(polygons, patches))


def _fold_done(progress: Progress, report: Callable[[float], None], done: float) -> None:
    check_canceled(progress)
    report(done)
