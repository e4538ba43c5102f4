"""What `hpsearch studies` and `hpsearch show` report, as values (the CLI formats them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.arrays import portable_dataset
from hpsearch.pareto import ranked_front
from hpsearch.records import SEED_ATTR
from hpsearch.records import SPEC_ATTR
from hpsearch.records import WARM_ATTR
from hpsearch.records import accuracy
from hpsearch.records import best_epoch
from hpsearch.records import complete_best_first
from hpsearch.records import curves
from hpsearch.records import finished_count
from hpsearch.records import last_update
from hpsearch.records import own_trials
from hpsearch.records import seconds
from hpsearch.records import state_counts
from hpsearch.records import study_threads
from hpsearch.stopping import STOP_ATTR

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import StudySpec


@dataclass(frozen=True)
class StudyRow:
    """One study of a database: `hpsearch studies`."""

    study: str
    model: str | None
    dataset: str | None
    complete: int
    pruned: int
    failed: int
    running: int
    best: float | None
    last_update: str | None  # in the reader's zone, with its UTC offset


def list_studies(storage: optuna.storages.BaseStorage) -> list[StudyRow]:
    import optuna

    rows = []
    for summary in optuna.get_all_study_summaries(storage=storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        counts = state_counts(trials)
        spec = summary.user_attrs.get(SPEC_ATTR, {})
        ranked = complete_best_first(trials)  # Optuna's best_trial counts warm-start copies
        best = accuracy(ranked[0]) if ranked else None
        rows.append(
            StudyRow(
                study=summary.study_name,
                model=spec.get("model", {}).get("kind"),
                dataset=spec.get("data", {}).get("dataset"),
                complete=counts["COMPLETE"],
                pruned=counts["PRUNED"],
                failed=counts["FAIL"],
                running=counts["RUNNING"],
                best=best,
                last_update=last_update(trials),
            )
        )
    return rows


@dataclass(frozen=True)
class TrialRow:
    trial_number: int
    val_accuracy: float
    seconds: float
    params: dict[str, Any]  # the searched parameters (inactive conditional ones absent)


@dataclass(frozen=True)
class FrontRow:
    """A trial on the Pareto front of a multi-objective study."""

    trial_number: int
    values: dict[str, float]  # by objective name: val_accuracy, then the costs
    params: dict[str, Any]
    recommended: bool


@dataclass(frozen=True)
class BestTrial:
    trial_number: int
    val_accuracy: float
    params: dict[str, Any]  # every constructor argument, fixed and searched
    seed: int | None
    seconds: float
    epochs: int
    best_epoch: int | None
    curves: dict[str, list[float]]  # per epoch: train/val loss and accuracy, weight norm


@dataclass(frozen=True)
class StudyDetail:
    """One study: `hpsearch show`."""

    study: str
    model: str
    dataset: str
    budget: int
    finished: int
    states: dict[str, int]
    searched: list[str]  # the searched parameters' names, in the study file's order
    best: BestTrial | None
    top: list[TrialRow]
    n_complete: int
    stopped: dict[str, Any] | None  # the stopping rule's decision, if the search stopped early
    warm: dict[str, Any] | None  # what a warm start added: {source, added, skipped}
    objectives: list[str]
    front: list[FrontRow]  # multi-objective studies: the Pareto front, recommended first
    recommended_because: str | None  # why the first row of `front` is recommended
    train_seconds: float  # the sum over this study's trials
    wall_seconds: float  # from its first trial's start to its last trial's end
    threads: int | None = None  # the thread count decided when the study was created


def describe_study(study: optuna.Study, spec: StudySpec, top: int = 0) -> StudyDetail:
    """`top`: how many of the best complete trials `top` lists."""
    trials = study.get_trials(deepcopy=False)
    own = own_trials(trials)
    starts = [t.datetime_start for t in own if t.datetime_start]
    ends = [t.datetime_complete for t in own if t.datetime_complete]
    complete = complete_best_first(trials)
    best = None
    if complete:
        t = complete[0]
        per_epoch = curves(t)
        best = BestTrial(
            trial_number=t.number,
            val_accuracy=accuracy(t),
            params={**spec.model.fixed, **t.params},
            seed=t.user_attrs.get(SEED_ATTR),
            seconds=seconds(t),
            epochs=len(per_epoch.get("val_accuracy", [])),
            best_epoch=best_epoch(t),
            curves=per_epoch,
        )
    counts = state_counts(trials)
    pareto, chosen = ranked_front(study) if spec.multi_objective else ([], None)
    return StudyDetail(
        study=study.study_name,
        model=spec.model.kind,
        dataset=portable_dataset(spec.data.dataset),
        budget=spec.n_trials,
        finished=finished_count(trials),
        states={
            state: counts[state] for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "SURPLUS")
        },
        searched=[p.name for p in spec.params],
        best=best,
        top=[TrialRow(t.number, accuracy(t), seconds(t), dict(t.params)) for t in complete[:top]],
        n_complete=len(complete),
        stopped=_still_stopped(study.user_attrs.get(STOP_ATTR), finished_count(trials)),
        warm=study.user_attrs.get(WARM_ATTR),
        objectives=list(spec.objectives),
        front=[
            FrontRow(
                t.number,
                dict(zip(spec.objectives, t.values, strict=True)),
                dict(t.params),
                i == 0,
            )
            for i, t in enumerate(pareto)
        ],
        recommended_because=chosen.reason(spec.costs) if chosen else None,
        train_seconds=sum(seconds(t) for t in own),
        threads=study_threads(study.user_attrs),
        wall_seconds=(max(ends) - min(starts)).total_seconds() if starts and ends else 0.0,
    )


def _still_stopped(decision: dict[str, Any] | None, finished: int) -> dict[str, Any] | None:
    """The stopping rule's stored decision, unless the study ran on past it (its rule was
    removed from the study file, and a later run went on to the budget)."""
    if decision is None or finished > int(decision.get("after", finished)):
        return None
    return decision
