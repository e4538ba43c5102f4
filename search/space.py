"""The search space: ParamSpecs -> `trial.suggest_*`, and the sampler and pruner of a study."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from search.algorithms import PRUNERS
from search.algorithms import SAMPLERS
from search.algorithms import build
from search.errors import UsageError

if TYPE_CHECKING:
    import optuna

    from search.study_file import ParamSpec
    from search.study_file import StudySpec


def is_active(spec: ParamSpec, chosen: dict[str, Any]) -> bool:
    """A parameter is active when every parent in `when` was chosen with a listed value."""
    return all(parent in chosen and chosen[parent] in values for parent, values in spec.when)


def suggest(trial: optuna.trial.BaseTrial, params: Sequence[ParamSpec]) -> dict[str, Any]:
    """Ask the trial for every active parameter, in declaration order (parents first).

    Inactive conditional parameters are never suggested, so they are absent from both the
    returned dict and `trial.params`.
    """
    chosen: dict[str, Any] = {}
    for spec in params:
        if not is_active(spec, chosen):
            continue
        if spec.type == "categorical":
            chosen[spec.name] = trial.suggest_categorical(spec.name, list(spec.choices))
        elif spec.type == "int":
            chosen[spec.name] = trial.suggest_int(
                spec.name, spec.low, spec.high, step=spec.step or 1, log=spec.log
            )
        else:
            chosen[spec.name] = trial.suggest_float(
                spec.name, spec.low, spec.high, step=spec.step, log=spec.log
            )
    return chosen


def grid_values(spec: ParamSpec) -> list[Any] | None:
    """Every value of a parameter, or None when it has infinitely many (float without step)."""
    if spec.type == "categorical":
        return list(spec.choices)
    if spec.type == "int":
        return list(range(spec.low, spec.high + 1, spec.step or 1))
    if spec.step is None:
        return None
    n = int((spec.high - spec.low) / spec.step + 1e-9)
    return [round(spec.low + i * spec.step, 12) for i in range(n + 1)]


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded. GridSampler gets the grid of every parameter."""
    extra: dict[str, Any] = {"seed": seed}
    if spec.sampler.type == "grid":
        grid = {}
        for p in spec.params:
            values = grid_values(p)
            if values is None:
                raise UsageError(
                    f"{spec.source}: [params].{p.name}: the grid sampler needs a finite set of "
                    'values; add step, or use type = "categorical" with choices'
                )
            grid[p.name] = values
        extra["search_space"] = grid
    return build(SAMPLERS[spec.sampler.type], dict(spec.sampler.options), **extra)


def make_pruner(spec: StudySpec, seed: int = 0) -> optuna.pruners.BasePruner:
    """The study's pruner (pruners draw no random numbers; `seed` keeps one signature)."""
    return build(PRUNERS[spec.pruner.type], dict(spec.pruner.options))
