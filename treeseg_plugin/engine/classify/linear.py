"""The classifier: multinomial logistic regression on the L2-normalised patch features, or with one class the
cosine similarity to the examples' mean feature.

Decisions:

* The loss is the class-balanced mean cross-entropy plus an L2 penalty on the weights (not the biases):
  ``Σ w_i·CE_i / Σ w_i + λ/2·‖W‖²`` with ``w_i = N / (C·n_{y_i})``, scikit-learn's "balanced" weights, so each
  class counts as much whatever its number of example patches. (scikit-learn's ``LogisticRegression(C=1/(N·λ),
  class_weight="balanced")`` minimises the same function.)
* Minimised in float64 numpy by L-BFGS with a backtracking line search (no torch.optim: its first use imports
  torch's compiler, seconds on a CPU), from zero weights (the cross-validation's folds from the whole fit's): no
  random start, so the same examples give the same classifier. The loss is strictly convex, so the minimum is
  unique.
* The weights are kept as float32, as the file stores them: a run that fits predicts with the classifier it saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

MAX_ITERATIONS = 1000
HISTORY = 20
TOLERANCE = 1e-9


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


def _loss_and_gradient(theta: np.ndarray, x: np.ndarray, onehot: np.ndarray, sample: np.ndarray,
                       regularisation: float) -> Tuple[float, np.ndarray]:
    """The loss (module docstring) at ``theta`` (the weights [C, D] then the biases [C], flat) and its gradient."""
    classes, dim = onehot.shape[1], x.shape[1]
    weights, bias = theta[:classes * dim].reshape(classes, dim), theta[classes * dim:]
    logits = x @ weights.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    share = sample / sample.sum()
    loss = -float(share @ (onehot * log_p).sum(axis=1)) + regularisation / 2 * float((weights * weights).sum())
    residual = (np.exp(log_p) - onehot) * share[:, None]
    gradient = np.concatenate([(residual.T @ x + regularisation * weights).ravel(), residual.sum(axis=0)])
    return loss, gradient


def _two_loop(gradient: np.ndarray, history: List[Tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """L-BFGS's descent direction: the inverse-Hessian estimate of ``history`` (steps, gradient changes) times
    minus the gradient."""
    q = gradient.copy()
    factors = []
    for step, change in reversed(history):
        rho = 1.0 / float(change @ step)
        alpha = rho * float(step @ q)
        q -= alpha * change
        factors.append((rho, alpha, step, change))
    if history:
        step, change = history[-1]
        q *= float(step @ change) / float(change @ change)
    for rho, alpha, step, change in reversed(factors):
        q += step * (alpha - rho * float(change @ q))
    return -q


def _minimise(function: Callable[[np.ndarray], Tuple[float, np.ndarray]], theta: np.ndarray) -> np.ndarray:
    """L-BFGS (:data:`HISTORY` pairs) with a backtracking (Armijo) line search, until the largest gradient
    component is below :data:`TOLERANCE` or :data:`MAX_ITERATIONS` steps."""
    loss, gradient = function(theta)
    history: List[Tuple[np.ndarray, np.ndarray]] = []
    for _ in range(MAX_ITERATIONS):
        if np.abs(gradient).max() < TOLERANCE:
            break
        direction = _two_loop(gradient, history)
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction (rounding): start again from the gradient
            history.clear()
            direction, slope = -gradient, -float(gradient @ gradient)
        size = 1.0 if history else 1.0 / max(1.0, float(np.abs(gradient).max()))
        while True:
            candidate = theta + size * direction
            new_loss, new_gradient = function(candidate)
            if new_loss <= loss + 1e-4 * size * slope or size < 1e-20:
                break
            size /= 2
        change = new_gradient - gradient
        if float(change @ (candidate - theta)) > 1e-16:
            history = [*history, (candidate - theta, change)][-HISTORY:]
        theta, loss, gradient = candidate, new_loss, new_gradient
    return theta


def fit_logistic(x: np.ndarray, y: np.ndarray, classes: int, regularisation: float,
                 start: Optional[Linear] = None) -> Linear:
    """The logistic regression of class indices ``y`` [N] (0..classes-1, each present) on ``x`` [N, D],
    minimised from ``start`` (zero weights when None; the minimum is the same, only the way there shorter)."""
    features = np.asarray(x, dtype=np.float64)
    onehot = np.eye(classes)[y]
    sample = balanced_weights(y, classes)
    theta = np.zeros(classes * (features.shape[1] + 1)) if start is None else \
        np.concatenate([start.weights.astype(np.float64).ravel(), start.bias.astype(np.float64)])
    theta = _minimise(lambda t: _loss_and_gradient(t, features, onehot, sample, regularisation), theta)
    split = classes * features.shape[1]
    return Linear(theta[:split].reshape(classes, -1).astype(np.float32), theta[split:].astype(np.float32))


def fit_similarity(x: np.ndarray) -> Linear:
    """One class: the score of a feature is its dot product with the examples' unit mean feature, the cosine
    similarity for a unit feature."""
    mean = np.asarray(x, dtype=np.float64).mean(axis=0)
    unit = mean / (np.linalg.norm(mean) or 1.0)
    return Linear(unit[None, :].astype(np.float32), np.zeros(1, dtype=np.float32))
