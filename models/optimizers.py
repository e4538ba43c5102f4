"""Optimizers: `step(params, grads)` updates `params` in place; `grads` has the same keys."""

from __future__ import annotations

import numpy as np


class SGD:
    """Plain mini-batch stochastic gradient descent: p <- p - learning_rate * g."""

    def __init__(self, learning_rate: float = 1e-2) -> None:
        self.learning_rate = learning_rate

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, grad in grads.items():
            params[name] -= self.learning_rate * grad
