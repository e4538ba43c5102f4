"""Learning-rate schedules as pure functions of the epoch (0-based), like nanoGPT's get_lr.

constant      lr
exponential   lr * exp(-lr_decay * epoch)                (the assignments' gamma_0 e^(-k t))
step          lr * lr_gamma ** (epoch // lr_step)       (PyTorch's StepLR)
cosine        lr * (1 + cos(pi * epoch / epochs)) / 2   (to 0 at the end, no restarts)
"""

from __future__ import annotations

import math
from typing import Any

SCHEDULES = ("constant", "exponential", "step", "cosine")


def lr_at(
    schedule: str,
    learning_rate: float,
    epoch: int,
    *,
    epochs: int,
    lr_decay: float = 0.0,
    lr_step: int = 10,
    lr_gamma: float = 0.1,
) -> float:
    if schedule == "constant":
        return learning_rate
    if schedule == "exponential":
        return learning_rate * math.exp(-lr_decay * epoch)
    if schedule == "step":
        return learning_rate * lr_gamma ** (epoch // lr_step)
    if schedule == "cosine":
        return learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"schedule: got {schedule!r}; allowed: {', '.join(SCHEDULES)}")


def model_lr_at(model: Any, epoch: int) -> float:
    """lr_at with a model's own schedule arguments (every kind has the same names)."""
    return lr_at(
        model.schedule,
        model.learning_rate,
        epoch,
        epochs=model.epochs,
        lr_decay=model.lr_decay,
        lr_step=model.lr_step,
        lr_gamma=model.lr_gamma,
    )
