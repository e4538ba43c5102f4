"""Learning-rate schedules as pure functions of the epoch (0-based), like nanoGPT's get_lr.

constant      lr
exponential   lr * exp(-lr_decay * epoch)                (the assignments' gamma_0 e^(-k t))
step          lr * lr_gamma ** (epoch // lr_step)       (PyTorch's StepLR)
cosine        lr * (1 + cos(pi * epoch / epochs)) / 2   (to 0 at the end, no restarts)
onecycle      up from lr / 25 to lr over the first 30% of the epochs (at least one), then a
              cosine down to lr / 25 / 10**4 at the last epoch: PyTorch's OneCycleLR with its
              defaults, stepped per epoch instead of per batch

warmup_epochs (any schedule but onecycle, which has its own): epoch e < warmup_epochs runs at
(e + 1) / (warmup_epochs + 1) of the schedule's rate, a linear ramp that never starts at 0.
"""

from __future__ import annotations

import math
from typing import Any

SCHEDULES = ("constant", "exponential", "step", "cosine", "onecycle")
ONECYCLE_START = 0.3  # the share of epochs spent going up
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4


def lr_at(
    schedule: str,
    learning_rate: float,
    epoch: int,
    *,
    epochs: int,
    lr_decay: float = 0.0,
    lr_step: int = 10,
    lr_gamma: float = 0.1,
    warmup_epochs: int = 0,
) -> float:
    if schedule != "onecycle" and epoch < warmup_epochs:
        return (
            (epoch + 1)
            / (warmup_epochs + 1)
            * lr_at(
                schedule,
                learning_rate,
                epoch,
                epochs=epochs,
                lr_decay=lr_decay,
                lr_step=lr_step,
                lr_gamma=lr_gamma,
            )
        )
    if schedule == "constant":
        return learning_rate
    if schedule == "exponential":
        return learning_rate * math.exp(-lr_decay * epoch)
    if schedule == "step":
        return learning_rate * lr_gamma ** (epoch // lr_step)
    if schedule == "cosine":
        return learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "onecycle":
        start = learning_rate / ONECYCLE_DIV
        up = max(1, round(ONECYCLE_START * epochs))
        if epoch < up:
            return start + (learning_rate - start) * epoch / up
        end = start / ONECYCLE_FINAL_DIV
        progress = (epoch - up) / max(epochs - 1 - up, 1)
        return end + (learning_rate - end) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
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
        warmup_epochs=getattr(model, "warmup_epochs", 0),  # the Torch kinds have it
    )
