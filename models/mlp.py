"""A multi-layer perceptron: affine -> activation -> dropout, repeated, then an affine output."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.models.base import COMMON_CONSTRAINTS
from hpsearch.models.base import GradientModel
from hpsearch.models.base import store_arguments
from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import Options
from hpsearch.models.layers import ACTIVATIONS
from hpsearch.models.layers import affine_backward
from hpsearch.models.layers import affine_forward
from hpsearch.models.layers import dropout_backward
from hpsearch.models.layers import dropout_forward
from hpsearch.models.layers import init_weight


def parse_hidden(hidden: Any) -> list[int]:
    """Layer widths from a list ([200, 200]), a single width (200) or a string ("200-200").

    The string form lets a categorical parameter choose whole architectures (Optuna's
    categorical choices cannot be lists). An empty list or "" means no hidden layer.
    """
    if isinstance(hidden, str):
        text = hidden.replace(" ", "")
        parts = text.split("-") if text else []  # "" is no hidden layer; "100--5" is a typo
        if not all(p.isdigit() for p in parts):
            raise ValueError(
                f"hidden: got {hidden!r}; allowed: widths joined by '-', e.g. '200-100'"
            )
        widths = [int(p) for p in parts]
    elif isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        widths = [int(hidden)]
    elif isinstance(hidden, list | tuple):
        widths = list(hidden)
    else:
        raise ValueError(
            f"hidden: got {hidden!r}; allowed: a list of widths, a width, or widths joined by '-'"
        )
    if not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(f"hidden: got {hidden!r}; every width must be a whole number >= 1")
    return widths


@dataclass(frozen=True)
class Widths:
    """Constraint for `hidden`, in the shape of models.constraints."""

    def describe(self) -> str:
        return "a list of widths such as [200, 100], a width, or a string such as '200-100'"

    def check(self, value: Any) -> str | None:
        try:
            parse_hidden(value)
        except ValueError:
            return f"got {value!r}; allowed: {self.describe()}"
        return None


class MLP(GradientModel):
    """A fully connected network over flattened inputs of shape (N, D).

    Args:
        hidden: Hidden layer widths (see parse_hidden).
        depth, width: Another way to give `hidden`, for searching depth and width as separate
            parameters: width > 0 means `depth` hidden layers of `width` units, and `hidden` is
            ignored. width = 0 (the default) leaves `hidden` in charge.
        activation: relu | sigmoid | tanh.
        dropout: Probability of dropping each hidden unit in training (inverted dropout).
        Everything else as in models.linear.LinearClassifier; `loss` defaults to softmax.
    """

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "hidden": Widths(),
        "depth": Interval(1, None, integer=True),
        "width": Interval(0, None, integer=True),
        "activation": Options(tuple(ACTIVATIONS)),
        "dropout": Interval(0.0, 1.0, high_open=True),
    }

    def __init__(
        self,
        hidden: Any = (100,),
        depth: int = 1,
        width: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        loss: str = "softmax",
        learning_rate: float = 1e-2,
        batch_size: int = 64,
        epochs: int = 20,
        reg: str = "none",
        reg_strength: float = 0.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        schedule: str = "constant",
        schedule_every: str = "batch",
        lr_decay: float = 0.0,
        lr_step: int = 10,
        lr_gamma: float = 0.1,
        sampling: str = "shuffle",
        patience: int = 0,
        init: str = "he",
        init_mean: float = 0.0,
        init_std: float = 1e-2,
        seed: int = 0,
    ) -> None:
        store_arguments(self, locals())

    def layer_widths(self) -> list[int]:
        return [self.width] * self.depth if self.width > 0 else parse_hidden(self.hidden)

    def _init_params(self, n_features: int, n_classes: int) -> dict[str, np.ndarray]:
        sizes = [n_features, *self.layer_widths(), n_classes]
        params = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            params[f"W{i}"] = init_weight(
                self.init, fan_in, fan_out, self._rng, self.init_mean, self.init_std
            )
            params[f"b{i}"] = np.zeros(fan_out, dtype=np.float32)
        return params

    def _n_layers(self) -> int:
        return len(self.weights_) // 2

    def _weight_names(self) -> list[str]:
        return [f"W{i}" for i in range(1, self._n_layers() + 1)]

    def _forward(self, X: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        forward = ACTIVATIONS[self.activation][0]
        n = self._n_layers()
        caches = []
        h = X
        for i in range(1, n):
            a, affine_cache = affine_forward(h, self.weights_[f"W{i}"], self.weights_[f"b{i}"])
            h, act_cache = forward(a)
            mask = None
            if train and self.dropout > 0:
                h, mask = dropout_forward(h, self.dropout, self._rng)
            caches.append((affine_cache, act_cache, mask))
        scores, out_cache = affine_forward(h, self.weights_[f"W{n}"], self.weights_[f"b{n}"])
        return scores, (caches, out_cache)

    def _backward(self, dscores: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
        backward = ACTIVATIONS[self.activation][1]
        caches, out_cache = cache
        n = self._n_layers()
        grads = {}
        dh, grads[f"W{n}"], grads[f"b{n}"] = affine_backward(dscores, out_cache)
        for i in range(n - 1, 0, -1):
            affine_cache, act_cache, mask = caches[i - 1]
            if mask is not None:
                dh = dropout_backward(dh, mask)
            da = backward(dh, act_cache)
            dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(da, affine_cache, need_dx=i > 1)
        return grads
