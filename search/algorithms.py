"""Samplers and pruners by the names a study file uses, and a study's own, built from its spec.

Options are the keyword arguments of the Optuna class, restricted to scalar values (a TOML file
cannot hold a callable). `seed` is never an option: it always comes from the study seed.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.models.lazy import import_object

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import ParamSpec
    from hpsearch.spec import StudySpec

# Arguments that take Python objects or that hpsearch sets itself.
_NOT_OPTIONS = frozenset(
    {
        "seed",
        "search_space",
        "gamma",
        "weights",
        "constraints_func",
        "independent_sampler",
        "x0",
        "source_trials",
    }
)


@dataclass(frozen=True)
class Algorithm:
    """An Optuna sampler or pruner class and the extra packages it needs."""

    target: str  # "module:Class", imported on first use (models/lazy.py)
    needs: tuple[str, ...] = ()  # import names; the error tells which to pip install

    def load(self) -> type:
        return import_object(self.target)

    def missing_packages(self) -> list[str]:
        return [p for p in self.needs if importlib.util.find_spec(p) is None]

    def options(self) -> dict[str, inspect.Parameter]:
        params = inspect.signature(self.load()).parameters
        return {k: p for k, p in params.items() if k not in _NOT_OPTIONS}


SAMPLERS: dict[str, Algorithm] = {
    "tpe": Algorithm("optuna.samplers:TPESampler"),
    "random": Algorithm("optuna.samplers:RandomSampler"),
    "grid": Algorithm("optuna.samplers:GridSampler"),
    "cmaes": Algorithm("optuna.samplers:CmaEsSampler", needs=("cmaes",)),
    "qmc": Algorithm("optuna.samplers:QMCSampler", needs=("scipy",)),
    "gp": Algorithm("optuna.samplers:GPSampler", needs=("torch", "scipy")),
}

PRUNERS: dict[str, Algorithm] = {
    "median": Algorithm("optuna.pruners:MedianPruner"),
    "percentile": Algorithm("optuna.pruners:PercentilePruner"),
    "successive_halving": Algorithm("optuna.pruners:SuccessiveHalvingPruner"),
    "hyperband": Algorithm("optuna.pruners:HyperbandPruner"),
    "none": Algorithm("optuna.pruners:NopPruner"),
    # hpsearch's own (search/pruners.py); "wilcoxon" decides as Optuna's WilcoxonPruner does.
    "curve": Algorithm("hpsearch.pruners:CurvePruner"),
    "wilcoxon": Algorithm("hpsearch.pruners:WilcoxonPruner"),
}

# Optuna cannot prune a multi-objective study (Trial.report raises); hpsearch asks these
# pruners itself, on the stored per-epoch validation accuracy (search/objective.py). Hyperband
# keeps studies of its own and needs a real single-objective study.
MULTI_OBJECTIVE_PRUNERS = ("median", "percentile", "successive_halving", "none")

# Used when a study file has no `pruner`: a trial is pruned when its learning curve is, epoch
# by epoch, significantly below the best trial's (p < 0.1: four epochs below at the least). On the
# recorded curves of six tasks it came within one standard error of each task's best in
# 0.66-0.90x the epochs of the median pruner below, and fewer than any other strategy measured
# on five of them (docs/benchmarks.md).
DEFAULT_PRUNER: dict[str, Any] = {"type": "wilcoxon", "p_threshold": 0.1, "n_startup_steps": 2}
# The default until 0.2, and still the default of a multi-objective study (which the Wilcoxon
# test cannot judge): no pruning before 5 trials have finished or before epoch 3.
MEDIAN_PRUNER: dict[str, Any] = {"type": "median", "n_startup_trials": 5, "n_warmup_steps": 3}


def option_type_problem(param: inspect.Parameter, value: Any) -> str | None:
    """Why `value` does not fit the type of the option's default, or None.

    Optuna does not check most option types at construction; a wrong type would fail only
    inside a trial, so it is caught here.
    """
    default = param.default
    if isinstance(value, dict | list):
        return f"got {value!r}; allowed: a single value"
    if isinstance(default, bool) and not isinstance(value, bool):
        return f"got {value!r}; allowed: true or false"
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"got {value!r}; allowed: a whole number"
        if value < 0 <= default:  # counts: start-up trials, warm-up steps, candidates
            return f"got {value!r}; allowed: a whole number >= 0"
    if isinstance(default, float) and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return f"got {value!r}; allowed: a number"
    return None


def build(algorithm: Algorithm, options: dict[str, Any], **extra: Any) -> Any:
    """Instantiate; TypeError / ValueError from Optuna's own checks propagate to the caller."""
    return algorithm.load()(**options, **extra)


def grid_values(param: ParamSpec) -> list[Any] | None:
    """Every value of a parameter, or None when it has infinitely many (float without step)."""
    if param.type == "categorical":
        return list(param.choices)
    if param.type == "int":
        return list(range(param.low, param.high + 1, param.step or 1))
    if param.step is None:
        return None
    n = int((param.high - param.low) / param.step + 1e-9)
    return [round(param.low + i * param.step, 12) for i in range(n + 1)]


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


# The samplers and pruners that look only into finished trials (Optuna 5.1's code): with them a
# worker reads the trials in flight by their state alone (search/trial_reads.py). Not here:
# the grid sampler (running trials' grid ids), TPE with constant_liar (running trials'
# parameters), CMA-ES and GP (left as Optuna reads them), successive halving and hyperband
# (running trials' rungs).
_FINISHED_ONLY_SAMPLERS = ("tpe", "random", "qmc")
_FINISHED_ONLY_PRUNERS = ("wilcoxon", "curve", "median", "percentile", "none")


def reads_finished_only(spec: StudySpec) -> bool:
    """Whether the study's sampler and pruner read nothing of trials in flight but their
    state (search/trial_reads.py)."""
    if spec.sampler.options.get("constant_liar"):
        return False
    return (
        spec.sampler.type in _FINISHED_ONLY_SAMPLERS and spec.pruner.type in _FINISHED_ONLY_PRUNERS
    )


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The study's pruner (pruners draw no random numbers: no seed)."""
    return build(PRUNERS[spec.pruner.type], dict(spec.pruner.options))
