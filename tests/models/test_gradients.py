"""Centred-difference checks of every model's loss and gradients, in float64."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpsearch.models.linear import LinearClassifier
from hpsearch.models.losses import LOSSES
from hpsearch.models.mlp import MLP
from tests.gradcheck import float64_model
from tests.gradcheck import numerical_gradient
from tests.gradcheck import rel_error

SMOOTH_BOUND, KINK_BOUND = 1e-7, 1e-4  # cs231n's bounds for smooth parts and kinks


def check_all_gradients(model, X, y, bound):
    def loss():
        model._rng = np.random.default_rng(7)  # the same dropout mask for every evaluation
        return model.loss_and_grads(X, y)[0]

    model._rng = np.random.default_rng(7)
    _, grads = model.loss_and_grads(X, y)
    assert set(grads) == set(model.weights_)
    for name, param in model.weights_.items():
        numeric = numerical_gradient(loss, param)
        assert rel_error(grads[name], numeric) < bound, name


@pytest.mark.parametrize("loss, reg", list(itertools.product(LOSSES, ["none", "l1", "l2"])))
def test_linear_gradients(loss, reg):
    model = LinearClassifier(loss=loss, reg=reg, reg_strength=0.3)
    X, y = float64_model(model)
    smooth = loss == "softmax" and reg != "l1"
    check_all_gradients(model, X, y, SMOOTH_BOUND if smooth else KINK_BOUND)


@pytest.mark.parametrize(
    "activation, loss, reg, dropout",
    [
        *itertools.product(["relu", "sigmoid", "tanh"], LOSSES, ["none", "l1", "l2"], [0.0]),
        *itertools.product(["relu", "sigmoid", "tanh"], ["softmax"], ["l2"], [0.3]),
    ],
)
def test_mlp_gradients(activation, loss, reg, dropout):
    model = MLP(
        hidden=[4, 3], activation=activation, loss=loss, reg=reg, reg_strength=0.1, dropout=dropout
    )
    X, y = float64_model(model)
    smooth = activation != "relu" and loss == "softmax" and reg != "l1"
    check_all_gradients(model, X, y, SMOOTH_BOUND if smooth else KINK_BOUND)


def test_dropout_changes_the_loss_only_in_training():
    model = MLP(hidden=[16], dropout=0.5)
    X, y = float64_model(model, n=20)
    with_drop = model.loss_and_grads(X, y)[0]
    model.dropout = 0.0
    without = model.loss_and_grads(X, y)[0]
    assert with_drop != without
    model.dropout = 0.5
    np.testing.assert_array_equal(model.decision_function(X), model.decision_function(X))
