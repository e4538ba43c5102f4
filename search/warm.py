"""Warm start: what is already known, added to a new study before its first trial.

The source is another hpsearch study in the same storage (its complete trials) or an export
file (its configurations). Each becomes a COMPLETE trial of the new study (Optuna's
`add_trials`) with the same parameters, validation accuracy and per-epoch values, marked with
`warm_start` (records.WARM_ATTR): the sampler and the pruner learn from it, while the budget,
the trial counts, the ranking, the stopping rule and the report count only the trials this
study trains. A configuration that is not a point of the new space (a parameter it lacks, or
a value outside its range or choices) is skipped and counted; parameters the new study does not
search are ignored (it fixes them itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from search.errors import UsageError
from search.records import WARM_ATTR
from search.records import accuracy
from search.records import complete_best_first
from search.records import load_study
from search.space import distributions
from search.space import fit_problem
from search.spec import ACCURACY

if TYPE_CHECKING:
    import optuna

    from search.spec import StudySpec


@dataclass(frozen=True)
class Known:
    """One configuration from the source, with what it scored."""

    label: str  # "trial 7" or "rank 2"
    params: dict[str, Any]
    values: dict[str, float]  # by objective name: val_accuracy, and costs where known
    intermediate: dict[int, float]


@dataclass(frozen=True)
class WarmStart:
    """What a warm start found in its source and added."""

    source: str  # "study 'x'" or "export /path/best.json"
    known: tuple[Known, ...]
    added: int = 0
    skipped: tuple[str, ...] = ()  # "trial 7: lr: got 2.0; allowed ..." per skipped one

    def describe(self) -> str:
        """The line `run` prints, e.g. `warm start from study 'a': 28 trials added, 2 skipped
        (trial 3: no value for momentum)`."""
        line = f"warm start from {self.source}: {self.added} trials added"
        if self.skipped:
            more = ", ..." if len(self.skipped) > 1 else ""
            line += f", {len(self.skipped)} skipped as outside this search space "
            line += f"({self.skipped[0]}{more})"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "added": self.added, "skipped": len(self.skipped)}


def warm_source(value: str | Path | None, key: str) -> str | None:
    """A warm start given on the command line or to search.run: an export file (a path ending
    in .json, from the current folder; returned absolute) or a study name."""
    if value is None:
        return None
    if isinstance(value, Path) or str(value).endswith(".json"):
        path = Path(value).resolve()
        if not path.is_file():
            raise UsageError(f"{key}: {path}: no such file; give an export file or a study name")
        return str(path)
    return str(value)


def read_source(
    source: str, storage: optuna.storages.BaseStorage, storage_name: str, key: str
) -> WarmStart:
    """The source's configurations; UsageError naming `key` when it cannot be read."""
    if source.endswith(".json"):
        return WarmStart(f"export {source}", tuple(_from_export(Path(source), key)))
    try:
        study, _ = load_study(storage, source, storage_name)
    except UsageError as e:
        raise UsageError(f"{key}: {e}") from None
    names = study.metric_names or [ACCURACY]
    known = tuple(
        Known(
            f"trial {t.number}",
            dict(t.params),
            dict(zip(names, t.values, strict=True)) | {ACCURACY: accuracy(t)},
            dict(t.intermediate_values),
        )
        for t in complete_best_first(study.get_trials(deepcopy=False))
    )
    return WarmStart(f"study {source!r}", known)


def _from_export(path: Path, key: str) -> list[Known]:
    allowed = "allowed: a file `hpsearch export` wrote"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{key}: {path}: no such file; {allowed}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{key}: {path}: cannot be read as JSON ({e}); {allowed}") from None
    configs = doc.get("configs") if isinstance(doc, dict) else None

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not isinstance(configs, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("params"), dict)
        and number(c.get("val_accuracy"))
        and all(number(v) for v in (c.get("objectives") or {}).values())
        for c in configs
    ):
        raise UsageError(
            f"{key}: {path}: has no list of configs with params and a numeric val_accuracy; "
            f"{allowed}"
        )
    return [
        Known(
            f"rank {c.get('rank', i + 1)}",
            dict(c["params"]),
            {**c.get("objectives", {}), ACCURACY: float(c["val_accuracy"])},
            {},
        )
        for i, c in enumerate(configs)
    ]


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
                intermediate_values=known.intermediate,
                user_attrs={WARM_ATTR: f"{warm.source}, {known.label}"},
            )
        )
    study.add_trials(trials)
    return WarmStart(warm.source, warm.known, added=len(trials), skipped=tuple(skipped))
