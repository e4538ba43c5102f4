"""`CustomClassifier`: the model protocol (models/protocol.py) around a user's classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import Self

import numpy as np

from hpsearch.models.usercode import UserCodeError
from hpsearch.models.usercode import calling
from hpsearch.models.usercode import check_evaluation
from hpsearch.models.usercode import check_labels
from hpsearch.models.usercode import check_scores


class CustomClassifier:
    """The model protocol around a user's incremental classifier.

    Every call into the user's object goes through models.usercode.calling (its prints go to
    stderr, whatever it raises fails the trial with its file and line) and every answer is
    checked, so that an impossible value fails the trial instead of being stored."""

    def __init__(
        self, estimator: Any, *, epochs: int, patience: int, path: Path | None = None
    ) -> None:
        self.estimator = estimator
        self.epochs = epochs
        self.patience = patience
        self.path = path
        self.name = type(estimator).__name__
        self.wants_images = bool(getattr(estimator, "wants_images", False))
        self.classes_: np.ndarray | None = None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with calling(f"{self.name}.{method}", self.path):
            return getattr(self.estimator, method)(*args, **kwargs)

    def _has(self, method: str) -> bool:
        return callable(getattr(self.estimator, method, None))

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes: Any = None) -> Self:
        if self.classes_ is None:
            self.classes_ = np.asarray(np.unique(y) if classes is None else classes)
        self._call("partial_fit", X, y, classes=self.classes_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        labels = self._call("predict", X)
        return check_labels(labels, len(X), self.classes_, f"{self.name}.predict")

    def _scores(self, method: str, X: np.ndarray) -> np.ndarray:
        scores = self._call(method, X)
        return check_scores(scores, len(X), len(self.classes_), f"{self.name}.{method}")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores (N, C): decision_function, else predict_proba, else one-hot predictions."""
        for method in ("decision_function", "predict_proba"):
            if self._has(method):
                scores = self._scores(method, X)
                return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores
        predicted = np.searchsorted(self.classes_, self.predict(X))
        return np.eye(len(self.classes_))[predicted]

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """The class's own evaluate, else (validation loss, accuracy): log loss of
        predict_proba, or of the softmax of decision_function, or 1 - accuracy without either."""
        if self._has("evaluate"):
            return check_evaluation(self._call("evaluate", X, y), f"{self.name}.evaluate")
        accuracy = float(np.mean(self.predict(X) == y))
        target = np.searchsorted(self.classes_, y)
        if self._has("predict_proba"):
            p = self._scores("predict_proba", X)
            if p.ndim == 1:
                p = np.stack([1.0 - p, p], axis=1)
            picked = np.clip(p[np.arange(len(y)), target], 1e-12, 1.0)
            return float(-np.mean(np.log(picked))), accuracy
        if self._has("decision_function"):
            scores = self.decision_function(X)
            scores = scores - scores.max(axis=1, keepdims=True)
            log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
            return float(-np.mean(log_p[np.arange(len(y)), target])), accuracy
        return 1.0 - accuracy, accuracy

    def epoch_metrics(self) -> tuple[float, float] | None:
        """(training loss, accuracy) over the last epoch's batches, when the class keeps them
        as `epoch_metrics_` (as Keras reports them): no second pass over the training rows."""
        with calling(f"{self.name}.epoch_metrics_", self.path):
            value = getattr(self.estimator, "epoch_metrics_", None)
        return None if value is None else check_evaluation(value, f"{self.name}.epoch_metrics_")

    def weight_norm(self) -> float:
        """sqrt(sum W**2) over the weight matrices: from weight_norm(), get_weights(), or
        scikit-learn's coef_ / coefs_; 0 when the class shows none."""
        est = self.estimator
        with calling(f"{self.name}.weight_norm", self.path):
            if self._has("weight_norm"):
                return float(est.weight_norm())
            if self._has("get_weights"):
                arrays = list(est.get_weights().values())
            else:
                arrays = list(getattr(est, "coefs_", None) or [getattr(est, "coef_", np.zeros(0))])
            return float(
                np.sqrt(sum(float(np.sum(np.square(a))) for a in arrays if np.ndim(a) >= 2))
            )

    def get_weights(self) -> dict[str, np.ndarray]:
        weights = self._call("get_weights")
        if not isinstance(weights, dict):
            raise UserCodeError(
                f"{self.name}.get_weights returned {type(weights).__name__}; expected a dict "
                "of name -> array"
            )
        return weights

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self._call("set_weights", weights)
