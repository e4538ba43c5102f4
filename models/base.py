"""The machinery every NumPy classifier shares; subclasses define only their network.

A subclass implements `_init_params(n_features, n_classes)`, `_forward(X, train)` returning
(scores of shape (N, C), cache), `_backward(dscores, cache)` returning gradients keyed like
`weights_`, and `_weight_names()` (the arrays that regularization applies to, never biases).
"""

from __future__ import annotations

from typing import Any
from typing import Self

import numpy as np

from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import Options
from hpsearch.models.constraints import validate_arguments
from hpsearch.models.layers import INITS
from hpsearch.models.losses import LOSSES
from hpsearch.models.optimizers import OPTIMIZERS
from hpsearch.models.optimizers import make_optimizer
from hpsearch.models.protocol import ClassifierMixin
from hpsearch.models.regularizers import REGULARIZERS
from hpsearch.models.regularizers import penalty
from hpsearch.models.schedules import SCHEDULE_EVERY
from hpsearch.models.schedules import SCHEDULES
from hpsearch.models.schedules import model_lr_at
from hpsearch.models.schedules import steps_every_batch
from hpsearch.models.threads import fastest_threads
from hpsearch.models.threads import limit_blas
from hpsearch.models.threads import time_steps
from hpsearch.models.training import SAMPLING
from hpsearch.models.training import check_finite
from hpsearch.models.training import check_weights
from hpsearch.models.training import minibatches

_EVAL_CHUNK = 4096  # rows scored at once by evaluate(), bounds memory on large datasets

COMMON_CONSTRAINTS = {
    "learning_rate": Interval(0.0, None, low_open=True),
    "batch_size": Interval(1, None, integer=True),
    "epochs": Interval(1, None, integer=True),
    "reg": Options(REGULARIZERS),
    "reg_strength": Interval(0.0, None),
    "optimizer": Options(OPTIMIZERS),
    "momentum": Interval(0.0, 1.0, high_open=True),
    "schedule": Options(SCHEDULES),
    "schedule_every": Options(SCHEDULE_EVERY),
    "lr_decay": Interval(0.0, None),
    "lr_step": Interval(1, None, integer=True),
    "lr_gamma": Interval(0.0, 1.0, low_open=True),
    "sampling": Options(SAMPLING),
    "patience": Interval(0, None, integer=True),
    "init": Options(INITS),
    "init_mean": Interval(),
    "init_std": Interval(0.0, None, low_open=True),
    "loss": Options(tuple(LOSSES)),
    "seed": Interval(0, None, integer=True),
}


def store_arguments(model: Any, arguments: dict[str, Any]) -> None:
    """What every model's __init__ does, and all it does: store its arguments unchanged
    (scikit-learn's rule: no logic, not even validation; `fit` validates)."""
    for name, value in arguments.items():
        if name not in ("self", "__class__"):
            setattr(model, name, value)


