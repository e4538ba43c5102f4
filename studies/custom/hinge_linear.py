"""A multiclass linear SVM written from scratch, the way assignment 000 asks for it.

Nothing here imports hpsearch: any class with this shape can be tuned by `hpsearch run`.
Loss per sample (Crammer-Singer): max(0, 1 + max_{j != y} s_j - s_y), plus reg_strength * R(W)
with R = sum W**2 (l2) or sum |W| (l1), on W only, never on the bias.
"""

from __future__ import annotations

import numpy as np


class HingeLinear:
    """One epoch of mini-batch SGD per `partial_fit`, the shape scikit-learn's incremental
    estimators have; `get_weights`/`set_weights` let hpsearch stop early and keep the best
    epoch. `partial_fit` keeps the epoch's mean loss and accuracy over its own batches in
    `epoch_metrics_` (as Keras reports them), so hpsearch needs no second pass over the training
    rows; `evaluate` gives the same loss on other rows (the validation curve)."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        reg: str = "l2",
        reg_strength: float = 1e-4,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_strength = reg_strength
        self.batch_size = batch_size
        self.seed = seed
        self.W: np.ndarray | None = None

    def _margins(self, scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's hinge margin against its strongest rival class, and that rival."""
        n = np.arange(len(y))
        others = scores.copy()
        others[n, y] = -np.inf
        rival = others.argmax(axis=1)
        return np.maximum(0.0, 1.0 + others[n, rival] - scores[n, y]), rival

    def _penalty(self) -> tuple[float, np.ndarray]:
        if self.reg == "l1":
            return float(np.abs(self.W).sum()), np.sign(self.W)
        return float((self.W * self.W).sum()), 2 * self.W

    def compute_gradient_and_loss(
        self, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray, int]:
        """Mean hinge loss of a batch plus the penalty, its gradients for W and b, and how many
        of the batch's rows the scores got right (the epoch's accuracy, at no extra cost)."""
        n = len(X)
        scores = X @ self.W + self.b
        margins, rival = self._margins(scores, y)
        active = (margins > 0).astype(X.dtype)
        dscores = np.zeros_like(scores)
        dscores[np.arange(n), rival] += active / n
        dscores[np.arange(n), y] -= active / n
        penalty, dpenalty = self._penalty()
        loss = margins.mean() + self.reg_strength * penalty
        dW = X.T @ dscores + self.reg_strength * dpenalty
        correct = int((scores.argmax(axis=1) == y).sum())
        return float(loss), dW, dscores.sum(axis=0), correct

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes=None) -> HingeLinear:
        if self.W is None:
            self.classes_ = np.asarray(classes if classes is not None else np.unique(y))
            self._rng = np.random.default_rng(self.seed)
            self.W = self._rng.normal(0.0, 1e-3, (X.shape[1], len(self.classes_)))
            self.W = self.W.astype(np.float32)
            self.b = np.zeros(len(self.classes_), np.float32)
        target = np.searchsorted(self.classes_, y)
        order = self._rng.permutation(len(X))
        loss_sum, correct = 0.0, 0
        for start in range(0, len(X), self.batch_size):
            batch = order[start : start + self.batch_size]
            loss, dW, db, right = self.compute_gradient_and_loss(X[batch], target[batch])
            loss_sum += loss * len(batch)
            correct += right
            self.W -= self.learning_rate * dW
            self.b -= self.learning_rate * db
        # Figures of a model that changed during the epoch, as Keras's are.
        self.epoch_metrics_ = (loss_sum / len(X), correct / len(X))
        return self

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(The training loss, accuracy) on rows of your choice, from one pass of scores."""
        target = np.searchsorted(self.classes_, y)
        scores = self.decision_function(X)
        margins, _ = self._margins(scores, target)
        accuracy = float(np.mean(scores.argmax(axis=1) == target))
        return float(margins.mean() + self.reg_strength * self._penalty()[0]), accuracy

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return X @ self.W + self.b

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def get_weights(self) -> dict[str, np.ndarray]:
        return {"W": self.W.copy(), "b": self.b.copy()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.W, self.b = weights["W"].copy(), weights["b"].copy()
