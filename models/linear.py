"""Linear classifiers: scores = X W + b.

One engine serves every linear model; they differ only in their loss (scikit-learn's
SGDClassifier and cs231n's LinearClassifier are built the same way): softmax regression,
the linear SVM (hinge or weston_watkins), the multiclass perceptron.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hpsearch.models.base import COMMON_CONSTRAINTS
from hpsearch.models.base import GradientModel
from hpsearch.models.base import store_arguments
from hpsearch.models.layers import affine_backward
from hpsearch.models.layers import affine_forward
from hpsearch.models.layers import init_weight


class LinearClassifier(GradientModel):
    """A linear classifier over flattened inputs of shape (N, D).

    Args:
        loss: softmax | hinge (Crammer-Singer) | weston_watkins | perceptron (models.losses).
        learning_rate: Initial step size; `schedule` changes it.
        batch_size: Samples per gradient step.
        epochs: Passes over the training data.
        reg, reg_strength: Weight penalty none | l1 | l2 and its factor (models.regularizers).
        optimizer: sgd | momentum | nesterov | adam; `momentum` is the velocity factor.
        schedule: constant | exponential | step | cosine | onecycle, with lr_decay, lr_step,
            lr_gamma (models.schedules); `schedule_every` batch (cosine and onecycle move with
            every batch) or epoch (the rate set once an epoch, as in hpsearch 0.1).
        sampling: shuffle (every epoch) | bootstrap (batches drawn with replacement).
        patience: Early stopping after this many epochs without a better validation accuracy,
            keeping the best epoch's weights (0 = off; the training loop applies it).
        init, init_mean, init_std: Weight initialisation (models.layers.init_weight).
        seed: Seeds initialisation and batch order.
    """

    _parameter_constraints = COMMON_CONSTRAINTS

    def __init__(
        self,
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
        init: str = "normal",
        init_mean: float = 0.0,
        init_std: float = 1e-3,  # small weights: the first softmax loss is close to ln C
        seed: int = 0,
    ) -> None:
        store_arguments(self, locals())

    def _init_params(self, n_features: int, n_classes: int) -> dict[str, np.ndarray]:
        W = init_weight(self.init, n_features, n_classes, self._rng, self.init_mean, self.init_std)
        return {"W": W, "b": np.zeros(n_classes, dtype=np.float32)}

    def _weight_names(self) -> list[str]:
        return ["W"]

    def _forward(self, X: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        return affine_forward(X, self.weights_["W"], self.weights_["b"])

    def _backward(self, dscores: np.ndarray, cache: Any) -> dict[str, np.ndarray]:
        _, dW, db = affine_backward(dscores, cache, need_dx=False)
        return {"W": dW, "b": db}

    def class_weight_images(self, image_shape: tuple[int, ...]) -> np.ndarray:
        """Each class's weights as an image, shape (C_classes, *image_shape) (cs231n's
        "templates"; the CIFAR-10 assignment shows them)."""
        return self.weights_["W"].T.reshape(len(self.classes_), *image_shape)