class GradientModel(ClassifierMixin):
    """Mini-batch training, regularization, schedules and evaluation for any network.

    Every constructor argument of a subclass is stored as-is (scikit-learn's rule: no logic in
    __init__) and checked against `_parameter_constraints` on the first `partial_fit`.
    """

    _parameter_constraints: dict[str, Any] = COMMON_CONSTRAINTS
    _learned = ("weights_", "classes_")

    # -- to be defined by subclasses -------------------------------------------------------

    def _init_params(self, n_features: int, n_classes: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _forward(self, X: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _backward(self, dscores: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _weight_names(self) -> list[str]:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------

    def _validate(self) -> None:
        validate_arguments(self._parameter_constraints, self.get_params())

    def _initialize(self, n_features: int, classes: Any) -> None:
        self._validate()
        self.classes_ = np.asarray(classes)
        self._rng = np.random.default_rng(self.seed)
        self.weights_ = self._init_params(n_features, len(self.classes_))
        self._optimizer = make_optimizer(self.optimizer, self.learning_rate, self.momentum)
        self.loss_curve_: list[float] = []

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Regularized loss of a batch and the gradient of every array in weights_.

        Args:
            X: Inputs of shape (N, D).
            y: Class indices of shape (N,), values in [0, C).

        Returns:
            The data loss plus the weight penalty, and gradients keyed like weights_.
        """
        scores, cache = self._forward(X, train=True)
        data_loss, dscores = LOSSES[self.loss](scores, y)
        grads = self._backward(dscores, cache)
        weights = {name: self.weights_[name] for name in self._weight_names()}
        reg_loss, reg_grads = penalty(self.reg, self.reg_strength, weights)
        for name, grad in reg_grads.items():
            grads[name] += grad
        return data_loss + reg_loss, grads

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes: Any = None) -> Self:
        """Train for exactly one epoch.

        Args:
            X: Inputs of shape (N, D), float32.
            y: Labels of shape (N,).
            classes: All labels that can occur; needed on the first call only.
        """
        if not hasattr(self, "weights_"):
            self._initialize(X.shape[1], np.unique(y) if classes is None else classes)
        y_idx = np.searchsorted(self.classes_, y)
        if not hasattr(self, "threads_"):
            self.threads_ = self._choose_threads(X, y_idx)
        epoch = len(self.loss_curve_)
        self._optimizer.learning_rate = model_lr_at(self, epoch)
        per_batch, batches = steps_every_batch(self), -(-len(X) // self.batch_size)
        total, seen = 0.0, 0
        with np.errstate(over="ignore", invalid="ignore"):
            batched = minibatches(len(X), self.batch_size, self._rng, self.sampling)
            for batch, idx in enumerate(batched):
                if per_batch:
                    self._optimizer.learning_rate = model_lr_at(self, epoch, batch, batches)
                loss, grads = self.loss_and_grads(X[idx], y_idx[idx])
                check_finite(loss, epoch)
                self._optimizer.step(self.weights_, grads)
                total += loss * len(idx)
                seen += len(idx)
        check_weights(self.weights_, epoch)
        self.loss_curve_.append(total / seen)
        return self

    def _choose_threads(self, X: np.ndarray, y_idx: np.ndarray) -> int:
        """NumPy's BLAS threads for this model (models/threads.py): asked for, or the faster of
        1 and every core, timed on one batch's loss and gradients (weights and random state
        untouched); set for the process from here on, as Torch's count is."""
        rows = min(self.batch_size, len(X))
        shapes = tuple(w.shape for w in self.weights_.values())
        key = (type(self).__name__, rows, shapes)
        planned = self.epochs * -(-len(X) // self.batch_size)
        state = self._rng.bit_generator.state

        def seconds(n: int) -> float:
            limit_blas(n)
            return time_steps(lambda: self.loss_and_grads(X[:rows], y_idx[:rows]))

        try:
            threads = fastest_threads(key, seconds, planned)
        finally:
            self._rng.bit_generator.state = state
        limit_blas(threads)
        return threads

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores of shape (N, C), in evaluation mode (no dropout)."""
        return self._forward(X, train=False)[0]

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Data loss (no penalty) and accuracy over all of X, scored in chunks."""
        y_idx = np.searchsorted(self.classes_, y)
        loss_sum = 0.0
        correct = 0
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, len(X), _EVAL_CHUNK):
                scores = self.decision_function(X[start : start + _EVAL_CHUNK])
                target = y_idx[start : start + _EVAL_CHUNK]
                loss, _ = LOSSES[self.loss](scores, target)
                loss_sum += loss * len(target)
                correct += int((scores.argmax(axis=1) == target).sum())
        return loss_sum / len(X), correct / len(X)

    def weight_norm(self) -> float:
        """sqrt(sum W**2) over the weight matrices (what L2 penalizes)."""
        return float(
            np.sqrt(
                sum(
                    float(np.vdot(self.weights_[w], self.weights_[w]))
                    for w in self._weight_names()
                )
            )
        )

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of the learned arrays."""
        return {name: value.copy() for name, value in self.weights_.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights_ = {name: value.copy() for name, value in weights.items()}
