"""`hpsearch confirm`: the top configurations trained again with new seeds; mean and spread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.arrays import for_stored
from hpsearch.errors import UsageError
from hpsearch.fitting import fitted
from hpsearch.fitting import short
from hpsearch.models.threads import requested_threads
from hpsearch.objective import derive_seed
from hpsearch.records import CONFIRM_ATTR
from hpsearch.records import SOURCE_ATTR
from hpsearch.records import THREADS_ATTR
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first
from hpsearch.records import locate_spec
from hpsearch.records import study_threads
from hpsearch.runner import load_data

if TYPE_CHECKING:
    import optuna

    from hpsearch.models.data import Dataset
    from hpsearch.spec import StudySpec


@dataclass(frozen=True)
class ConfirmResult:
    """One configuration retrained with new seeds: its validation accuracy per seed."""

    trial_number: int
    search_val_accuracy: float
    params: dict[str, Any]
    seeds: list[int]
    val_accuracy: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.val_accuracy))

    @property
    def std(self) -> float:
        """The sample standard deviation (0 for one seed)."""
        n = len(self.val_accuracy)
        return float(np.std(self.val_accuracy, ddof=1)) if n > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """As stored with the study (records.CONFIRM_ATTR) and printed by --format json."""
        return {
            "trial_number": self.trial_number,
            "search_val_accuracy": self.search_val_accuracy,
            "params": self.params,
            "seeds": self.seeds,
            "val_accuracy": self.val_accuracy,
            "mean": self.mean,
            "std": self.std,
        }


def confirm_results(
    study: optuna.Study, spec: StudySpec, data: Dataset, top: int, repeats: int, progress: bool
) -> list[ConfirmResult]:
    """Retrain the `top` best configurations with `repeats` new seeds each; best mean first."""
    results = []
    for trial in complete_best_first(study.get_trials(deepcopy=False))[:top]:
        params = {**spec.model.fixed, **trial.params}
        # The trial's thread count (the study's), unless $HPSEARCH_THREADS says otherwise.
        threads = (
            requested_threads()
            or trial.user_attrs.get(THREADS_ATTR)
            or study_threads(study.user_attrs)
        )
        seeds = [derive_seed(spec.seed, trial.number, 1 + r) for r in range(repeats)]
        accuracies = []
        for i, seed in enumerate(seeds):
            label = f"trial {trial.number} seed {i + 1}/{repeats}"
            fit = (spec.model.kind, params, seed, data, label, progress, threads)
            with fitted(*fit) as (_, history):
                accuracies.append(short(history.kept_val_accuracy))
        results.append(ConfirmResult(trial.number, accuracy(trial), params, seeds, accuracies))
    results.sort(key=lambda r: -r.mean)
    return results


def confirm(
    study: optuna.Study, spec: StudySpec, top: int, repeats: int, progress: bool, data: Any = None
) -> list[ConfirmResult]:
    """`hpsearch confirm`: the results, best mean first, also stored with the study. `data`:
    the arrays a study made from arrays in Python needs (search/arrays.py)."""
    if not complete_best_first(study.get_trials(deepcopy=False)):
        raise UsageError(f"study {study.study_name!r} has no complete trial yet; run it first")
    spec = locate_spec(spec, study.user_attrs.get(SOURCE_ATTR))
    spec = for_stored(spec, study.user_attrs.get(ARRAYS_ATTR), data, spec.source)
    data = load_data(spec.data, spec.seed, f"stored study {study.study_name!r}")
    results = confirm_results(study, spec, data, top, repeats, progress)
    stored = {
        "top": top,
        "repeats": repeats,
        "results": [r.to_dict() for r in results],
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    study.set_user_attr(CONFIRM_ATTR, stored)
    return results
