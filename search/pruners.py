"""hpsearch's own pruner: stop a trial whose learning curve is unlikely to end above the best.

`CurvePruner` predicts where a running trial's validation accuracy will end from where the
study's complete trials went after the same epoch: at epoch e, each complete trial j gained
`final_j - acc_j(e)` over its remaining epochs. The trial is pruned when even an optimistic
gain (the `quantile` of those gains, 0.9 by default) added to its accuracy now stays below the
best final accuracy so far. The gains are the study's own, so the rule needs no noise model:
a study whose curves keep climbing prunes late, one whose curves flatten early prunes early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


class CurvePruner(BasePruner):
    """Prune a trial whose optimistic final accuracy stays below the best so far.

    Args:
        n_startup_trials: Prune nothing before this many trials are complete.
        n_warmup_steps: Prune no trial before this epoch.
        quantile: Which of the complete trials' gains counts as optimistic (0 to 1).
    """

    def __init__(
        self, n_startup_trials: int = 3, n_warmup_steps: int = 0, quantile: float = 0.9
    ) -> None:
        if n_startup_trials < 1:
            raise ValueError(f"n_startup_trials must be >= 1, got {n_startup_trials}")
        if n_warmup_steps < 0:
            raise ValueError(f"n_warmup_steps must be >= 0, got {n_warmup_steps}")
        if not 0.0 <= quantile <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {quantile}")
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.quantile = quantile

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < self.n_startup_trials:
            return False
        optimistic = trial.intermediate_values[step] + gain(complete, step, self.quantile)
        return optimistic < best_final(complete)


def _final(trial: FrozenTrial) -> float | None:
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


def best_final(complete: list[FrozenTrial]) -> float:
    finals = [f for f in (_final(t) for t in complete) if f is not None]
    return max(finals) if finals else float("-inf")


def gain(complete: list[FrozenTrial], step: int, quantile: float) -> float:
    """The `quantile` of what complete trials gained after `step`; infinite when none reached
    it (nothing to judge by, so nothing is pruned)."""
    gains = [
        _final(t) - t.intermediate_values[step] for t in complete if step in t.intermediate_values
    ]
    return float(np.quantile(gains, quantile)) if gains else float("inf")
