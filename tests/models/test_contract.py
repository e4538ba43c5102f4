"""Every NumPy model kind through the same checks (scikit-learn's parametrize_with_checks idea)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.models import MODELS
from hpsearch.models.regularizers import penalty
from hpsearch.models.training import TrainingDiverged

NUMPY_KINDS = [k for k in MODELS if k.startswith("numpy.")]
# Settings under which each kind learns the small problems below quickly.
QUICK = {
    "numpy.softmax": {"learning_rate": 0.5},
    "numpy.linear_svm": {"learning_rate": 0.1},
    "numpy.perceptron": {"learning_rate": 0.1},
    "numpy.mlp": {"learning_rate": 0.1, "hidden": [32]},
}


def _problem(n=100, d=8, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X, rng.integers(0, c, n), c


def build(kind, seed=0, **params):
    return MODELS[kind].build({**QUICK[kind], **params}, seed)


@pytest.fixture(params=NUMPY_KINDS)
def kind(request):
    return request.param


def test_fit_returns_self_with_float32_weights_and_right_shapes(kind):
    X, y, c = _problem()
    model = build(kind, epochs=2)
    assert model.fit(X, y) is model
    assert all(v.dtype == np.float32 for v in model.weights_.values())
    assert model.decision_function(X).shape == (len(X), c)
    assert model.predict(X).shape == (len(X),)
    assert 0.0 <= model.score(X, y) <= 1.0


def test_n_partial_fits_equal_fit_and_inputs_are_unchanged(kind):
    X, y, c = _problem()
    X_before, y_before = X.copy(), y.copy()
    fitted = build(kind, epochs=3, seed=1).fit(X, y)
    stepwise = build(kind, epochs=3, seed=1)
    for _ in range(3):
        assert stepwise.partial_fit(X, y, classes=np.arange(c)) is stepwise
    for name, value in fitted.weights_.items():
        np.testing.assert_array_equal(value, stepwise.weights_[name])
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize("extra", [{}, {"sampling": "bootstrap"}, {"optimizer": "adam"}])
def test_same_seed_same_weights_other_seed_other_weights(kind, extra):
    X, y, _ = _problem()
    if kind == "numpy.mlp":
        extra = {**extra, "dropout": 0.3}
    a, b, other = (build(kind, seed=s, epochs=3, **extra).fit(X, y) for s in (5, 5, 6))
    for name in a.weights_:
        np.testing.assert_array_equal(a.weights_[name], b.weights_[name])
    assert any(not np.array_equal(a.weights_[n], other.weights_[n]) for n in a.weights_)


def test_overfits_twenty_samples(kind):
    X, y, _ = _problem(n=20, d=30, c=4, seed=3)
    model = build(kind, epochs=300, batch_size=5).fit(X, y)
    assert model.score(X, y) == 1.0


@pytest.mark.parametrize("kind", [k for k in NUMPY_KINDS if k != "numpy.perceptron"])
def test_stronger_l2_gives_smaller_weights(kind):
    # Not for the perceptron: its criterion has no margin and is scale-invariant, so its weight
    # norm is set by the number of mistake-driven updates, not by an optimum that L2 trades
    # against; measured norms for strengths 0, 0.01, 0.1, 1 were 0.17, 0.21, 0.12, 0.14.
    X, y, _ = _problem(n=200, d=10)
    norms = []
    for strength in (0.0, 0.01, 0.1):
        model = build(kind, reg="l2", reg_strength=strength, epochs=30).fit(X, y)
        norms.append(
            math.sqrt(sum(float(np.sum(model.weights_[w] ** 2)) for w in model._weight_names()))
        )
    assert norms[0] > norms[1] > norms[2]


def test_penalty_is_added_for_weights_and_never_for_biases(kind):
    X, y, c = _problem(n=30)
    model = build(kind, reg="l2", reg_strength=0.5, epochs=1).fit(X, y)
    for name in model.weights_:
        model.weights_[name] += 0.25  # non-zero biases too
    regularized = model.loss_and_grads(X, np.searchsorted(model.classes_, y))[0]
    model.reg = "none"
    plain = model.loss_and_grads(X, np.searchsorted(model.classes_, y))[0]
    weights = {w: model.weights_[w] for w in model._weight_names()}
    assert not any(w.startswith("b") for w in weights)
    assert regularized - plain == pytest.approx(penalty("l2", 0.5, weights)[0], rel=1e-5)


def test_a_huge_learning_rate_stops_training_with_a_reason(kind):
    X, y, _ = _problem()
    model = build(kind, learning_rate=1e30, epochs=5)
    with pytest.raises(TrainingDiverged, match="epoch 0"):
        model.fit(X * 100, y)


def test_bad_arguments_are_refused_in_fit_with_their_name(kind):
    X, y, _ = _problem()
    for bad in ({"batch_size": 0}, {"reg": "l3"}, {"optimizer": "rmsprop"}, {"momentum": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            build(kind, **bad).fit(X, y)


def test_initial_softmax_loss_is_close_to_ln_c():
    X, y, c = _problem(n=500, d=20, c=10)
    model = MODELS["numpy.softmax"].build({"learning_rate": 1e-12}, seed=0)
    model.partial_fit(X, y, classes=np.arange(c))  # an epoch with lr 1e-12 changes nothing
    assert model.evaluate(X, y)[0] == pytest.approx(math.log(10), abs=0.01)


def test_init_options():
    X, y, c = _problem(n=10, d=400)
    for init, std in (("he", math.sqrt(2 / 400)), ("xavier", math.sqrt(2 / 403))):
        model = build("numpy.softmax", init=init, learning_rate=1e-12, epochs=1).fit(X, y)
        assert np.std(model.weights_["W"]) == pytest.approx(std, rel=0.1)
    model = build(
        "numpy.mlp",
        init="normal",
        init_mean=0.1,
        init_std=0.1,
        learning_rate=1e-12,
        epochs=1,
        hidden=[300],
    ).fit(X, y)
    assert np.mean(model.weights_["W1"]) == pytest.approx(0.1, abs=0.01)
    assert np.std(model.weights_["W1"]) == pytest.approx(0.1, rel=0.05)


def test_hidden_widths_in_every_form():
    X, y, c = _problem(d=6)
    for hidden, widths in (([7, 5], [7, 5]), (9, [9]), ("8-4-3", [8, 4, 3]), ([], [])):
        model = build("numpy.mlp", hidden=hidden, epochs=1).fit(X, y)
        shapes = [model.weights_[f"W{i}"].shape for i in range(1, len(widths) + 2)]
        assert shapes == list(zip([6, *widths], [*widths, c], strict=True))
    model = build("numpy.mlp", hidden=[99], depth=3, width=10, epochs=1).fit(X, y)
    assert [model.weights_[f"W{i}"].shape[1] for i in (1, 2, 3)] == [10, 10, 10]
    with pytest.raises(ValueError, match="hidden"):
        build("numpy.mlp", hidden="10-x").fit(X, y)


# -- the public protocol, over every kind (NumPy and Torch) -----------------------------------

ALL_QUICK = {
    **QUICK,
    "torch.logistic": {"learning_rate": 0.5},
    "torch.mlp": {"learning_rate": 0.1, "hidden": [32], "dropout": 0.0},
    "torch.cnn": {"learning_rate": 0.05, "channels": [4], "hidden": [8], "dropout": 0.0},
}


@pytest.fixture(params=list(MODELS))
def any_kind(request):
    if request.param.startswith("torch."):
        from tests.conftest import require_torch

        require_torch()
    return request.param


def _data(kind, n=60, seed=0):
    """Flat features, or 1 x 4 x 4 images for the CNN."""
    X, y, c = _problem(n=n, d=16, seed=seed)
    return (X.reshape(n, 1, 4, 4) if kind == "torch.cnn" else X), y, c


def _build(kind, seed=0, **params):
    return MODELS[kind].build({**ALL_QUICK[kind], **params}, seed)


@pytest.mark.slow
def test_public_methods_give_the_same_answers_in_any_order(any_kind):
    X, y, c = _data(any_kind)
    X2, y2, _ = _data(any_kind, seed=1)
    model = _build(any_kind, epochs=2).fit(X, y)
    expected = model.evaluate(X2.copy(), y2.copy())  # arrays it has never seen
    model.score(X2, y2)
    model.decision_function(X2)
    model.predict(X2)
    assert model.evaluate(X2, y2) == expected
    assert model.score(X2, y2) == pytest.approx(expected[1])


def test_training_after_predicting_on_the_same_arrays_uses_the_real_labels(any_kind):
    X0, y0, c = _data(any_kind, seed=2)
    X, y, _ = _data(any_kind)
    classes = np.arange(c)
    probed, clean = _build(any_kind, seed=3), _build(any_kind, seed=3)
    probed.partial_fit(X0, y0, classes=classes)
    probed.predict(X)  # a new array, first seen without labels
    probed.partial_fit(X, y, classes=classes)
    clean.partial_fit(X0, y0, classes=classes)
    clean.partial_fit(X.copy(), y.copy(), classes=classes)
    a, b = probed.get_weights(), clean.get_weights()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_same_seed_same_weights_and_n_partial_fits_equal_fit(any_kind):
    X, y, c = _data(any_kind)
    fitted = _build(any_kind, seed=1, epochs=3).fit(X, y)
    stepwise = _build(any_kind, seed=1, epochs=3)
    for _ in range(3):
        assert stepwise.partial_fit(X, y, classes=np.arange(c)) is stepwise
    other = _build(any_kind, seed=2, epochs=3).fit(X, y)
    a, b, o = fitted.get_weights(), stepwise.get_weights(), other.get_weights()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert any(not np.array_equal(a[n], o[n]) for n in a)
    assert fitted.predict(X).shape == (len(X),)
    assert fitted.decision_function(X).shape == (len(X), c)


def test_sklearn_style_constraints_are_read_without_sklearns_private_module():
    """A class's scikit-learn-style `_parameter_constraints`: any listed constraint may hold."""
    import numbers

    from sklearn.linear_model import SGDClassifier

    from hpsearch.models.constraints import SklearnConstraint

    either = SklearnConstraint("Mine", "x", [None, numbers.Integral, "boolean"])
    assert either.check(None) is None and either.check(3) is None and either.check(True) is None
    assert either.check(0.5) == (
        "got 0.5; allowed: None or an instance of 'Integral' or a boolean"
    )
    # scikit-learn's own constraint objects answer through their public is_satisfied_by.
    alpha = SklearnConstraint("SGD", "alpha", SGDClassifier._parameter_constraints["alpha"])
    assert alpha.check(0.1) is None
    assert alpha.check(-1.0).startswith("got -1.0; allowed: a float in the range [0.0, inf)")
    loss = SklearnConstraint("SGD", "loss", SGDClassifier._parameter_constraints["loss"])
    assert loss.check("hinge") is None and loss.check("nope").startswith("got 'nope'; allowed:")
