"""Stop when the search has converged: `[study] stop = { patience = 20, min_delta = "noise" }`.

Walking the finished trials in trial-number order, a trial improves the search when its
validation accuracy beats the best so far by more than `min_delta`; pruned and diverged trials
never do. Once `patience` finished trials in a row have not improved it, no new trial starts.
`min_delta = "noise"` is the standard error of the best validation accuracy: the seed-to-seed
standard deviation of a stored `hpsearch confirm` when there is one (its best configuration's),
else the binomial sqrt(p (1 - p) / n_val) of the best accuracy p on n_val validation images.

Every worker applies the rule to the same stored trials, so all come to the same decision; the
first to reach it stores it with the study (STOP_ATTR), and a worker that sees it stored with
the rule it runs stops too. A rerun with the same rule stops at once; a longer patience goes on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.records import CONFIRM_ATTR
from hpsearch.records import accuracy
from hpsearch.records import counts_toward_budget

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from hpsearch.spec import StopSpec

STOP_ATTR = "hpsearch_stopped"


def binomial_noise(accuracy: float, n_val: int) -> float:
    """The standard error of an accuracy measured on n_val images."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / max(n_val, 1))


def confirm_noise(study_attrs: Mapping[str, Any]) -> float | None:
    """The seed-to-seed standard deviation of the best configuration in a stored confirm."""
    results = study_attrs.get(CONFIRM_ATTR, {}).get("results", [])
    repeated = [r for r in results if len(r.get("val_accuracy", [])) > 1]
    return float(repeated[0]["std"]) if repeated else None


@dataclass(frozen=True)
class Decision:
    after: int  # finished trials when the search stopped
    best: float
    delta: float
    noise: bool  # whether delta came from min_delta = "noise"
    patience: int

    def reason(self) -> str:
        beyond = (
            f"beyond the validation noise (±{self.delta:.4f})"
            if self.noise
            else f"by more than {self.delta:g}"
        )
        return f"no improvement {beyond} in {self.patience} trials"

    def to_dict(self, rule: StopSpec) -> dict[str, Any]:
        return {"after": self.after, "reason": self.reason(), "rule": rule.to_dict()}


def decide(
    trials: Iterable[FrozenTrial], rule: StopSpec, n_val: int, study_attrs: Mapping[str, Any]
) -> Decision | None:
    """The stop decision the finished trials call for, or None to go on."""
    finished = sorted((t for t in trials if counts_toward_budget(t)), key=lambda t: t.number)
    best, since = -math.inf, 0
    fixed_noise = confirm_noise(study_attrs) if rule.min_delta == "noise" else None
    delta = 0.0
    for position, t in enumerate(finished, start=1):
        if rule.min_delta == "noise":
            noise = fixed_noise
            delta = noise if noise is not None else binomial_noise(max(best, 0.0), n_val)
        else:
            delta = float(rule.min_delta)
        if t.state.name == "COMPLETE" and (best == -math.inf or accuracy(t) > best + delta):
            best, since = accuracy(t), 0
        else:
            since += 1
        if since >= rule.patience:
            return Decision(position, best, delta, rule.min_delta == "noise", rule.patience)
    return None


def stored_decision(study_attrs: Mapping[str, Any], rule: StopSpec) -> dict[str, Any] | None:
    """A decision another worker stored with the same rule."""
    stored = study_attrs.get(STOP_ATTR)
    return stored if stored and stored.get("rule") == rule.to_dict() else None
