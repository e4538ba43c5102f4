"""The search space: ParamSpecs -> `trial.suggest_*`, with `when` conditions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    import optuna

    from search.spec import ParamSpec


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
