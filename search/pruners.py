"""hpsearch's own pruners: stop a trial whose learning curve is unlikely to end above the best.

`WilcoxonPruner` (the default since 0.3) makes the decisions of Optuna's WilcoxonPruner on
learning curves, faster, and judging against the best trial that has a curve (see the class).

`CurvePruner` predicts where a running trial's validation accuracy will end from where the
study's complete trials went after the same epoch: at epoch e, each complete trial j gained
`final_j - acc_j(e)` over its remaining epochs. The trial is pruned when even an optimistic
gain (the `quantile` of those gains, 0.9 by default) added to its accuracy now stays below the
best final accuracy so far. The gains are the study's own, so the rule needs no noise model:
a study whose curves keep climbing prunes late, one whose curves flatten early prunes early.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
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


class WilcoxonPruner(BasePruner):
    """Optuna's WilcoxonPruner on learning curves: a trial is pruned when the signed-rank test
    says its validation accuracy epoch by epoch is below the best complete trial's at the same
    epochs (p < `p_threshold`), unless its mean so far is not below the best's. Measured on
    recorded curves, it came within one standard error of each task's best in fewer epochs
    than the median pruner on all six tasks (docs/benchmarks.md).

    Its decisions are those of `optuna.pruners.WilcoxonPruner` (compared in
    tests/search/test_pruners.py), with three differences that are not decisions:
    - The p-value is SciPy's number computed as one array operation where SciPy's exact test
      calls its statistic once per sign flip (fewer than 14 epochs with ties or zeros among
      the differences): about a millisecond where SciPy takes up to half a second an epoch,
      longer than a small model's whole epoch.
    - The trial compared against is the best complete trial *with per-epoch values*: a warm
      start's copies carry none (search/warm.py), and Optuna's class, finding such a best,
      would warn every epoch and prune nothing.
    - It is not experimental (Optuna's class warns so at every study's start).

    Args:
        p_threshold: Prune when the p-value is below this (0 to 1; larger prunes more).
        n_startup_steps: Prune nothing before this many epochs can be compared (at least 2).
    """

    def __init__(self, *, p_threshold: float = 0.1, n_startup_steps: int = 2) -> None:
        if n_startup_steps < 0:
            raise ValueError(f"n_startup_steps must be >= 0, got {n_startup_steps}")
        if not 0.0 <= p_threshold <= 1.0:
            raise ValueError(f"p_threshold must be between 0 and 1, got {p_threshold}")
        self._n_startup_steps = n_startup_steps
        self._p_threshold = p_threshold

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if not trial.intermediate_values:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        best = _best_with_curve(study, maximize)
        if best is None:
            return False
        mine, theirs = trial.intermediate_values, best.intermediate_values
        steps = sorted(set(mine) & set(theirs))
        values = np.array([mine[s] for s in steps], dtype=float)
        best_values = np.array([theirs[s] for s in steps], dtype=float)
        every = np.array(list(mine.values()) + list(theirs.values()), dtype=float)
        if not np.all(np.isfinite(every)) or len(steps) < max(2, self._n_startup_steps):
            return False
        # Means as Optuna sums them (a different summation order could flip an exact tie).
        mean = sum(mine.values()) / len(mine)
        best_mean = sum(theirs.values()) / len(theirs)
        if (mean >= best_mean) if maximize else (mean <= best_mean):
            return False  # Optuna's safety: not pruned while its mean is as good as the best's
        p = signed_rank_p(values - best_values, "less" if maximize else "greater")
        return bool(p < self._p_threshold)


def _best_with_curve(study: optuna.Study, maximize: bool) -> FrozenTrial | None:
    """The study's best trial (one query), else, when it has no per-epoch values, the best of
    those that have them."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    if best.intermediate_values:
        return best
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.intermediate_values and t.value is not None
    ]
    if not complete:
        return None
    pick = max if maximize else min
    return pick(complete, key=lambda t: t.value)


EXACT_MAX = 13  # SciPy's exact test enumerates the 2**n sign flips up to this n


def signed_rank_p(d: np.ndarray, alternative: str) -> float:
    """`scipy.stats.wilcoxon(d, alternative=alternative, zero_method="zsplit").pvalue`, the
    same number. With ties or zeros among at most 13 differences SciPy enumerates the 2**n sign
    flips, calling its statistic once per flip; this computes the same enumeration as one
    array operation, with SciPy's comparison tolerance."""
    import scipy.stats

    d = np.asarray(d, dtype=np.float64)
    magnitudes = np.abs(d)
    zero = d == 0
    if len(d) > EXACT_MAX or not (zero.any() or len(np.unique(magnitudes)) < len(d)):
        return float(scipy.stats.wilcoxon(d, alternative=alternative, zero_method="zsplit").pvalue)
    # The statistic: the rank sum of the positive differences, zeros counting half (zsplit).
    # A flip changes signs, never magnitudes, so the ranks stay those of |d|.
    ranks = scipy.stats.rankdata(magnitudes)
    observed = float(np.sum(ranks * ((d > 0) + 0.5 * zero)))
    kept = _sign_flips(len(d))  # (2**n, n): True where a flip keeps the difference's sign
    positive = np.where(kept, d > 0, d < 0)
    null = np.sum(ranks * (positive + 0.5 * zero), axis=1)
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)  # as scipy.stats.permutation_test
    less = np.count_nonzero(null <= observed + gamma) / len(null)
    greater = np.count_nonzero(null >= observed - gamma) / len(null)
    p = {"less": less, "greater": greater, "two-sided": 2 * min(less, greater)}[alternative]
    return float(min(max(p, 0.0), 1.0))


@functools.cache
def _sign_flips(n: int) -> np.ndarray:
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
