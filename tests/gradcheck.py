"""Centred-difference gradients and cs231n's relative error, for gradient checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred differences of f() with respect to x; perturbs x in place and restores it."""
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = f()
        x[ix] = old - h
        f_minus = f()
        x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
    return grad


# Centred differences carry roundoff of about eps * |f| / h = 1e-16 / 1e-5 = 1e-11. Where the
# true gradient is exactly 0, cs231n's formula divides that noise by its 1e-8 floor and reports
# an error of 1e-3; differences below this absolute tolerance count as agreement.
_ROUNDOFF = 1e-9


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """cs231n's max |a - b| / max(1e-8, |a| + |b|), ignoring differences at roundoff level."""
    diff = np.abs(a - b)
    diff[diff < _ROUNDOFF] = 0.0
    return float(np.max(diff / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def float64_model(model, n=6, d=5, c=4, seed=0):
    """Fit one epoch to create weights_, then switch to float64 weights far from L1's kink."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.integers(0, c, n)
    model.partial_fit(X.astype(np.float32), y, classes=np.arange(c))
    for name, value in model.weights_.items():
        sign = rng.choice([-1.0, 1.0], value.shape)
        model.weights_[name] = sign * rng.uniform(0.3, 1.0, value.shape)
    return X, y
