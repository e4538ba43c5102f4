"""Linear classifiers: scores = X W + b, trained by mini-batch gradient descent.

One engine serves every linear model; the models differ only in their loss (scikit-learn's
SGDClassifier and cs231n's LinearClassifier are built the same way).
"""

from __future__ import annotations

from typing import Any
from typing import Self

import numpy as np

from models._constraints import Interval
from models._constraints import Options
from models._constraints import validate_arguments
from models.losses import LOSSES
from models.optimizers import SGD
from models.regularizers import REGULARIZERS
from models.regularizers import penalty
from models.training import check_finite
from models.training import minibatches

_INIT_STD = 1e-3  # small weights: the first softmax loss is close to ln C (cs231n)
_EVAL_CHUNK = 4096  # rows scored at once by evaluate(), bounds memory on large datasets


class LinearClassifier:
    """A linear classifier over flattened inputs.

    Args:
        loss: Name of the loss in models.losses.LOSSES.
        learning_rate: Step size of SGD.
        batch_size: Samples per gradient step.
        reg: Weight penalty, "none", "l1" or "l2" (models.regularizers).
        reg_strength: Factor of the weight penalty.
        epochs: Passes over the training data made by fit().
        seed: Seeds weight initialisation and batch order.
    """

    _parameter_constraints = {
        "loss": Options(tuple(LOSSES)),
        "learning_rate": Interval(0.0, None, low_open=True),
        "batch_size": Interval(1, None, integer=True),
        "reg": Options(REGULARIZERS),
        "reg_strength": Interval(0.0, None),
        "epochs": Interval(1, None, integer=True),
        "seed": Interval(0, None, integer=True),
    }

    def __init__(
        self,
        loss: str = "softmax",
        learning_rate: float = 1e-2,
        batch_size: int = 64,
        reg: str = "none",
        reg_strength: float = 0.0,
        epochs: int = 20,
        seed: int = 0,
    ) -> None:
        self.loss = loss
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.reg = reg
        self.reg_strength = reg_strength
        self.epochs = epochs
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def _initialize(self, n_features: int, classes: np.ndarray) -> None:
        validate_arguments(self._parameter_constraints, self.get_params())
        self.classes_ = np.asarray(classes)
        self._rng = np.random.default_rng(self.seed)
        n_classes = len(self.classes_)
        self.params_ = {
            "W": (_INIT_STD * self._rng.standard_normal((n_features, n_classes))).astype(
                np.float32
            ),
            "b": np.zeros(n_classes, dtype=np.float32),
        }
        self._optimizer = SGD(self.learning_rate)
        self.loss_curve_: list[float] = []

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Regularized loss of a batch and the gradient for every array in params_.

        Args:
            X: Inputs of shape (N, D).
            y: Class indices of shape (N,).

        Returns:
            The data loss plus the weight penalty, and gradients keyed like params_.
        """
        W, b = self.params_["W"], self.params_["b"]
        data_loss, dscores = LOSSES[self.loss](X @ W + b, y)
        reg_loss, reg_grads = penalty(self.reg, self.reg_strength, {"W": W})
        dW = X.T @ dscores
        if "W" in reg_grads:
            dW += reg_grads["W"]
        return data_loss + reg_loss, {"W": dW, "b": dscores.sum(axis=0)}

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes: Any = None) -> Self:
        """Train for exactly one epoch.

        Args:
            X: Inputs of shape (N, D), float32.
            y: Labels of shape (N,).
            classes: All labels that can occur; needed on the first call only.
        """
        if not hasattr(self, "params_"):
            self._initialize(X.shape[1], np.unique(y) if classes is None else classes)
        y_idx = np.searchsorted(self.classes_, y)
        epoch = len(self.loss_curve_)
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for idx in minibatches(len(X), self.batch_size, self._rng):
                loss, grads = self.loss_and_grads(X[idx], y_idx[idx])
                check_finite(loss, epoch)
                self._optimizer.step(self.params_, grads)
                total += loss * len(idx)
        self.loss_curve_.append(total / len(X))
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Train from scratch for `epochs` epochs."""
        for attr in ("params_", "classes_"):
            self.__dict__.pop(attr, None)
        for _ in range(self.epochs):
            self.partial_fit(X, y)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores of shape (N, C)."""
        return X @ self.params_["W"] + self.params_["b"]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean accuracy."""
        return float((self.predict(X) == y).mean())

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
