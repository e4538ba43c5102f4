"""Classification losses on raw class scores.

Every loss has the signature `loss(scores, y) -> (loss, dscores)`:
    scores: Class scores of shape (N, C).
    y: Integer labels of shape (N,), values in [0, C).
It returns the mean loss over the N samples and its gradient with respect to `scores`, of
shape (N, C) and the dtype of `scores`. Regularization is not part of these losses.

    softmax          -log(e^{s_y} / sum_j e^{s_j})
    hinge            max(0, 1 + max_{j != y} s_j - s_y)          (Crammer-Singer, the assignments')
    weston_watkins   sum_{j != y} max(0, 1 + s_j - s_y)
    perceptron       max(0, max_{j != y} s_j - s_y)              (Crammer-Singer with margin 0)

At a kink (a margin exactly 0) the hinge losses use the subgradient 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy."""
    n = scores.shape[0]
    rows = np.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)  # exp never overflows
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    loss = float(np.log(sums[:, 0]).mean() - shifted[rows, y].mean())
    dscores = exp / sums
    dscores[rows, y] -= 1
    dscores /= n
    return loss, dscores


def _crammer_singer(scores: np.ndarray, y: np.ndarray, margin: float) -> tuple[float, np.ndarray]:
    """max(0, margin + max_{j != y} s_j - s_y); the gradient flows to the rival and the truth."""
    n = scores.shape[0]
    rows = np.arange(n)
    correct = scores[rows, y]
    rivals = scores.copy()
    rivals[rows, y] = -np.inf
    rival = rivals.argmax(axis=1)
    losses = margin + rivals[rows, rival] - correct
    active = losses > 0
    dscores = np.zeros_like(scores)
    weight = active.astype(scores.dtype) / n
    dscores[rows, rival] += weight
    dscores[rows, y] -= weight
    return float(np.where(active, losses, 0).mean()), dscores


def hinge_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass hinge loss in the Crammer-Singer form used by the assignments."""
    return _crammer_singer(scores, y, 1.0)


def perceptron_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The multiclass perceptron criterion: a step only for misclassified samples."""
    return _crammer_singer(scores, y, 0.0)


def weston_watkins_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass hinge loss summed over every wrong class (cs231n's SVM loss)."""
    n = scores.shape[0]
    rows = np.arange(n)
    margins = scores - scores[rows, y][:, None] + 1
    margins[rows, y] = 0
    active = (margins > 0).astype(scores.dtype)
    dscores = active
    dscores[rows, y] = -active.sum(axis=1)
    dscores /= n
    return float(np.maximum(margins, 0).sum() / n), dscores


LossFunction = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]

LOSSES: dict[str, LossFunction] = {
    "softmax": softmax_loss,
    "hinge": hinge_loss,
    "weston_watkins": weston_watkins_loss,
    "perceptron": perceptron_loss,
}
