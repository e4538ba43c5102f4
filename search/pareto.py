"""Accuracy against cost: multi-objective studies (`[study].objectives`).

A trial's values are its validation accuracy (maximised) and one or more costs (minimised),
measured by search/costs.py. The Pareto front is this study's complete trials that no other trial
beats on every
objective. The recommended configuration is the one-standard-error rule's: among the front,
the cheapest (first cost, then the next) whose validation accuracy is within one standard
error of the best, the error being the binomial sqrt(p(1 - p) / n_val) of the best accuracy,
or the seed-to-seed spread of a stored `confirm` when there is one (search/stopping.py).

Optuna cannot prune a multi-objective study (Trial.report raises). The objective asks the
study's own pruner (median, percentile or successive halving) itself, with `AccuracyView`:
the study as a single-objective pruner sees it, maximising validation accuracy, each trial's
intermediate values its stored per-epoch validation accuracy (the `curves` attr). So the rule
is exactly Optuna's, on the same numbers. Optuna's own intermediate values stay empty in these
studies: Optuna's samplers read a pruned trial's as single-objective and would fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from hpsearch import optuna_internals as internals
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first
from hpsearch.records import curves
from hpsearch.stopping import binomial_noise
from hpsearch.stopping import confirm_noise

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

VAL_SIZE_ATTR = "hpsearch_val_size"  # validation images, for the standard error


class AccuracyView:
    """A multi-objective study as Optuna's single-objective pruners read it: direction
    maximise, each trial's intermediate values the per-epoch validation accuracy."""

    def __init__(self, study: optuna.Study) -> None:
        from optuna.study import StudyDirection

        self._study = study
        # Optuna's successive halving stores its rungs through the study's storage.
        self._storage = internals.storage_of(study)
        self.direction = StudyDirection.MAXIMIZE

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        trials = self._study.get_trials(deepcopy=False, states=states)
        return [self.with_curve(t, curves(t).get("val_accuracy")) for t in trials]

    @staticmethod
    def with_curve(trial: FrozenTrial, val_accuracy: Sequence[float] | None) -> FrozenTrial:
        """A copy whose intermediate values are this per-epoch validation accuracy (a warm
        start's copy keeps the ones it came with)."""
        import copy

        out = copy.copy(trial)
        if val_accuracy:
            out.intermediate_values = dict(enumerate(val_accuracy))
        return out


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Values (accuracy, *costs): `a` is at least as good as `b` everywhere, better somewhere."""
    at_least = a[0] >= b[0] and all(x <= y for x, y in zip(a[1:], b[1:], strict=True))
    return at_least and tuple(a) != tuple(b)


def front(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """This study's complete trials no other one dominates, most accurate first."""
    complete = complete_best_first(trials)
    return [t for t in complete if not any(dominates(o.values, t.values) for o in complete)]


@dataclass(frozen=True)
class Recommendation:
    trial: FrozenTrial
    best_accuracy: float
    standard_error: float
    source: str  # "binomial, 6000 validation images" or "confirm's seed-to-seed spread"

    def reason(self, costs: Sequence[str]) -> str:
        return (
            f"the cheapest by {costs[0]} within one standard error (±{self.standard_error:.4f}, "
            f"{self.source}) of the best validation accuracy {self.best_accuracy:.4f}"
        )


def recommend(
    pareto: Sequence[FrozenTrial], study_attrs: Mapping[str, Any]
) -> Recommendation | None:
    """The one-standard-error rule over the front (see the module's docstring)."""
    if not pareto:
        return None
    best = max(accuracy(t) for t in pareto)
    spread = confirm_noise(study_attrs)
    if spread is not None:
        error, source = spread, "confirm's seed-to-seed spread"
    else:
        n_val = int(study_attrs.get(VAL_SIZE_ATTR, 0))
        error = binomial_noise(best, n_val) if n_val else 0.0
        source = f"binomial, {n_val} validation images"
    close = [t for t in pareto if accuracy(t) >= best - error]
    chosen = min(close, key=lambda t: (*t.values[1:], -accuracy(t), t.number))
    return Recommendation(chosen, best, error, source)


def ranked_front(study: optuna.Study) -> tuple[list[FrozenTrial], Recommendation | None]:
    """The front with the recommended trial first, then the rest most accurate first."""
    pareto = front(study.get_trials(deepcopy=False))
    chosen = recommend(pareto, study.user_attrs)
    if chosen is None:
        return [], None
    return [chosen.trial] + [t for t in pareto if t.number != chosen.trial.number], chosen
