"""Pieces of the training loop that every NumPy model shares."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class TrainingDiverged(ArithmeticError):
    """Training produced a non-finite loss; the message says where."""


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of one epoch: a fresh permutation of range(n), cut into batches.

    The last batch is smaller when batch_size does not divide n.
    """
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def check_finite(loss: float, epoch: int) -> None:
    """Stop at once when the loss is NaN or infinite."""
    if not np.isfinite(loss):
        raise TrainingDiverged(f"training loss became {loss} in epoch {epoch}")
