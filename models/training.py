"""The training loop every model shares: mini-batches, divergence checks, the epoch loop.

`train()` is the one epoch loop: the search objective drives it with a callback that reports to
Optuna, and retraining runs it without one, so both see the same early stopping and the same
kept weights. Models expose `partial_fit` (one epoch), `evaluate`, `get_weights`/`set_weights`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING

import numpy as np

from hpsearch.models import whereabouts

if TYPE_CHECKING:
    from hpsearch.models.protocol import Classifier

SAMPLING = ("shuffle", "bootstrap")
# Beyond this any weight is a sign of divergence, long before float32 overflows; stopping here
# saves the epochs a diverging trial would otherwise burn.
MAX_ABS_WEIGHT = 1e6
TRAIN_EVAL_ROWS = 10_000  # training metrics per epoch come from the first this many rows


class TrainingDiverged(ArithmeticError):
    """Training produced a non-finite loss or exploding weights; the message says where."""


def minibatches(
    n: int, batch_size: int, rng: np.random.Generator, sampling: str = "shuffle"
) -> Iterator[np.ndarray]:
    """Index arrays for one epoch of ceil(n / batch_size) batches.

    shuffle: a fresh permutation of range(n), cut into batches (the last may be smaller).
    bootstrap: every batch drawn with replacement (the CIFAR-10 assignment's sampling).
    """
    if sampling == "bootstrap":
        for _ in range(-(-n // batch_size)):
            yield rng.integers(0, n, batch_size)
        return
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def check_finite(loss: float, epoch: int) -> None:
    """Stop at once when the loss is NaN or infinite."""
    if not np.isfinite(loss):
        raise TrainingDiverged(f"training loss became {loss} in epoch {epoch}")


def check_weights(params: dict[str, np.ndarray], epoch: int) -> None:
    for name, value in params.items():
        biggest = float(np.abs(value).max())
        if not biggest <= MAX_ABS_WEIGHT:  # also catches NaN
            raise TrainingDiverged(
                f"weights exploded in epoch {epoch}: max |{name}| = {biggest:.3g}"
            )


@dataclass
class History:
    """Per-epoch metrics of one training run, and the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    weight_norm: list[float] = field(default_factory=list)  # sqrt(sum W**2) over weight matrices
    kept_epoch: int = -1
    # Where the training loss and accuracy come from: "batches" (the model's own running
    # figures over the epoch's batches, `epoch_metrics()`), else "pass" (an evaluation of up to
    # TRAIN_EVAL_ROWS training rows after the epoch).
    train_metrics: str = "pass"

    @property
    def kept_val_accuracy(self) -> float:
        return self.val_accuracy[self.kept_epoch]


def train(
    model: Classifier,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    classes: np.ndarray,
    on_epoch: Callable[[int, History], None] | None = None,
    guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> History:
    """Train `model.epochs` epochs, evaluating on validation after each one.

    With `model.patience` > 0 training stops after that many epochs without a better
    validation accuracy, and the weights of the best epoch are restored; otherwise the final
    weights are kept. `on_epoch(epoch, history)` runs after every epoch (and may raise, e.g. to
    prune). `guard()` wraps the numeric work of each epoch (the search uses it so interrupts
    land only there).
    """
    history = History()
    # A prefix is a view, not a copy; models.data stores training rows in seeded random order,
    # so it is a fair sample.
    X_eval, y_eval = X[:TRAIN_EVAL_ROWS], y[:TRAIN_EVAL_ROWS]
    patience = model.patience
    best_weights = None
    for epoch in range(model.epochs):
        whereabouts.set_epoch(epoch)
        with guard():
            model.partial_fit(X, y, classes=classes)
            own = model.epoch_metrics() if hasattr(model, "epoch_metrics") else None
            train_metrics = own if own is not None else model.evaluate(X_eval, y_eval)
            history.train_metrics = "pass" if own is None else "batches"
            val_metrics = model.evaluate(X_val, y_val)
        history.train_loss.append(train_metrics[0])
        history.train_accuracy.append(train_metrics[1])
        history.val_loss.append(val_metrics[0])
        history.val_accuracy.append(val_metrics[1])
        history.weight_norm.append(model.weight_norm())
        if not np.isfinite(val_metrics[0]):
            raise TrainingDiverged(f"validation loss became {val_metrics[0]} in epoch {epoch}")
        improved = history.kept_epoch < 0 or val_metrics[1] > history.kept_val_accuracy
        if improved or not patience:
            history.kept_epoch = epoch
            if patience:
                best_weights = model.get_weights()
        if on_epoch is not None:
            on_epoch(epoch, history)
        if patience and epoch - history.kept_epoch >= patience:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history
