"""Optimizers: `step(params, grads)` updates `params` in place; `grads` has the same keys.

`step` may overwrite `grads` (they are the batch's temporaries): scaling a gradient in place
saves allocating and streaming a temporary as large as the weights on every batch.

State (velocities, moments) is keyed by parameter name and created on first use. The learning
rate is a plain attribute that the training loop sets from the schedule every epoch.
"""

from __future__ import annotations

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


class SGD:
    """SGD; momentum > 0 adds a velocity term, nesterov=True uses the look-ahead update.

    v <- momentum * v - lr * g, then p <- p + v (classical) or
    p <- p - momentum * v_old + (1 + momentum) * v (Nesterov, as in cs231n's notes).
    """

    def __init__(
        self, learning_rate: float = 1e-2, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self._velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        lr, mu = self.learning_rate, self.momentum
        for name, grad in grads.items():
            param = params[name]
            if mu == 0.0:
                grad *= lr
                param -= grad
                continue
            v = self._velocity.get(name)
            if v is None:
                v = self._velocity[name] = np.zeros_like(param)
            if self.nesterov:
                param -= mu * v  # undo the old look-ahead ...
                v *= mu
                grad *= lr
                v -= grad
                param += (1 + mu) * v  # ... and take the new one
            else:
                v *= mu
                grad *= lr
                v -= grad
                param += v


class Adam:
    """Adam with bias correction (Kingma & Ba): beta1 0.9, beta2 0.999, eps 1e-8."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self._t = 0
        self._m: dict[str, np.ndarray] = {}
        self._v: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self._t += 1
        b1, b2 = self.beta1, self.beta2
        # Bias corrections folded into the step size and epsilon (one pass less per array).
        c1, c2 = 1 - b1**self._t, 1 - b2**self._t
        step = self.learning_rate * np.sqrt(c2) / c1
        eps = self.eps * np.sqrt(c2)
        for name, grad in grads.items():
            m = self._m.get(name)
            if m is None:
                m = self._m[name] = np.zeros_like(grad)
                self._v[name] = np.zeros_like(grad)
            v = self._v[name]
            m *= b1
            m += (1 - b1) * grad
            v *= b2
            v += (1 - b2) * (grad * grad)
            params[name] -= step * m / (np.sqrt(v) + eps)


def make_optimizer(name: str, learning_rate: float, momentum: float) -> SGD | Adam:
    """`optimizer` and `momentum` as a study file names them."""
    if name == "sgd":
        return SGD(learning_rate)
    if name == "momentum":
        return SGD(learning_rate, momentum=momentum)
    if name == "nesterov":
        return SGD(learning_rate, momentum=momentum, nesterov=True)
    if name == "adam":
        return Adam(learning_rate)
    raise ValueError(f"optimizer: got {name!r}; allowed: {', '.join(OPTIMIZERS)}")
