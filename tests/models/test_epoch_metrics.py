"""Training metrics from the epoch's own batches, when a class of yours keeps them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.models.custom_classifier import CustomClassifier
from hpsearch.models.training import train
from hpsearch.models.usercode import UserCodeError


class Counting:
    """Predicts the majority class; counts the rows it is asked to evaluate."""

    def __init__(self, metrics=None) -> None:
        self.metrics = metrics
        self.evaluated: list[int] = []
        self.epoch = 0

    def partial_fit(self, X, y, classes=None):
        self.epoch += 1
        if self.metrics is not None:
            self.epoch_metrics_ = self.metrics(self.epoch)
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=np.int64)

    def evaluate(self, X, y):
        self.evaluated.append(len(X))
        return 1.0, float(np.mean(y == 0))


def _train(estimator: Counting):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((500, 4)), np.arange(500) % 2
    model = CustomClassifier(estimator, epochs=3, patience=0)
    return train(model, X, y, X[:50], y[:50], classes=np.arange(2))


def test_the_epochs_own_metrics_replace_the_second_pass():
    estimator = Counting(lambda epoch: (1.0 / epoch, 0.5 + 0.1 * epoch))
    history = _train(estimator)
    assert history.train_metrics == "batches"
    assert history.train_loss == [1.0, 0.5, 1 / 3]
    assert history.train_accuracy == pytest.approx([0.6, 0.7, 0.8])
    assert estimator.evaluated == [50, 50, 50]  # the validation rows only


def test_without_them_the_training_rows_are_evaluated():
    estimator = Counting()
    history = _train(estimator)
    assert history.train_metrics == "pass"
    assert estimator.evaluated == [500, 50] * 3


def test_impossible_epoch_metrics_fail_like_an_impossible_evaluate():
    with pytest.raises(UserCodeError, match=r"Counting.epoch_metrics_ returned the accuracy 2.0"):
        _train(Counting(lambda epoch: (0.1, 2.0)))


def test_the_examples_batch_figures_are_its_loss_and_accuracy_over_the_epochs_rows():
    """studies/custom/hinge_linear.py keeps epoch_metrics_: with a learning rate of 0 the model
    does not move during the epoch, so the figures over its batches (uneven: 500 rows in
    batches of 64) must equal one evaluation of every training row."""
    from hpsearch.models import resolve

    example = Path(__file__).resolve().parents[2] / "studies" / "custom" / "hinge_linear.py"
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0.5)
    for reg in ("l1", "l2"):
        cls = resolve(f"{example}:HingeLinear").load()
        est = cls(learning_rate=0.0, reg=reg, reg_strength=0.1, batch_size=64, seed=3)
        est.partial_fit(X, y, classes=np.arange(4))
        loss, accuracy = est.evaluate(X, y)
        assert est.epoch_metrics_ == pytest.approx((loss, accuracy), rel=1e-6)
        assert accuracy == np.mean(est.predict(X) == y)
        assert 0.0 < accuracy < 1.0
