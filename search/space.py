"""The search space: ParamSpecs -> `trial.suggest_*`, with `when` conditions."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.models.constraints import Interval

if TYPE_CHECKING:
    import optuna

    from hpsearch.param import ParamSpec


def is_active(param: ParamSpec, chosen: dict[str, Any]) -> bool:
    """A parameter is active when every parent in `when` was chosen with a listed value."""
    return all(parent in chosen and chosen[parent] in values for parent, values in param.when)


def suggest(trial: optuna.trial.BaseTrial, params: Sequence[ParamSpec]) -> dict[str, Any]:
    """Ask the trial for every active parameter, in declaration order (parents first).

    Inactive conditional parameters are never suggested, so they are absent from both the
    returned dict and `trial.params`.
    """
    chosen: dict[str, Any] = {}
    for param in params:
        if not is_active(param, chosen):
            continue
        if param.type == "categorical":
            chosen[param.name] = trial.suggest_categorical(param.name, list(param.choices))
        elif param.type == "int":
            chosen[param.name] = trial.suggest_int(
                param.name, param.low, param.high, step=param.step or 1, log=param.log
            )
        else:
            chosen[param.name] = trial.suggest_float(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
    return chosen


def value_problem(param: ParamSpec, value: Any) -> str | None:
    """Why `value` is not a value the searched parameter can take, or None."""
    if param.type == "categorical":
        if any(type(value) is type(c) and value == c for c in param.choices):
            return None
        return f"got {value!r}; allowed: one of {', '.join(repr(c) for c in param.choices)}"
    problem = Interval(param.low, param.high, integer=param.type == "int").check(value)
    if problem is not None:
        return problem
    if (
        param.step is not None
        and abs((value - param.low) / param.step - round((value - param.low) / param.step)) > 1e-9
    ):
        return f"got {value!r}; allowed: {param.low!r} plus a multiple of step {param.step!r}"
    return None


def fit_problem(params: Sequence[ParamSpec], values: Mapping[str, Any]) -> str | None:
    """Why a configuration from elsewhere is not a point of this space, or None: it must give
    every parameter that is active for it, each a value the parameter can take. Values for
    names this space does not search are ignored (they are fixed here)."""
    chosen: dict[str, Any] = {}
    for param in params:
        if not is_active(param, chosen):
            continue
        if param.name not in values:
            return f"no value for {param.name}"
        problem = value_problem(param, values[param.name])
        if problem is not None:
            return f"{param.name}: {problem}"
        chosen[param.name] = values[param.name]
    return None


def distributions(
    params: Sequence[ParamSpec], chosen: Mapping[str, Any]
) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distributions `suggest` would have used for the active parameters of `chosen`."""
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution
    from optuna.distributions import IntDistribution

    out: dict[str, Any] = {}
    for param in params:
        if param.name not in chosen or not is_active(param, chosen):
            continue
        if param.type == "categorical":
            out[param.name] = CategoricalDistribution(list(param.choices))
        elif param.type == "int":
            step = param.step or 1
            out[param.name] = IntDistribution(param.low, param.high, log=param.log, step=step)
        else:
            out[param.name] = FloatDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
    return out
