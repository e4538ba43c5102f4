"""Classification losses on raw class scores.

Every loss has the signature `loss(scores, y) -> (loss, dscores)`:
    scores: Class scores of shape (N, C).
    y: Integer labels of shape (N,), values in [0, C).
It returns the mean loss over the N samples and its gradient with respect to `scores`, of
shape (N, C) and the dtype of `scores`. Regularization is not part of these losses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy: mean of -log(e^{s_y} / sum_j e^{s_j})."""
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


LossFunction = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]

LOSSES: dict[str, LossFunction] = {"softmax": softmax_loss}
