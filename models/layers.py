"""Layers as pure function pairs (cs231n): `<name>_forward(...) -> (out, cache)` and
`<name>_backward(dout, cache) -> gradients`, named d<input>. Shapes: N samples, D inputs,
H outputs. Every function keeps the dtype of its inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = x @ w + b; x (N, D), w (D, H), b (H,) -> out (N, H)."""
    return x @ w + b, (x, w)


def affine_backward(
    dout: np.ndarray, cache: tuple, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx, dw, db); dx is skipped (None) for the first layer, whose input needs no gradient."""
    x, w = cache
    dx = dout @ w.T if need_dx else None
    return dx, x.T @ dout, dout.sum(axis=0)


def relu_forward(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.maximum(a, 0)
    return out, out


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return dout * (out > 0)


def sigmoid_forward(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # exp(-a) overflows to inf for very negative a, which gives the right limit 0.
    with np.errstate(over="ignore"):
        out = 1 / (1 + np.exp(-a))
    return out, out


def sigmoid_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return dout * out * (1 - out)


def tanh_forward(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.tanh(a)
    return out, out


def tanh_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    return dout * (1 - out * out)


Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Backward = Callable[[np.ndarray, np.ndarray], np.ndarray]

ACTIVATIONS: dict[str, tuple[Forward, Backward]] = {
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}


def dropout_forward(
    h: np.ndarray, p: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Inverted dropout: drop each unit with probability p, scale survivors by 1 / (1 - p).

    The expected activation is unchanged, so nothing is rescaled at evaluation time.
    """
    mask = (rng.random(h.shape, dtype=np.float32) >= p).astype(h.dtype)
    mask *= 1 / (1 - p)
    return h * mask, mask


def dropout_backward(dout: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return dout * mask


def init_weight(
    init: str,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    mean: float = 0.0,
    std: float = 1e-3,
) -> np.ndarray:
    """A float32 weight matrix of shape (fan_in, fan_out).

    he: N(0, 2 / fan_in) (ReLU nets); xavier: N(0, 2 / (fan_in + fan_out)) (tanh, sigmoid);
    normal: N(mean, std^2), e.g. mean = std = 0.1 in the landscape assignment.
    """
    if init == "he":
        mean, std = 0.0, np.sqrt(2.0 / fan_in)
    elif init == "xavier":
        mean, std = 0.0, np.sqrt(2.0 / (fan_in + fan_out))
    elif init != "normal":
        raise ValueError(f"init: got {init!r}; allowed: he, xavier, normal")
    return (mean + std * rng.standard_normal((fan_in, fan_out))).astype(np.float32)


INITS = ("he", "xavier", "normal")
