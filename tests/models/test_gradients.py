"""Centred-difference checks of every model's loss and gradients, in float64."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpsearch.models.linear import LinearClassifier
from hpsearch.models.losses import LOSSES
from hpsearch.models.mlp import MLP
from tests.gradcheck import numerical_gradient
from tests.gradcheck import rel_error

SMOOTH_BOUND, KINK_BOUND = 1e-7, 1e-4  # cs231n's bounds for smooth parts and kinks


def float64_model(model, n=6, d=5, c=4, seed=0):
    """Fit one epoch to create weights_, then switch to float64 weights far from L1's kink."""
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((n, d)), rng.integers(0, c, n)
    model.partial_fit(X.astype(np.float32), y, classes=np.arange(c))
    for name, value in model.weights_.items():
        sign = rng.choice([-1.0, 1.0], value.shape)
        model.weights_[name] = sign * rng.uniform(0.3, 1.0, value.shape)
    return X, y


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
