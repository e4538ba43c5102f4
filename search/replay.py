"""Replayable learning curves: a search strategy judged on recorded training, not new training.

A table (`benchmarks/curves/*.npz`, written by `benchmarks/curves/record.py`) holds, for many
configurations drawn from a study's space, every epoch's validation accuracy, validation loss
and seconds, for two or more training seeds. `ReplayTable.answer(params, seed)` gives the curve
of the recorded configuration nearest to `params`: the same categorical choices where it can
(each differing choice costs as much as the whole numeric range), and the nearest numeric values
on the scale the space searches them (log where `log = true`), each range scaled to [0, 1].
Inactive conditional parameters are a choice of their own ("absent").

`ReplayObjective` is an Optuna objective that answers a trial with that curve, epoch by epoch:
it reports each epoch's validation accuracy, asks the pruner, and charges the recorded epochs
and seconds to a `Budget`, so that any Optuna sampler and pruner runs on it unchanged, a
thousand trials in well under a minute. Nothing here trains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from hpsearch.records import DIVERGED_ATTR
from hpsearch.space import is_active
from hpsearch.space import suggest

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import ParamSpec

ABSENT = "(absent)"  # the value of an inactive conditional parameter


@dataclass(frozen=True)
class Curve:
    """One recorded training run: per epoch, validation accuracy, loss and seconds. A run that
    diverged ends early (NaN after its last epoch in the table, cut off here)."""

    val_accuracy: np.ndarray
    val_loss: np.ndarray
    seconds: np.ndarray

    @property
    def epochs(self) -> int:
        return len(self.val_accuracy)


class ReplayTable:
    """A task's recorded curves, and the nearest recorded configuration to any point."""

    def __init__(
        self,
        params: Sequence[ParamSpec],
        configs: Sequence[Mapping[str, Any]],
        val_accuracy: np.ndarray,
        val_loss: np.ndarray,
        seconds: np.ndarray,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """`val_accuracy`, `val_loss`, `seconds`: arrays (configs, seeds, epochs)."""
        self.params = list(params)
        self.configs = [dict(c) for c in configs]
        self.val_accuracy = np.asarray(val_accuracy, dtype=np.float64)
        self.val_loss = np.asarray(val_loss, dtype=np.float64)
        self.seconds = np.asarray(seconds, dtype=np.float64)
        self.meta = dict(meta or {})
        n, self.n_seeds, self.epochs = self.val_accuracy.shape
        if n != len(self.configs):
            raise ValueError(f"{n} curves for {len(self.configs)} configurations")
        self._numeric = [p for p in self.params if p.type != "categorical"]
        self._categorical = [p for p in self.params if p.type == "categorical"]
        self._points = np.array([self._position(c) for c in self.configs]).reshape(n, -1)
        self._choices = np.array([self._labels(c) for c in self.configs], dtype=object).reshape(
            n, -1
        )

    # -- reading and writing ---------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, params: Sequence[ParamSpec]) -> ReplayTable:
        with np.load(path, allow_pickle=False) as f:
            configs = [json.loads(s) for s in f["configs"]]
            meta = json.loads(str(f["meta"]))
            return cls(params, configs, f["val_accuracy"], f["val_loss"], f["seconds"], meta)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            configs=np.array([json.dumps(c, sort_keys=True) for c in self.configs]),
            val_accuracy=self.val_accuracy.astype(np.float32),
            val_loss=self.val_loss.astype(np.float32),
            seconds=self.seconds.astype(np.float32),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )

    # -- the nearest recorded configuration --------------------------------------------------

    def _position(self, config: Mapping[str, Any]) -> list[float]:
        out = []
        for p in self._numeric:
            if p.name not in config:
                out.append(-1.0)  # inactive: far from every active value
                continue
            low, high, v = float(p.low), float(p.high), float(config[p.name])
            if p.log:
                low, high, v = math.log(low), math.log(high), math.log(v)
            out.append((v - low) / (high - low) if high > low else 0.0)
        return out

    def _labels(self, config: Mapping[str, Any]) -> list[str]:
        return [json.dumps(config.get(p.name, ABSENT)) for p in self._categorical]

    def nearest(self, config: Mapping[str, Any]) -> int:
        """The index of the recorded configuration nearest to `config` (the lowest on ties)."""
        numeric = np.array(self._position(config))
        distance = np.zeros(len(self.configs))
        if len(numeric):
            distance += np.abs(self._points - numeric).sum(axis=1)
        if self._categorical:
            labels = np.array(self._labels(config), dtype=object)
            distance += (self._choices != labels).sum(axis=1) * max(1, len(numeric))
        return int(np.argmin(distance))

    def curve(self, index: int, seed: int) -> Curve:
        s = seed % self.n_seeds
        acc = self.val_accuracy[index, s]
        finite = int(np.isfinite(acc).sum())
        return Curve(
            acc[:finite], self.val_loss[index, s, :finite], self.seconds[index, s, :finite]
        )

    def answer(self, config: Mapping[str, Any], seed: int) -> Curve:
        return self.curve(self.nearest(config), seed)

    # -- what a strategy is judged against ---------------------------------------------------

    def final_means(self) -> np.ndarray:
        """Each configuration's last-epoch validation accuracy, mean over seeds (a diverged
        run counts as 0)."""
        last = np.nan_to_num(self.val_accuracy[:, :, -1], nan=0.0)
        return last.mean(axis=1)

    def best_mean(self) -> float:
        return float(self.final_means().max())

    def standard_error(self) -> float:
        """The binomial standard error of the best mean, on the task's validation size."""
        p, n = self.best_mean(), int(self.meta["n_val"])
        return math.sqrt(p * (1 - p) / n)


