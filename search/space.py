"""The search space: ParamSpecs -> `trial.suggest_*`, with `when` conditions."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.models.constraints import Interval

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import ParamSpec


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


def value_problem(spec: ParamSpec, value: Any) -> str | None:
    """Why `value` is not a value the searched parameter can take, or None."""
    if spec.type == "categorical":
        if any(type(value) is type(c) and value == c for c in spec.choices):
            return None
        return f"got {value!r}; allowed: one of {', '.join(repr(c) for c in spec.choices)}"
    problem = Interval(spec.low, spec.high, integer=spec.type == "int").check(value)
    if problem is not None:
        return problem
    if (
        spec.step is not None
        and abs((value - spec.low) / spec.step - round((value - spec.low) / spec.step)) > 1e-9
    ):
        return f"got {value!r}; allowed: {spec.low!r} plus a multiple of step {spec.step!r}"
    return None


def fit_problem(params: Sequence[ParamSpec], values: Mapping[str, Any]) -> str | None:
    """Why a configuration from elsewhere is not a point of this space, or None: it must give
    every parameter that is active for it, each a value the parameter can take. Values for
    names this space does not search are ignored (they are fixed here)."""
    chosen: dict[str, Any] = {}
    for spec in params:
        if not is_active(spec, chosen):
            continue
        if spec.name not in values:
            return f"no value for {spec.name}"
        problem = value_problem(spec, values[spec.name])
        if problem is not None:
            return f"{spec.name}: {problem}"
        chosen[spec.name] = values[spec.name]
    return None


def distributions(
    params: Sequence[ParamSpec], chosen: Mapping[str, Any]
) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distributions `suggest` would have used for the active parameters of `chosen`."""
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution
    from optuna.distributions import IntDistribution

    out: dict[str, Any] = {}
    for spec in params:
        if spec.name not in chosen or not is_active(spec, chosen):
            continue
        if spec.type == "categorical":
            out[spec.name] = CategoricalDistribution(list(spec.choices))
        elif spec.type == "int":
            step = spec.step or 1
            out[spec.name] = IntDistribution(spec.low, spec.high, log=spec.log, step=step)
        else:
            out[spec.name] = FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)
    return out
