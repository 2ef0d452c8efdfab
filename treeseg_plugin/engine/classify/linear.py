"""The classifier: multinomial logistic regression on the L2-normalised patch features, or with one class the
cosine similarity to the examples' mean feature.

Decisions:

* The loss is the class-balanced mean cross-entropy plus an L2 penalty on the weights (not the biases):
  ``Σ w_i·CE_i / Σ w_i + λ/2·‖W‖²`` with ``w_i = N / (C·n_{y_i})``, scikit-learn's "balanced" weights, so each
  class counts as much whatever its number of example patches. (scikit-learn's ``LogisticRegression(C=1/(N·λ),
  class_weight="balanced")`` minimises the same function.)
* Minimised in float64 with torch's L-BFGS (strong Wolfe line search) from zero weights (the cross-validation's
  folds from the whole fit's): no random start, so the same examples give the same classifier. The loss is
  strictly convex, so the minimum is unique.
* The weights are kept as float32, as the file stores them: a run that fits predicts with the classifier it saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

MAX_ITERATIONS = 500


@dataclass(frozen=True)
class Linear:
    """Scores ``x @ weights.T + bias`` [N, C]: class logits, or (one class) the cosine similarity."""

    weights: np.ndarray  # [C, D] float32
    bias: np.ndarray  # [C] float32

    def scores(self, x: np.ndarray) -> np.ndarray:
        """The scores of features ``x`` [N, D]."""
        return x @ self.weights.T + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class index (0-based) of each row of ``x``; ties go to the lower class."""
        return np.argmax(self.scores(x), axis=1)


def balanced_weights(y: np.ndarray, classes: int) -> np.ndarray:
    """``N / (C·n_{y_i})`` for each row: every class weighs the same in total."""
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    return len(y) / (classes * counts[y])


def fit_logistic(x: np.ndarray, y: np.ndarray, classes: int, regularisation: float,
                 start: Optional[Linear] = None) -> Linear:
    """The logistic regression of class indices ``y`` [N] (0..classes-1, each present) on ``x`` [N, D],
    minimised from ``start`` (zero weights when None; the minimum is the same, only the way there shorter)."""
    features = torch.from_numpy(np.asarray(x, dtype=np.float64))
    target = torch.from_numpy(np.asarray(y, dtype=np.int64))
    sample = torch.from_numpy(balanced_weights(y, classes))
    weights = torch.zeros((classes, x.shape[1]), dtype=torch.float64)
    bias = torch.zeros(classes, dtype=torch.float64)
    if start is not None:
        weights[:], bias[:] = torch.from_numpy(start.weights), torch.from_numpy(start.bias)
    weights.requires_grad_(True)
    bias.requires_grad_(True)
    optimiser = torch.optim.LBFGS([weights, bias], lr=1.0, max_iter=MAX_ITERATIONS, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        logits = features @ weights.T + bias
        cross_entropy = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        loss = (sample * cross_entropy).sum() / sample.sum() + regularisation / 2 * (weights ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return Linear(weights.detach().numpy().astype(np.float32), bias.detach().numpy().astype(np.float32))


def fit_similarity(x: np.ndarray) -> Linear:
    """One class: the score of a feature is its dot product with the examples' unit mean feature, the cosine
    similarity for a unit feature."""
    mean = np.asarray(x, dtype=np.float64).mean(axis=0)
    unit = mean / (np.linalg.norm(mean) or 1.0)
    return Linear(unit[None, :].astype(np.float32), np.zeros(1, dtype=np.float32))
