"""Warm start: what is already known, added to a new study before its first trial.

The source is another hpsearch study in the same storage (its complete trials) or an export
file (its configurations). Each becomes a COMPLETE trial of the new study (Optuna's
`add_trials`) with the same parameters and validation accuracy, marked with `warm_start`
(records.WARM_ATTR): the sampler learns from it, while the budget,
the trial counts, the ranking, the stopping rule and the report count only the trials this
study trains. A configuration that is not a point of the new space (a parameter it lacks, or
a value outside its range or choices) is skipped and counted; parameters the new study does not
search are ignored (it fixes them itself).

The copies carry no per-epoch values, so the pruner does not compare new trials with them: a
source's complete trials are the ones its pruner let finish, the best of its curves, and a
median over them pruned most new trials, good ones too. On the replay tables
(benchmarks/warm_start_replay.py, 50 seeds, six tasks) a warm start with per-epoch values
needed a median 1.80x the trials of a cold start to reach the source's best; without, 0.84x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.records import WARM_ATTR
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first
from hpsearch.records import load_study
from hpsearch.records import portable_model
from hpsearch.space import distributions
from hpsearch.space import fit_problem
from hpsearch.spec import ACCURACY

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import StudySpec


@dataclass(frozen=True)
class Known:
    """One configuration from the source, with what it scored."""

    label: str  # "trial 7" or "rank 2"
    params: dict[str, Any]
    values: dict[str, float]  # by objective name: val_accuracy, and costs where known


@dataclass(frozen=True)
class WarmStart:
    """What a warm start found in its source and added."""

    source: str  # "study 'x'" or "export /path/best.json"
    known: tuple[Known, ...]
    added: int = 0
    skipped: tuple[str, ...] = ()  # "trial 7: lr: got 2.0; allowed ..." per skipped one
    # How the source was measured otherwise ("its model kind is numpy.mlp, here ..."), or "".
    differs: str = ""

    def describe(self) -> str:
        """The line `run` prints, e.g. `warm start from study 'a': 28 trials added, 2 skipped
        (trial 3: no value for momentum)`."""
        line = f"warm start from {self.source}: {self.added} trials added"
        if self.skipped:
            more = ", ..." if len(self.skipped) > 1 else ""
            line += f", {len(self.skipped)} skipped as outside this search space "
            line += f"({self.skipped[0]}{more})"
        if self.differs:
            line += f"; note: {self.differs}"
        return line

    def to_dict(self) -> dict[str, Any]:
        out = {"source": self.source, "added": self.added, "skipped": len(self.skipped)}
        return {**out, "differs": self.differs} if self.differs else out

    def compared_with(self, origin: dict[str, Any], spec: StudySpec) -> WarmStart:
        """This warm start, noting how its source's measurements differ from `spec`'s:
        another model kind, or another dataset, preprocessing or data seed (so its
        accuracies come from another validation split)."""
        mine = {
            "model kind": portable_model({"kind": spec.model.kind})["kind"],
            "data": {**spec.data.to_dict(), "seed": spec.seed},
        }
        theirs = {
            "model kind": portable_model({"kind": origin.get("model_kind", "")})["kind"],
            "data": origin.get("data"),
        }
        notes = []  # a hand-made export may say neither: then nothing is compared
        if origin.get("model_kind") and theirs["model kind"] != mine["model kind"]:
            notes.append(f"its model kind is {theirs['model kind']}, here {mine['model kind']}")
        if isinstance(theirs["data"], dict) and theirs["data"] != mine["data"]:
            changed = sorted(
                k
                for k in {**mine["data"], **(theirs["data"] or {})}
                if (theirs["data"] or {}).get(k) != mine["data"].get(k)
            )
            notes.append(
                f"its data differs in {', '.join(changed)}: its accuracies were measured on "
                "another validation split"
            )
        return replace(self, differs="; ".join(notes))


def warm_source(value: str | Path | None, key: str) -> str | None:
    """A warm start given on the command line or to hpsearch.run: an export file (a path ending
    in .json, from the current folder; returned absolute) or a study name."""
    if value is None:
        return None
    if isinstance(value, Path) or str(value).endswith(".json"):
        path = Path(value).absolute()  # not resolved: a link is named as given
        if path.exists() or path.is_symlink() or isinstance(value, Path) or "/" in str(value):
            return str(path)  # read_source checks it is a regular file
    return str(value)  # a study name, even one ending in .json


def read_source(
    source: str, storage: optuna.storages.BaseStorage, storage_name: str, key: str
) -> tuple[WarmStart, dict[str, Any]]:
    """The source's configurations, and how they were measured (its model kind and data);
    UsageError naming `key` when it cannot be read."""
    import optuna

    is_study = not Path(source).is_absolute() and source in optuna.get_all_study_names(storage)
    if Path(source).is_absolute() or (source.endswith(".json") and not is_study):
        path = Path(source).absolute()
        known, origin = _from_export(path, key)
        return WarmStart(f"export {path}", tuple(known)), origin
    try:
        study, their_spec = load_study(storage, source, storage_name)
    except UsageError as e:
        raise UsageError(f"{key}: {e}") from None
    origin = {
        "model_kind": their_spec.model.kind,
        "data": {**their_spec.data.to_dict(), "seed": their_spec.seed},
    }
    names = study.metric_names or [ACCURACY]
    known = tuple(
        Known(
            f"trial {t.number}",
            dict(t.params),
            dict(zip(names, t.values, strict=True)) | {ACCURACY: accuracy(t)},
        )
        for t in complete_best_first(study.get_trials(deepcopy=False))
    )
    return WarmStart(f"study {source!r}", known), origin


def _from_export(path: Path, key: str) -> tuple[list[Known], dict[str, Any]]:
    from hpsearch.jsonfile import read_json

    allowed = "allowed: a file `hpsearch export` wrote"
    doc = read_json(path, key, allowed)
    configs = doc.get("configs") if isinstance(doc, dict) else None
    if not isinstance(configs, list) or not all(
        isinstance(c, dict) and isinstance(c.get("params"), dict) for c in configs
    ):
        raise UsageError(f"{key}: {path}: configs: has no list of configs with params; {allowed}")
    for i, c in enumerate(configs):
        where = f"{key}: {path}: configs[{i}]"
        if not _is_accuracy(c.get("val_accuracy")):
            raise UsageError(
                f"{where}.val_accuracy: got {c.get('val_accuracy')!r}; allowed: a number from 0 "
                "to 1"
            )
        objectives = c.get("objectives") or {}
        if not isinstance(objectives, dict):
            raise UsageError(f"{where}.objectives: got {objectives!r}; allowed: a table")
        for name, value in objectives.items():
            if not (_is_number(value) and math.isfinite(value)):
                raise UsageError(
                    f"{where}.objectives.{name}: got {value!r}; allowed: a finite number"
                )
    known = [
        Known(
            f"rank {c.get('rank', i + 1)}",
            dict(c["params"]),
            {**c.get("objectives", {}), ACCURACY: float(c["val_accuracy"])},
        )
        for i, c in enumerate(configs)
    ]
    return known, {"model_kind": doc.get("model_kind"), "data": doc.get("data")}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_accuracy(value: Any) -> bool:
    return _is_number(value) and 0.0 <= value <= 1.0  # refuses NaN too


def add(study: optuna.Study, spec: StudySpec, warm: WarmStart) -> WarmStart:
    """Add the source's configurations that fit `spec`'s space to the (new) study."""
    import optuna

    trials, skipped = [], []
    for known in warm.known:
        problem = fit_problem(spec.params, known.params)
        missing = [name for name in spec.objectives if name not in known.values]
        if problem is None and missing:
            problem = f"no {', '.join(missing)} in the source"
        if problem is not None:
            skipped.append(f"{known.label}: {problem}")
            continue
        dists = distributions(spec.params, known.params)
        params = {name: known.params[name] for name in dists}
        trials.append(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                values=[known.values[name] for name in spec.objectives],
                user_attrs={WARM_ATTR: f"{warm.source}, {known.label}"},
            )
        )
    study.add_trials(trials)
    return replace(warm, added=len(trials), skipped=tuple(skipped))
