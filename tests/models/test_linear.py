from __future__ import annotations

import math

import numpy as np
import pytest

from models.linear import LinearClassifier
from models.losses import softmax_loss
from models.regularizers import penalty
from models.training import TrainingDiverged
from tests.gradcheck import numerical_gradient
from tests.gradcheck import rel_error


def _softmax_loss_loop(scores: np.ndarray, y: np.ndarray) -> float:
    """Reference: one sample at a time, straight from the definition."""
    total = 0.0
    for s, label in zip(scores, y, strict=True):
        total += -math.log(math.exp(s[label]) / sum(math.exp(v) for v in s))
    return total / len(y)


def _problem(n=7, d=5, c=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n), c


def test_softmax_loss_matches_the_loop_reference():
    rng = np.random.default_rng(1)
    scores, y = rng.standard_normal((9, 5)), rng.integers(0, 5, 9)
    loss, _ = softmax_loss(scores, y)
    assert loss == pytest.approx(_softmax_loss_loop(scores, y), rel=1e-12)


def test_softmax_loss_gradient_against_centred_differences():
    rng = np.random.default_rng(2)
    scores, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    _, dscores = softmax_loss(scores, y)
    numeric = numerical_gradient(lambda: softmax_loss(scores, y)[0], scores)
    assert rel_error(dscores, numeric) < 1e-7


def test_softmax_loss_is_stable_for_huge_scores():
    loss, dscores = softmax_loss(np.array([[1e4, 0.0, -1e4]]), np.array([0]))
    assert loss == pytest.approx(0.0) and np.isfinite(dscores).all()


def _float64_model(reg: str, seed: int = 0) -> tuple[LinearClassifier, np.ndarray, np.ndarray]:
    X, y, c = _problem(seed=seed)
    model = LinearClassifier(reg=reg, reg_strength=0.3, seed=seed)
    model.partial_fit(X.astype(np.float32), y, classes=np.arange(c))
    rng = np.random.default_rng(seed + 10)
    # Weights of order 1 keep L1's kink at 0 far from every entry.
    model.params_ = {
        "W": rng.choice([-1, 1], (X.shape[1], c)) * rng.uniform(0.2, 1, (5, c)),
        "b": rng.standard_normal(c),
    }
    return model, X, y


@pytest.mark.parametrize("reg", ["none", "l1", "l2"])
def test_model_gradient_with_each_regularizer(reg):
    model, X, y = _float64_model(reg)
    _, grads = model.loss_and_grads(X, y)
    for name, param in model.params_.items():
        numeric = numerical_gradient(lambda: model.loss_and_grads(X, y)[0], param)
        bound = 1e-7 if reg != "l1" else 1e-6
        assert rel_error(grads[name], numeric) < bound, name


def test_penalties_follow_the_assignment_definitions_on_weights_only():
    W = np.array([[1.0, -2.0], [0.5, 0.0]])
    assert penalty("l1", 0.1, {"W": W})[0] == pytest.approx(0.1 * 3.5)
    assert penalty("l2", 0.1, {"W": W})[0] == pytest.approx(0.1 * (1 + 4 + 0.25))
    np.testing.assert_allclose(penalty("l2", 0.1, {"W": W})[1]["W"], 0.2 * W)
    np.testing.assert_allclose(penalty("l1", 0.1, {"W": W})[1]["W"], 0.1 * np.sign(W))
    assert penalty("none", 0.1, {"W": W}) == (0.0, {})
    model, X, y = _float64_model("l2")
    data_only = LinearClassifier(reg="none")
    data_only.params_ = model.params_
    difference = model.loss_and_grads(X, y)[0] - data_only.loss_and_grads(X, y)[0]
    assert difference == pytest.approx(0.3 * np.sum(model.params_["W"] ** 2))  # no bias term


def test_initial_softmax_loss_is_close_to_ln_c():
    X, y, c = _problem(n=500, d=20, c=10)
    model = LinearClassifier(learning_rate=1e-12)  # effectively untrained after one epoch
    model.partial_fit(X.astype(np.float32), y, classes=np.arange(c))
    loss, _ = model.evaluate(X.astype(np.float32), y)
    assert loss == pytest.approx(math.log(10), abs=0.01)


def test_overfits_twenty_samples():
    X, y, c = _problem(n=20, d=30, c=4, seed=3)
    model = LinearClassifier(learning_rate=0.5, batch_size=5, epochs=200).fit(
        X.astype(np.float32), y
    )
    assert model.score(X.astype(np.float32), y) == 1.0


def test_stronger_l2_gives_smaller_weights():
    X, y, _ = _problem(n=200, d=10, c=3, seed=4)
    X = X.astype(np.float32)
    norms = [
        np.linalg.norm(
            LinearClassifier(learning_rate=0.05, reg="l2", reg_strength=s, epochs=30)
            .fit(X, y)
            .params_["W"]
        )
        for s in (0.0, 0.01, 0.1)
    ]
    assert norms[0] > norms[1] > norms[2]


def test_same_seed_same_weights_other_seed_other_weights():
    X, y, _ = _problem(n=100, d=8, c=3)
    X = X.astype(np.float32)
    a, b, other = (LinearClassifier(epochs=3, seed=s).fit(X, y) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.params_["W"], b.params_["W"])
    assert not np.array_equal(a.params_["W"], other.params_["W"])
    assert a.params_["W"].dtype == np.float32


def test_epochs_of_partial_fit_equal_fit_and_inputs_are_unchanged():
    X, y, c = _problem(n=100, d=8, c=3)
    X = X.astype(np.float32)
    X_before = X.copy()
    fitted = LinearClassifier(epochs=4, seed=1).fit(X, y)
    stepwise = LinearClassifier(epochs=4, seed=1)
    for _ in range(4):
        assert stepwise.partial_fit(X, y, classes=np.arange(c)) is stepwise
    np.testing.assert_array_equal(fitted.params_["W"], stepwise.params_["W"])
    np.testing.assert_array_equal(X, X_before)


def test_labels_that_are_not_0_to_c_minus_1():
    X, y, _ = _problem(n=60, d=6, c=3)
    labels = np.array([10, 20, 30])[y]
    model = LinearClassifier(epochs=5).fit(X.astype(np.float32), labels)
    assert set(model.predict(X.astype(np.float32))) <= {10, 20, 30}


def test_a_non_finite_loss_stops_training():
    X, y, _ = _problem(n=50, d=6, c=3)
    model = LinearClassifier(learning_rate=1e38, epochs=5)
    with pytest.raises(TrainingDiverged, match="epoch"):
        model.fit(X.astype(np.float32) * 100, y)


def test_bad_arguments_are_refused_in_fit_with_their_name():
    X, y, _ = _problem()
    with pytest.raises(ValueError, match="batch_size"):
        LinearClassifier(batch_size=0).fit(X.astype(np.float32), y)
    with pytest.raises(ValueError, match="reg"):
        LinearClassifier(reg="l3").fit(X.astype(np.float32), y)
