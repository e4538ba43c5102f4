"""PyTorch autograd as an independent oracle for the NumPy MLP's loss and every gradient."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hpsearch.models.losses import LOSSES
from hpsearch.models.mlp import MLP
from tests.conftest import require_torch
from tests.gradcheck import float64_model


def _torch_loss(torch, name, scores, y):
    n = scores.shape[0]
    rows = torch.arange(n)
    correct = scores[rows, y]
    if name == "softmax":
        return torch.nn.functional.cross_entropy(scores, y)
    masked = scores.clone()
    masked[rows, y] = -torch.inf
    if name in ("hinge", "perceptron"):
        margin = 1.0 if name == "hinge" else 0.0
        return torch.clamp(margin + masked.max(dim=1).values - correct, min=0).mean()
    margins = torch.clamp(1 + scores - correct[:, None], min=0)
    margins = margins * (1 - torch.nn.functional.one_hot(y, scores.shape[1]))
    return margins.sum() / n


@pytest.mark.parametrize(
    "activation, loss, reg, dropout",
    [
        *itertools.product(["relu", "sigmoid", "tanh"], LOSSES, ["none", "l1", "l2"], [0.0]),
        ("relu", "softmax", "l2", 0.4),
        ("tanh", "hinge", "l1", 0.4),
    ],
)
def test_mlp_loss_and_gradients_equal_torch(activation, loss, reg, dropout):
    torch = require_torch()
    model = MLP(
        hidden=[6, 5],
        activation=activation,
        loss=loss,
        reg=reg,
        reg_strength=0.05,
        dropout=dropout,
    )
    X, y = float64_model(model, n=9, d=7, c=4, seed=3)
    model._rng = np.random.default_rng(11)
    ours, grads = model.loss_and_grads(X, y)
    model._rng = np.random.default_rng(11)  # the same masks again, to hand them to torch
    _, (caches, _) = model._forward(X, train=True)

    params = {k: torch.tensor(v, requires_grad=True) for k, v in model.weights_.items()}
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
    h = torch.tensor(X)
    n_layers = len(params) // 2
    for i in range(1, n_layers):
        h = act(h @ params[f"W{i}"] + params[f"b{i}"])
        mask = caches[i - 1][2]
        if mask is not None:
            h = h * torch.tensor(mask)
    scores = h @ params[f"W{n_layers}"] + params[f"b{n_layers}"]
    total = _torch_loss(torch, loss, scores, torch.tensor(y))
    weights = [params[f"W{i}"] for i in range(1, n_layers + 1)]
    if reg == "l1":
        total = total + 0.05 * sum(w.abs().sum() for w in weights)
    elif reg == "l2":
        total = total + 0.05 * sum((w * w).sum() for w in weights)
    total.backward()

    assert ours == pytest.approx(total.item(), rel=1e-10)
    for name, param in params.items():
        np.testing.assert_allclose(
            grads[name], param.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )
