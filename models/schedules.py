"""Learning-rate schedules as pure functions of the training step, like nanoGPT's get_lr.

A step is one batch: step t of T = epochs * batches (batches per epoch). Which schedules move
with every batch and which once an epoch:

constant      lr
exponential   lr * exp(-lr_decay * epoch)                (the assignments' gamma_0 e^(-k t), t the
              epoch: per epoch, always)
step          lr * lr_gamma ** (epoch // lr_step)       (PyTorch's StepLR: per epoch, always)
cosine        lr * (1 + cos(pi * t / T)) / 2            (PyTorch's CosineAnnealingLR with
              T_max = T, eta_min = 0, stepped every batch)
onecycle      PyTorch's OneCycleLR with its defaults, stepped every batch: a cosine up from
              lr / 25 to lr over the first 30% of the steps, then a cosine down to
              lr / 25 / 10**4 at the last step (the learning rate only: momentum is not cycled)

warmup_epochs (any schedule but onecycle, which has its own; may be fractional): step
t < W = warmup_epochs * batches runs at (t + 1) / (W + 1) of the schedule's rate, a linear
ramp that never starts at 0.

schedule_every = "epoch" keeps the rate of the whole epoch at the value of its first batch,
with onecycle's ramp counted in epochs (up over round(0.3 * epochs) epochs, at least one,
linearly): how every schedule stepped in hpsearch 0.1. A study created by 0.1 resumes with it:
its stored study file has no schedule_every, which hpsearch.records reads as "epoch".
"""

from __future__ import annotations

import math
from typing import Any

SCHEDULES = ("constant", "exponential", "step", "cosine", "onecycle")
SCHEDULE_EVERY = ("batch", "epoch")
ONECYCLE_START = 0.3  # the share of steps spent going up
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25.0, 1e4


def lr_at(
    schedule: str,
    learning_rate: float,
    epoch: int,
    *,
    epochs: int,
    batch: int = 0,
    batches: int = 1,
    lr_decay: float = 0.0,
    lr_step: int = 10,
    lr_gamma: float = 0.1,
    warmup_epochs: float = 0,
    every: str = "batch",
) -> float:
    """The rate of batch `batch` (0-based) of epoch `epoch` (0-based), `batches` a epoch."""
    if every == "epoch":
        return _per_epoch(
            schedule, learning_rate, epoch, epochs, lr_decay, lr_step, lr_gamma, warmup_epochs
        )
    if every != "batch":
        raise ValueError(f"schedule_every: got {every!r}; allowed: batch, epoch")
    step, steps = epoch * batches + batch, epochs * batches
    rate = _base(schedule, learning_rate, epoch, step, steps, lr_decay, lr_step, lr_gamma)
    warmup_steps = warmup_epochs * batches
    if schedule != "onecycle" and step < warmup_steps:
        rate *= (step + 1) / (warmup_steps + 1)
    return rate


def _base(
    schedule: str,
    learning_rate: float,
    epoch: int,
    step: int,
    steps: int,
    lr_decay: float,
    lr_step: int,
    lr_gamma: float,
) -> float:
    if schedule == "constant":
        return learning_rate
    if schedule == "exponential":
        return learning_rate * math.exp(-lr_decay * epoch)
    if schedule == "step":
        return learning_rate * lr_gamma ** (epoch // lr_step)
    if schedule == "cosine":
        return learning_rate * 0.5 * (1 + math.cos(math.pi * step / steps))
    if schedule == "onecycle":
        return _onecycle(learning_rate, step, steps)
    raise ValueError(f"schedule: got {schedule!r}; allowed: {', '.join(SCHEDULES)}")


def _onecycle(max_lr: float, step: int, steps: int) -> float:
    """torch.optim.lr_scheduler.OneCycleLR's rate at `step` of `steps` (its two phases, cosine
    annealing in both, the phase ends at pct_start * steps - 1 and steps - 1 as it sets them)."""
    initial = max_lr / ONECYCLE_DIV
    final = initial / ONECYCLE_FINAL_DIV
    up_end = ONECYCLE_START * steps - 1
    if step <= up_end:
        start, end, share = initial, max_lr, step / up_end
    else:
        start, end, share = max_lr, final, (step - up_end) / (steps - 1 - up_end)
    return end + (start - end) / 2 * (math.cos(math.pi * share) + 1)


def _per_epoch(
    schedule: str,
    learning_rate: float,
    epoch: int,
    epochs: int,
    lr_decay: float,
    lr_step: int,
    lr_gamma: float,
    warmup_epochs: float,
) -> float:
    """Every schedule once an epoch, as in hpsearch 0.1 (schedule_every = "epoch")."""
    if schedule == "onecycle":
        start = learning_rate / ONECYCLE_DIV
        up = max(1, round(ONECYCLE_START * epochs))
        if epoch < up:
            return start + (learning_rate - start) * epoch / up
        end = start / ONECYCLE_FINAL_DIV
        progress = (epoch - up) / max(epochs - 1 - up, 1)
        return end + (learning_rate - end) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    rate = _base(schedule, learning_rate, epoch, epoch, epochs, lr_decay, lr_step, lr_gamma)
    if epoch < warmup_epochs:
        rate *= (epoch + 1) / (warmup_epochs + 1)
    return rate


def model_lr_at(model: Any, epoch: int, batch: int = 0, batches: int = 1) -> float:
    """lr_at with a model's own schedule arguments (every kind has the same names)."""
    return lr_at(
        model.schedule,
        model.learning_rate,
        epoch,
        epochs=model.epochs,
        batch=batch,
        batches=batches,
        lr_decay=model.lr_decay,
        lr_step=model.lr_step,
        lr_gamma=model.lr_gamma,
        warmup_epochs=getattr(model, "warmup_epochs", 0),  # the Torch kinds have it
        every=model.schedule_every,
    )


def steps_every_batch(model: Any) -> bool:
    """Whether the model's rate can change within an epoch (else it is set once an epoch)."""
    if model.schedule_every == "epoch":
        return False
    return model.schedule in ("cosine", "onecycle") or getattr(model, "warmup_epochs", 0) > 0
