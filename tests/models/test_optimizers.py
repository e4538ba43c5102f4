from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.models.optimizers import SGD
from hpsearch.models.optimizers import Adam
from hpsearch.models.optimizers import make_optimizer
from hpsearch.models.schedules import lr_at


def _steps(optimizer, n=5, seed=0):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal(4)}
    trajectory = []
    for _ in range(n):
        optimizer.step(params, {"w": rng.standard_normal(4)})
        trajectory.append(params["w"].copy())
    return trajectory


def _reference(kind, lr, mu=0.9, n=5, seed=0, b1=0.9, b2=0.999, eps=1e-8):
    """Textbook update rules, written out plainly."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(4)
    v = np.zeros(4)
    m = np.zeros(4)
    s = np.zeros(4)
    out = []
    for t in range(1, n + 1):
        g = rng.standard_normal(4)
        if kind == "sgd":
            w = w - lr * g
        elif kind == "momentum":
            v = mu * v - lr * g
            w = w + v
        elif kind == "nesterov":  # cs231n: x += -mu * v_prev + (1 + mu) * v
            v_prev = v
            v = mu * v - lr * g
            w = w - mu * v_prev + (1 + mu) * v
        elif kind == "adam":  # Kingma & Ba, Algorithm 1
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * g * g
            m_hat, s_hat = m / (1 - b1**t), s / (1 - b2**t)
            w = w - lr * m_hat / (np.sqrt(s_hat) + eps)
        out.append(w.copy())
    return out


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adam"])
def test_each_optimizer_follows_its_textbook_rule(kind):
    mine = _steps(make_optimizer(kind, 0.05, 0.9))
    reference = _reference(kind, 0.05)
    for a, b in zip(mine, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_adams_first_step_moves_each_weight_by_the_learning_rate():
    params = {"w": np.array([1.0, -1.0, 3.0])}
    Adam(learning_rate=0.01).step(params, {"w": np.array([5.0, -0.2, 1e-3])})
    np.testing.assert_allclose(params["w"], [0.99, -0.99, 2.99], rtol=1e-5)


def test_float32_parameters_stay_float32():
    for optimizer in (SGD(0.1, momentum=0.9, nesterov=True), Adam(0.1)):
        params = {"w": np.ones(3, dtype=np.float32)}
        optimizer.step(params, {"w": np.ones(3, dtype=np.float32)})
        assert params["w"].dtype == np.float32


def test_schedules():
    assert lr_at("constant", 0.1, 7, epochs=10) == 0.1
    assert lr_at("exponential", 0.1, 3, epochs=10, lr_decay=0.5) == pytest.approx(
        0.1 * math.exp(-1.5)
    )
    assert [
        lr_at("step", 1.0, e, epochs=30, lr_step=10, lr_gamma=0.5) for e in (0, 9, 10, 25)
    ] == [1.0, 1.0, 0.5, 0.25]
    assert lr_at("cosine", 0.2, 0, epochs=10) == pytest.approx(0.2)
    assert lr_at("cosine", 0.2, 5, epochs=10) == pytest.approx(0.1)
