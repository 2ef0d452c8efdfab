"""How well the classifier generalises: cross-validation grouped by example polygon, never by pixel.

A patch next to a training patch of the same polygon looks almost the same, so leaving out single patches
measures how well the classifier remembers the examples, not how well it classifies the rest of the raster. Each
fold leaves out whole examples (polygons or points), fits on the others with the run's settings
(:func:`.linear.fit_logistic`) and predicts the left-out examples' patches. Decisions:

* Up to :data:`MAX_LEAVE_ONE_OUT` examples: leave-one-polygon-out (one fold per example). More: grouped
  :data:`FOLDS`-fold, the examples of each class dealt to the folds in turn (in feature order), so every fold
  holds each class's examples in proportion and every class keeps an example in every fold's training set.
* Every class needs two examples or more (else its left-out example has no class to be fitted against): checked
  before anything is encoded (:func:`check_examples`).
* The scores count patches: the confusion matrix ``[true, predicted]`` over all folds, the overall accuracy
  (its trace over its sum), per class precision, recall and F1 (None where undefined, e.g. a class never
  predicted).
* Warnings: a class with fewer than :data:`FEW_EXAMPLES` examples (its scores rest on too few polygons), and
  example patches far from balanced (the largest class more than :data:`UNBALANCED_RATIO` times the smallest;
  the fit weighs classes equally, but the scores of the small class are uncertain).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import EngineError
from .linear import Linear, fit_logistic

MAX_LEAVE_ONE_OUT = 30
FOLDS = 10
FEW_EXAMPLES = 3
UNBALANCED_RATIO = 5.0


def check_examples(per_class: Dict[str, int], cross_validation: bool) -> None:
    """Refuse cross-validation when a class has a single example (``per_class``: examples per class name)."""
    if not cross_validation or len(per_class) < 2:
        return
    single = [name for name, count in per_class.items() if count < 2]
    if single:
        raise EngineError(f"Cross-validation leaves out whole examples, but class(es) {', '.join(single)} have a "
                          "single example inside the raster. Draw at least two (better three or more) polygons per "
                          "class, or turn cross-validation off.")


def folds(groups: np.ndarray, classes: np.ndarray) -> List[np.ndarray]:
    """The held-out example numbers of each fold; ``groups`` the example numbers, ``classes`` each one's class."""
    if len(groups) <= MAX_LEAVE_ONE_OUT:
        return [np.array([g]) for g in groups]
    assignment = np.empty(len(groups), dtype=np.int64)
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        assignment[members] = np.arange(len(members)) % FOLDS
    return [groups[assignment == f] for f in range(FOLDS) if np.any(assignment == f)]


def cross_validate(x: np.ndarray, y: np.ndarray, group: np.ndarray, names: Sequence[str], regularisation: float,
                   whole: Linear, on_fold: Callable[[float], None]) -> Dict[str, Any]:
    """The grouped cross-validation of patches ``x`` [N, D] of class ``y`` [N] from example ``group`` [N]; each
    fold's fit starts from ``whole``, the fit on every example; ``on_fold`` gets the share of folds done (and may
    raise Canceled). Returns the accuracy section of the result (jobs/results.py: ClassifyResult.accuracy)."""
    groups = np.unique(group)
    group_class = np.array([y[group == g][0] for g in groups])
    plan = folds(groups, group_class)
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    for number, held_out in enumerate(plan, start=1):
        test = np.isin(group, held_out)
        model = fit_logistic(x[~test], y[~test], len(names), regularisation, whole)
        np.add.at(confusion, (y[test], model.predict(x[test])), 1)
        on_fold(number / len(plan))
    scheme = "leave-one-polygon-out" if len(plan) == len(groups) else f"grouped {len(plan)}-fold"
    return {"scheme": scheme, "folds": len(plan), **scores(confusion, names, group_class)}


def _ratio(numerator: int, denominator: int) -> Optional[float]:
    return numerator / denominator if denominator else None


def scores(confusion: np.ndarray, names: Sequence[str], group_class: np.ndarray) -> Dict[str, Any]:
    """Overall accuracy, per class precision/recall/F1 with its examples and patches, the confusion matrix."""
    per_class = []
    for c, name in enumerate(names):
        hit = int(confusion[c, c])
        precision, recall = _ratio(hit, int(confusion[:, c].sum())), _ratio(hit, int(confusion[c].sum()))
        f1 = None if precision is None or recall is None or precision + recall == 0 else \
            2 * precision * recall / (precision + recall)
        per_class.append({"class": name, "precision": precision, "recall": recall, "f1": f1,
                          "polygons": int(np.sum(group_class == c)), "patches": int(confusion[c].sum())})
    return {"overall_accuracy": _ratio(int(np.trace(confusion)), int(confusion.sum())), "per_class": per_class,
            "confusion": confusion.tolist()}


def example_warnings(polygons: Dict[str, int], patches: Dict[str, int]) -> List[str]:
    """Warnings about too few examples per class and unbalanced example patches."""
    warnings = [f"Class '{name}' has {count} example(s): its accuracy rests on too few polygons. Draw at least "
                f"{FEW_EXAMPLES} per class, spread over the raster." for name, count in polygons.items()
                if count < FEW_EXAMPLES]
    sizes = [count for count in patches.values() if count]
    if len(sizes) > 1 and max(sizes) > UNBALANCED_RATIO * min(sizes):
        large, small = max(patches, key=patches.get), min(patches, key=patches.get)
        warnings.append(f"The examples are far from balanced: class '{large}' covers {patches[large]} patches, "
                        f"class '{small}' {patches[small]}. The fit weighs the classes equally, but the small "
                        "class's scores are uncertain; draw more or larger examples of it.")
    return warnings


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def accuracy_text(accuracy: Dict[str, Any]) -> str:
    """The cross-validation for the log: the overall accuracy, the per-class table and the confusion matrix."""
    rows = accuracy["per_class"]
    width = max(len(row["class"]) for row in rows) + 2
    lines = [f"Accuracy, {accuracy['scheme']} ({accuracy['folds']} folds, grouped by example, never by pixel): "
             f"{_percent(accuracy['overall_accuracy'])} of the example patches.",
             f"{'class':<{width}}precision  recall     F1         polygons  patches"]
    for row in rows:
        lines.append(f"{row['class']:<{width}}{_percent(row['precision']):<11}{_percent(row['recall']):<11}"
                     f"{_percent(row['f1']):<11}{row['polygons']:<10}{row['patches']}")
    lines.append("Confusion matrix (rows: the examples' class, columns: predicted):")
    lines.append(" " * width + " ".join(f"{row['class'][:8]:>8}" for row in rows))
    for row, counts in zip(rows, accuracy["confusion"]):
        lines.append(f"{row['class']:<{width}}" + " ".join(f"{count:>8}" for count in counts))
    return "\n".join(lines)
