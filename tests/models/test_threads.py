"""The thread count a Torch or NumPy model trains on (models/threads.py): asked for, or
measured."""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.models import threads


@pytest.fixture(autouse=True)
def fresh_choices(monkeypatch):
    monkeypatch.setattr(threads, "_CHOSEN", {})
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)


def test_the_faster_count_is_chosen_once_per_key_and_an_asked_count_wins(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    timed = []

    def seconds(n: int) -> float:
        timed.append(n)
        return {1: 0.5, 4: 2.0}[n]

    assert threads.fastest_threads("small", seconds) == 1
    assert threads.fastest_threads("small", seconds) == 1 and timed == [1, 4]  # measured once
    assert threads.fastest_threads("big", lambda n: 1.0 / n) == 4
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.fastest_threads("small", seconds) == 3 and threads.training_threads() == 3


def test_a_short_training_takes_every_core_unmeasured(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    short = threads.WORTH_MEASURING - 1
    assert threads.fastest_threads("k", lambda n: pytest.fail("measured"), short) == 4
    assert threads.fastest_threads("k", lambda n: 1.0 * n, short + 1) == 1  # measured
    assert threads.fastest_threads("k", lambda n: pytest.fail("measured"), short) == 1  # known


def test_one_core_needs_no_measurement(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 1)
    assert threads.fastest_threads("any", lambda n: pytest.fail("measured")) == 1


@pytest.mark.slow
def test_measuring_leaves_the_training_as_it_would_be_on_that_count(monkeypatch):
    pytest.importorskip("torch")
    from hpsearch.models.torch_models import TorchMLP

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((256, 20)).astype(np.float32), np.arange(256) % 4

    def trained() -> TorchMLP:
        # 30 epochs planned (240 steps, worth measuring); two trained.
        model = TorchMLP(hidden=[16], dropout=0.3, epochs=30, batch_size=32, seed=5)
        for _ in range(2):
            model.partial_fit(X, y, classes=np.arange(4))
        return model

    measured = trained()
    monkeypatch.setenv(threads.THREADS_ENV, str(measured.threads_))
    asked = trained()
    assert asked.threads_ == measured.threads_
    for a, b in zip(measured.get_weights().values(), asked.get_weights().values(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert measured.loss_curve_ == asked.loss_curve_


def _numpy_mlp_trained(X, y):
    from hpsearch.models.mlp import MLP

    # Dropout draws from the model's generator: the timed batches must not draw from it.
    model = MLP(depth=1, width=64, dropout=0.3, epochs=30, batch_size=32, seed=5)
    for _ in range(2):
        model.partial_fit(X, y, classes=np.arange(4))
    return model


def test_a_numpy_model_measures_blas_threads_without_changing_its_training(monkeypatch):
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(threads, "cores", lambda: 2)
    timed = []
    real = threads.time_steps

    def time_steps(step, repeats=3):
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        timed.append(blas)  # what NumPy's BLAS was limited to while timing
        return real(step, repeats)

    monkeypatch.setattr("hpsearch.models.base.time_steps", time_steps)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((256, 20)).astype(np.float32), np.arange(256) % 4
    measured = _numpy_mlp_trained(X, y)  # 30 epochs of 8 batches: worth measuring
    assert [set(b) for b in timed] == [{1}, {2}]  # timed on 1 thread, then on every core
    assert measured.threads_ in (1, 2)
    assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {
        measured.threads_
    }  # and NumPy's BLAS trains on the faster
    monkeypatch.setenv(threads.THREADS_ENV, str(measured.threads_))
    asked = _numpy_mlp_trained(X, y)
    assert asked.threads_ == measured.threads_ and len(timed) == 2  # asked: not measured
    for a, b in zip(measured.get_weights().values(), asked.get_weights().values(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert measured.loss_curve_ == asked.loss_curve_