@dataclass
class Budget:
    """Epochs (and recorded seconds) spent; a study stops when `epochs` reaches `limit`. The
    anytime record: after each trial, (epochs spent, best final accuracy so far)."""

    limit: int
    epochs: int = 0
    seconds: float = 0.0
    anytime: list[tuple[int, float]] = field(default_factory=list)
    best: float = 0.0

    @property
    def spent(self) -> bool:
        return self.epochs >= self.limit

    def finished(self, value: float | None) -> None:
        if value is not None and value > self.best:
            self.best = value
        self.anytime.append((self.epochs, self.best))


class ReplayObjective:
    """An Optuna objective answering each trial from a `ReplayTable`.

    The trial's training seed is the trial number (so repeated configurations see the seed
    noise), its value the last epoch's validation accuracy. Every epoch reported is charged to
    `budget`; a trial is cut short when the budget runs out mid-trial (its epochs still count).
    """

    def __init__(self, table: ReplayTable, budget: Budget, seed_offset: int = 0) -> None:
        self.table = table
        self.budget = budget
        self.seed_offset = seed_offset

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        params = suggest(trial, self.table.params)
        curve = self.table.answer(params, self.seed_offset + trial.number)
        value = None
        try:
            for epoch in range(curve.epochs):
                if self.budget.spent:
                    raise optuna.TrialPruned("budget spent")
                self.budget.epochs += 1
                self.budget.seconds += float(curve.seconds[epoch])
                accuracy = float(curve.val_accuracy[epoch])
                trial.report(accuracy, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}")
            if curve.epochs < self.table.epochs:  # it diverged: a failed trial that counts
                trial.set_user_attr(DIVERGED_ATTR, True)  # toward the budget, as in a study
                raise ArithmeticError("diverged")
            value = float(curve.val_accuracy[-1])
            return value
        finally:
            self.budget.finished(value)


def active_config(params: Sequence[ParamSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` restricted to the parameters active for them (as `suggest` would give)."""
    chosen: dict[str, Any] = {}
    for p in params:
        if p.name in values and is_active(p, chosen):
            chosen[p.name] = values[p.name]
    return chosen
