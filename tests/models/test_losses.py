from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.models.losses import LOSSES
from tests.gradcheck import numerical_gradient
from tests.gradcheck import rel_error


def _reference(name: str, s: np.ndarray, label: int) -> float:
    """One sample at a time, straight from each definition."""
    others = [s[j] for j in range(len(s)) if j != label]
    if name == "softmax":
        return -math.log(math.exp(s[label]) / sum(math.exp(v) for v in s))
    if name == "hinge":
        return max(0.0, 1 + max(others) - s[label])
    if name == "perceptron":
        return max(0.0, max(others) - s[label])
    if name == "weston_watkins":
        return sum(max(0.0, 1 + v - s[label]) for v in others)
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(LOSSES))
def test_each_loss_matches_its_loop_reference(name):
    rng = np.random.default_rng(1)
    scores, y = rng.standard_normal((9, 5)), rng.integers(0, 5, 9)
    loss, _ = LOSSES[name](scores, y)
    expected = sum(_reference(name, s, label) for s, label in zip(scores, y, strict=True)) / 9
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
def test_each_loss_gradient_against_centred_differences(name):
    rng = np.random.default_rng(2)
    scores, y = 2 * rng.standard_normal((8, 4)), rng.integers(0, 4, 8)
    _, dscores = LOSSES[name](scores, y)
    numeric = numerical_gradient(lambda: LOSSES[name](scores, y)[0], scores)
    bound = 1e-7 if name == "softmax" else 1e-4  # cs231n: kinks allow 1e-4
    assert rel_error(dscores, numeric) < bound
    assert dscores.dtype == scores.dtype


@pytest.mark.parametrize(
    "name, expected", [("hinge", 1.0), ("weston_watkins", 4.0), ("perceptron", 0.0)]
)
def test_hinge_losses_at_zero_weights(name, expected):
    scores = np.zeros((6, 5))  # zero weights and biases give zero scores
    assert LOSSES[name](scores, np.arange(6) % 5)[0] == expected


def test_hinge_forms_differ_where_several_classes_violate_the_margin():
    scores, y = np.array([[0.0, 0.5, 0.4]]), np.array([0])
    assert LOSSES["hinge"](scores, y)[0] == pytest.approx(1.5)  # only the worst rival counts
    assert LOSSES["weston_watkins"](scores, y)[0] == pytest.approx(2.9)  # every rival counts


def test_softmax_loss_is_stable_for_huge_scores():
    loss, dscores = LOSSES["softmax"](np.array([[1e4, 0.0, -1e4]]), np.array([0]))
    assert loss == pytest.approx(0.0) and np.isfinite(dscores).all()
