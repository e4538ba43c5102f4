from __future__ import annotations

import numpy as np
import pytest

from hpsearch.models import MODELS
from hpsearch.models.training import TrainingDiverged
from hpsearch.models.training import check_weights
from hpsearch.models.training import minibatches
from hpsearch.models.training import train


def test_shuffled_batches_cover_every_sample_once_and_bootstrap_draws_with_replacement():
    rng = np.random.default_rng(0)
    batches = list(minibatches(10, 4, rng))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches)) == list(range(10))
    drawn = np.concatenate(list(minibatches(1000, 100, rng, "bootstrap")))
    assert len(drawn) == 1000 and len(np.unique(drawn)) < 1000


def test_early_stopping_stops_and_keeps_the_best_epochs_weights(digits):
    # A learning rate this high makes validation accuracy wander, so patience 2 triggers.
    model = MODELS["numpy.mlp"].build(
        {"hidden": [32], "learning_rate": 0.5, "epochs": 60, "patience": 2}, seed=0
    )
    history = train(
        model, digits.X_train, digits.y_train, digits.X_val, digits.y_val, classes=digits.classes
    )
    ran = len(history.val_accuracy)
    assert ran < 60
    assert history.kept_epoch == int(np.argmax(history.val_accuracy)) == ran - 3
    assert model.evaluate(digits.X_val, digits.y_val)[1] == history.kept_val_accuracy


def test_without_patience_the_final_weights_are_kept(digits):
    model = MODELS["numpy.softmax"].build({"epochs": 5}, seed=0)
    seen = []
    history = train(
        model,
        digits.X_train,
        digits.y_train,
        digits.X_val,
        digits.y_val,
        classes=digits.classes,
        on_epoch=lambda e, h: seen.append(e),
    )
    assert seen == [0, 1, 2, 3, 4] and history.kept_epoch == 4
    assert model.evaluate(digits.X_val, digits.y_val)[1] == history.val_accuracy[-1]


def test_exploding_weights_are_caught():
    check_weights({"W": np.ones(3)}, 0)
    with pytest.raises(TrainingDiverged, match=r"weights exploded in epoch 4: max \|W\|"):
        check_weights({"W": np.array([1.0, 2e6])}, 4)
    with pytest.raises(TrainingDiverged):
        check_weights({"W": np.array([np.nan])}, 0)
