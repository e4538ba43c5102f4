"""What a study is: frozen dataclasses, built from a study file by search/study_file.py.

The parsed spec is stored with the study (`StudySpec.to_dict()`), and parsing that dict again
gives the same spec, so every later command needs only the storage and the study name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from hpsearch.algorithms import DEFAULT_PRUNER

# What a study can optimise: validation accuracy (maximised; always the first) and, for a
# multi-objective study, what a model costs (minimised): training wall time in seconds, the
# number of trainable weights, and milliseconds to predict 1,000 images.
ACCURACY = "val_accuracy"
COSTS = ("train_seconds", "n_weights", "predict_ms")


@dataclass(frozen=True)
class ParamSpec:
    """One searched constructor argument; the keys mirror `trial.suggest_*`."""

    # The model's constructor argument this parameter sets.
    name: str
    # "float", "int" or "categorical".
    type: str
    # Bounds of a float or int parameter, both included.
    low: float | int | None = None
    high: float | int | None = None
    # Sample on a log scale (low must be > 0; not with step).
    log: bool = False
    # Spacing of the values of a float or int parameter.
    step: float | int | None = None
    # Values of a categorical parameter.
    choices: tuple[Any, ...] = ()
    # Active only when each named parent parameter took one of the listed values.
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high)
            if self.log:
                out["log"] = True
            if self.step is not None:
                out["step"] = self.step
        if self.when:
            out["when"] = {parent: list(values) for parent, values in self.when}
        return out


@dataclass(frozen=True)
class AlgorithmSpec:
    """A sampler or pruner by name, with the keyword arguments of its Optuna class."""

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.options}


@dataclass(frozen=True)
class StopSpec:
    """Stop starting trials once `patience` finished trials in a row have not improved the best
    validation accuracy by more than `min_delta` (a number, or "noise": the standard error of
    the best trial's validation accuracy; search/stopping.py)."""

    patience: int
    min_delta: float | str = "noise"

    def to_dict(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta}


@dataclass(frozen=True)
class DataSpec:
    # A name in models.data.DATASETS.
    dataset: str = "digits"
    # Share of the training data held out for validation.
    val_fraction: float = 0.2
    # Share held out for the final test, for datasets without a test split of their own.
    test_fraction: float = 0.2
    # "standardize", "scale" or "none" (models.data.load_dataset).
    preprocess: str = "standardize"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "preprocess": self.preprocess,
        }


@dataclass(frozen=True)
class ModelSpec:
    # A key of models.MODELS.
    kind: str
    # Constructor arguments passed unchanged to every trial.
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fixed": dict(self.fixed)}


@dataclass(frozen=True)
class StudySpec:
    # The study's name in storage.
    name: str
    # Finished trials the study should have in total (complete, pruned or diverged).
    n_trials: int
    data: DataSpec
    model: ModelSpec
    params: tuple[ParamSpec, ...]
    direction: str = "maximize"
    # Seeds the data split, the sampler and, with the trial number, every trial.
    seed: int = 0
    # Stop starting new trials after this many seconds of one `hpsearch run`.
    timeout: float | None = None
    # A trial past this many seconds is stopped (its training process killed) and fails.
    trial_timeout: float | None = None
    # Stop before the budget once the search has converged; None: run the whole budget.
    stop: StopSpec | None = None
    # Before the first trial, copy the fitting finished trials of this study (same storage) or
    # the configurations of this export file (an absolute path ending in .json).
    warm_start: str | None = None
    # ("val_accuracy",), or accuracy against one or more COSTS: a multi-objective study.
    objectives: tuple[str, ...] = (ACCURACY,)
    # Configurations tried first, exactly: {parameter: value} ([[enqueue]] tables).
    enqueue: tuple[Mapping[str, Any], ...] = ()
    sampler: AlgorithmSpec = AlgorithmSpec("tpe")
    pruner: AlgorithmSpec = AlgorithmSpec(
        DEFAULT_PRUNER["type"], {k: v for k, v in DEFAULT_PRUNER.items() if k != "type"}
    )
    # Where the spec came from, for messages: a file path or "stored study 'x'".
    source: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as TOML-shaped, JSON-compatible data; parse_study() reads it back."""
        study: dict[str, Any] = {
            "name": self.name,
            "n_trials": self.n_trials,
            "direction": self.direction,
            "seed": self.seed,
            "sampler": self.sampler.to_dict(),
            "pruner": self.pruner.to_dict(),
        }
        if self.timeout is not None:
            study["timeout"] = self.timeout
        if self.trial_timeout is not None:
            study["trial_timeout"] = self.trial_timeout
        if self.stop is not None:
            study["stop"] = self.stop.to_dict()
        if self.warm_start is not None:
            study["warm_start"] = self.warm_start
        if self.multi_objective:
            study["objectives"] = list(self.objectives)
        out: dict[str, Any] = {
            "study": study,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "params": {p.name: p.to_dict() for p in self.params},
        }
        if self.enqueue:
            out["enqueue"] = [dict(entry) for entry in self.enqueue]
        return out

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def costs(self) -> tuple[str, ...]:
        return self.objectives[1:]

    def identity(self) -> dict[str, Any]:
        """What must match for a stored study to be resumed with this spec.

        The budget, timeout, stopping rule, sampler and pruner may change between runs; what is
        searched, on which data split, with which model, may not.
        """
        d = self.to_dict()
        return {
            "[study].direction": self.direction,
            "[study].objectives": list(self.objectives),
            "[study].seed": self.seed,
            "[data]": d["data"],
            "[model]": d["model"],
            "[params]": d["params"],
        }
