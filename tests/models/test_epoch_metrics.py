"""Training metrics from the epoch's own batches, when a class of yours keeps them."""

from __future__ import annotations

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
