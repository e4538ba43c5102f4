"""Learning-rate schedules: per batch, step for step the rates of PyTorch's schedulers; per
epoch (schedule_every = "epoch"), the rates of hpsearch 0.1; and the training loops of both
backends train each batch at the rate the schedule gives it."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from hpsearch.models import MODELS
from hpsearch.models.schedules import lr_at
from tests.conftest import require_torch
from tests.datafiles import DEBIAN
from tests.datafiles import require_debian_fashion


def _torch_rates(scheduler_class, epochs: int, batches: int, **options) -> list[float]:
    torch = require_torch()
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = scheduler_class(optimizer, **options)
    rates = []
    for _ in range(epochs * batches):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def _ours(schedule: str, epochs: int, batches: int, **options) -> list[float]:
    return [
        lr_at(schedule, 0.1, e, epochs=epochs, batch=b, batches=batches, **options)
        for e in range(epochs)
        for b in range(batches)
    ]


@pytest.mark.parametrize(("epochs", "batches"), [(1, 100), (15, 7), (3, 1), (2, 469)])
def test_onecycle_is_pytorchs_onecyclelr_step_by_step(epochs, batches):
    torch = require_torch()
    theirs = _torch_rates(
        torch.optim.lr_scheduler.OneCycleLR,
        epochs,
        batches,
        max_lr=0.1,
        total_steps=epochs * batches,
        cycle_momentum=False,  # hpsearch cycles the rate only
    )
    assert _ours("onecycle", epochs, batches) == pytest.approx(theirs, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("epochs", "batches"), [(1, 100), (10, 13), (4, 1)])
def test_cosine_is_pytorchs_cosine_annealing_step_by_step(epochs, batches):
    torch = require_torch()
    theirs = _torch_rates(
        torch.optim.lr_scheduler.CosineAnnealingLR, epochs, batches, T_max=epochs * batches
    )
    assert _ours("cosine", epochs, batches) == pytest.approx(theirs, rel=1e-9, abs=1e-15)


def test_step_is_pytorchs_steplr_and_exponential_the_assignments_once_an_epoch():
    torch = require_torch()
    stepped = _torch_rates(torch.optim.lr_scheduler.StepLR, 30, 1, step_size=10, gamma=0.5)
    ours = _ours("step", 30, 4, lr_step=10, lr_gamma=0.5)
    assert ours[::4] == pytest.approx(stepped)
    assert all(len(set(ours[e * 4 : e * 4 + 4])) == 1 for e in range(30))  # flat in an epoch
    exponential = _ours("exponential", 5, 3, lr_decay=0.5)
    assert exponential == pytest.approx(
        [0.1 * math.exp(-0.5 * e) for e in range(5) for _ in "abc"]
    )


def test_a_fractional_warmup_ramps_over_its_steps_then_leaves_the_schedule_alone():
    plain = _ours("cosine", 4, 10)
    warm = _ours("cosine", 4, 10, warmup_epochs=0.5)  # five steps
    assert [w / p for w, p in zip(warm[:5], plain[:5], strict=True)] == pytest.approx(
        [k / 6 for k in range(1, 6)]
    )
    assert warm[5:] == plain[5:]
    assert _ours("onecycle", 4, 10, warmup_epochs=2) == _ours("onecycle", 4, 10)  # its own


def test_per_epoch_is_how_hpsearch_01_stepped():
    """schedule_every = "epoch": what the studies created by hpsearch 0.1 resume with."""
    lrs = [lr_at("onecycle", 0.1, e, epochs=10, every="epoch") for e in range(10)]
    peak = lrs.index(max(lrs))
    assert peak == 3 and math.isclose(lrs[0], 0.1 / 25) and math.isclose(lrs[peak], 0.1)
    assert lrs[1] == pytest.approx(0.1 / 25 + (0.1 - 0.1 / 25) / 3)  # linear up, by epochs
    assert all(a > b for a, b in zip(lrs[peak:-1], lrs[peak + 1 :], strict=True))
    assert math.isclose(lrs[-1], 0.1 / 25 / 1e4)
    for schedule in ("constant", "cosine", "step"):
        plain = [lr_at(schedule, 0.1, e, epochs=10, every="epoch") for e in range(10)]
        warm = [
            lr_at(schedule, 0.1, e, epochs=10, warmup_epochs=3, every="epoch") for e in range(10)
        ]
        ratios = [w / p for w, p in zip(warm[:3], plain[:3], strict=True)]
        assert ratios == pytest.approx([1 / 4, 2 / 4, 3 / 4]) and warm[3:] == plain[3:]
    # Whatever the batch, the epoch's first rate.
    assert lr_at("cosine", 0.1, 2, epochs=4, batch=5, batches=9, every="epoch") == pytest.approx(
        0.05
    )


def test_the_torch_loop_trains_each_batch_at_onecyclelrs_rate(digits):
    torch = require_torch()
    X, y = digits.split("train", False)
    epochs, batch_size = 3, 100
    model = MODELS["torch.mlp"].build(
        {"hidden": [16], "epochs": epochs, "batch_size": batch_size, "schedule": "onecycle"},
        seed=0,
    )
    model.partial_fit(X, y, classes=digits.classes)  # epoch 0 builds the optimizer
    seen: list[float] = []
    model._optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"])
    )
    for _ in range(1, epochs):
        model.partial_fit(X, y)
    batches = -(-len(X) // batch_size)
    theirs = _torch_rates(
        torch.optim.lr_scheduler.OneCycleLR,
        epochs,
        batches,
        max_lr=model.learning_rate,
        total_steps=epochs * batches,
        cycle_momentum=False,
    )
    assert seen == pytest.approx(theirs[batches:], rel=1e-9)


@pytest.mark.parametrize("every", ["batch", "epoch"])
def test_the_numpy_loop_trains_each_batch_at_the_schedules_rate(digits, monkeypatch, every):
    X, y = digits.split("train", False)
    model = MODELS["numpy.softmax"].build(
        {"epochs": 3, "batch_size": 200, "schedule": "cosine", "schedule_every": every}, seed=0
    )
    model.partial_fit(X, y, classes=digits.classes)  # epoch 0, before the recording
    seen: list[float] = []
    step = model._optimizer.step

    def recording(params, grads):
        seen.append(model._optimizer.learning_rate)
        step(params, grads)

    monkeypatch.setattr(model._optimizer, "step", recording)
    for _ in range(1, 3):
        model.partial_fit(X, y)
    batches = -(-len(X) // 200)
    expected = [
        lr_at("cosine", model.learning_rate, e, epochs=3, batch=b, batches=batches, every=every)
        for e in range(1, 3)
        for b in range(batches)
    ]
    assert seen == pytest.approx(expected)
    assert len(set(seen)) == (2 * batches if every == "batch" else 2)


def _fashion(n_train: int, n_val: int) -> tuple[np.ndarray, ...]:
    """The first images of Debian's real Fashion-MNIST files (training, then validation)."""
    require_debian_fashion()

    def read(name: str, offset: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
        with gzip.open(DEBIAN / name) as f:
            f.read(offset)
            return np.frombuffer(f.read(int(np.prod((n, *shape)))), np.uint8).reshape(n, *shape)

    X = read("train-images-idx3-ubyte.gz", 16, n_train + n_val, (1, 28, 28))
    y = read("train-labels-idx1-ubyte.gz", 8, n_train + n_val, ()).astype(np.int64)
    X = X.astype(np.float32)
    X = (X - X[:n_train].mean()) / X[:n_train].std()  # standardized by the training images
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


@pytest.mark.slow
def test_one_epoch_of_per_batch_onecycle_beats_a_constant_rate_where_per_epoch_crawls():
    """The augmented CNN, one epoch on real Fashion-MNIST: a one-epoch one-cycle stepped per
    epoch runs the whole epoch at lr / 25; stepped per batch it warms up and anneals."""
    require_torch()
    X, y, X_val, y_val = _fashion(4000, 2000)
    recipe = {
        "channels": "16-32",
        "convs_per_block": 2,
        "head": "flatten",
        "hidden": [64],
        "dropout": 0.3,
        "epochs": 1,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 0.003,
        "flip": True,
        "crop_padding": 2,
        "label_smoothing": 0.1,
    }

    def accuracy(**schedule) -> float:
        model = MODELS["torch.cnn"].build({**recipe, **schedule}, seed=0)
        model.partial_fit(X, y, classes=np.arange(10))
        return model.evaluate(X_val, y_val)[1]

    constant = accuracy(schedule="constant")
    per_batch = accuracy(schedule="onecycle")
    per_epoch = accuracy(schedule="onecycle", schedule_every="epoch")
    assert per_batch >= constant > per_epoch, (per_batch, constant, per_epoch)
