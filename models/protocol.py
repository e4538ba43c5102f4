"""The model protocol: what the epoch loop, the search and retraining need of a classifier.

Every kind implements `Classifier` (scikit-learn's estimator API, one epoch per partial_fit);
`ClassifierMixin` holds what the NumPy and Torch bases share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import Protocol
from typing import Self
from typing import runtime_checkable

import numpy as np


class Classifier(Protocol):
    """A classifier trained epoch by epoch. `__init__` only stores its arguments."""

    epochs: int  # epochs that train() runs
    patience: int  # early stopping: epochs without a better validation accuracy (0: off)
    wants_images: bool  # inputs of shape (N, C, H, W) instead of flat (N, D)

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes: Any = None) -> Self:
        """Train exactly one epoch (initialising on the first call)."""
        ...

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Data loss (no penalty) and accuracy."""
        ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def decision_function(self, X: np.ndarray) -> np.ndarray: ...

    def weight_norm(self) -> float:
        """sqrt(sum W**2) over the weights that L2 penalizes."""
        ...

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of the learned weights (what early stopping keeps and retrain saves)."""
        ...

    def set_weights(self, weights: dict[str, np.ndarray]) -> None: ...


@runtime_checkable
class DrawsClassWeights(Protocol):
    """Linear models: each class's weights, shaped as an image (for the report)."""

    def class_weight_images(self, image_shape: tuple[int, ...]) -> np.ndarray: ...


class ClassifierMixin:
    """What every kind shares: its settings, training from scratch, predictions, accuracy.

    Subclasses set `_parameter_constraints` and `_learned` (the attributes `fit` clears) and
    define partial_fit and decision_function.
    """

    _parameter_constraints: dict[str, Any]
    _learned: tuple[str, ...] = ()
    wants_images = False
    epochs: int
    classes_: np.ndarray

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Train from scratch for `epochs` epochs (no early stopping: it needs validation data;
        models.training.train() does that)."""
        for attr in self._learned:
            self.__dict__.pop(attr, None)
        for _ in range(self.epochs):
            self.partial_fit(X, y)  # type: ignore[attr-defined]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]  # type: ignore[attr-defined]

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean accuracy."""
        return float((self.predict(X) == y).mean())


@runtime_checkable
class KindEntry(Protocol):
    """What a `[model].kind` resolves to (models.resolve): a built-in kind's `ModelEntry`, a
    user's class (`CustomEntry`) or a user's network function (`NetworkEntry`). Callers use
    these methods and never ask which of the three they hold."""

    user_code: bool  # the kind runs the user's code: its file is recorded with the study

    def load(self) -> type:
        """The class that trains (imported on first use)."""
        ...

    def arguments(self) -> dict[str, Any]:
        """The arguments a study file may set, fixed or searched, with their constraints."""
        ...

    def build(self, params: dict[str, Any], seed: int) -> Classifier:
        """A model with these arguments and seed."""
        ...

    def needs_torch(self) -> bool: ...

    def check(self) -> None:
        """Import the kind's code and check it; CustomModelError says what is wrong."""
        ...

    def can_keep_weights(self) -> bool:
        """Whether early stopping can restore the best epoch's weights."""
        ...

    def file(self) -> Path | None:
        """The user's source file (None for the built-in kinds)."""
        ...

    def source_sha256(self) -> str | None: ...
