"""`hpsearch export`: a study's best configurations as JSON (schema: schemas/export.schema.json).

The file holds everything `hpsearch retrain` needs: the dataset and its split, the model kind,
every constructor argument (fixed and sampled), and the trial's seed.
"""

from __future__ import annotations

import platform
from datetime import UTC
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.errors import UsageError
from hpsearch.pareto import ranked_front
from hpsearch.records import CONFIRM_ATTR
from hpsearch.records import SEED_ATTR
from hpsearch.records import SOURCE_ATTR
from hpsearch.records import THREADS_ATTR
from hpsearch.records import accuracy
from hpsearch.records import best_epoch
from hpsearch.records import complete_best_first
from hpsearch.records import confirm_trial_number
from hpsearch.records import curves

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from hpsearch.spec import StudySpec

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schemas" / "export.schema.json"


def _versions(with_torch: bool) -> dict[str, str]:
    names = ["hpsearch", "optuna", "numpy"] + (["torch"] if with_torch else [])
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return {**found, "python": platform.python_version()}


def schema_problem(doc: Any) -> str | None:
    """`key/path: what is wrong` where the document breaks the shipped JSON Schema, or None."""
    import json

    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(doc)
    )
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    where = where.removeprefix(".") or "(top)"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    return f"{where}: {message}"


def export_json(doc: dict[str, Any]) -> str:
    """The document as written to a file, checked against the shipped JSON Schema first: a
    file `retrain` could not read is never written."""
    import json

    problem = schema_problem(doc)
    if problem is not None:  # a bug in hpsearch: every input was checked before
        raise RuntimeError(f"the export does not follow its schema at {problem}")
    return json.dumps(doc, indent=2) + "\n"


def current_confirm(study: optuna.Study, ranked: list[FrozenTrial]) -> dict[int, dict[str, Any]]:
    """The stored `hpsearch confirm` results by trial, if they still cover the study's top trials.

    A confirm retrains the top K trials by search value; once later trials have entered that
    top K it no longer says which of them is best, and an empty dict is returned.
    """
    results = study.user_attrs.get(CONFIRM_ATTR, {}).get("results", [])
    by_trial = {confirm_trial_number(r): r for r in results}
    if not by_trial or set(by_trial) != {t.number for t in ranked[: len(by_trial)]}:
        return {}
    return by_trial


def export_document(
    study: optuna.Study, spec: StudySpec, storage_url: str, top: int | None, path: str
) -> dict[str, Any]:
    """The export of the `top` (default 1) best complete trials of a study, best first.

    Best means the highest search value, except among the trials a current `hpsearch confirm`
    retrained: those come first, by their mean over the confirm's seeds. In a multi-objective
    study: the Pareto front (`top` of it, if given), the recommended trial first
    (search/pareto.py).
    """
    ranked = complete_best_first(study.get_trials(deepcopy=False))
    if not ranked:
        raise UsageError(
            f"{storage_url}: study {study.study_name!r} has no complete trial yet; run it first"
        )
    if spec.multi_objective:
        ranked, _ = ranked_front(study)
        confirmed: dict[int, dict[str, Any]] = {}
    else:
        confirmed = current_confirm(study, ranked)
        n = len(confirmed)
        ranked[:n] = sorted(ranked[:n], key=lambda t: (-confirmed[t.number]["mean"], t.number))
        top = top or 1
    complete = ranked[:top]
    configs = []
    for rank, trial in enumerate(complete, start=1):
        config = {
            "rank": rank,
            "trial_number": trial.number,
            "val_accuracy": accuracy(trial),
            "params": {**spec.model.fixed, **trial.params},
            "seed": trial.user_attrs[SEED_ATTR],
            "epochs_run": len(curves(trial)["val_accuracy"]),
        }
        config["best_epoch"] = best_epoch(trial)
        if THREADS_ATTR in trial.user_attrs:
            config["threads"] = trial.user_attrs[THREADS_ATTR]
        if spec.multi_objective:
            config["objectives"] = dict(zip(spec.objectives, trial.values, strict=True))
            config["recommended"] = rank == 1
        if trial.number in confirmed:
            r = confirmed[trial.number]
            config["confirm"] = {k: r[k] for k in ("mean", "std", "val_accuracy", "seeds")}
        configs.append(config)
    return {
        "schema_version": SCHEMA_VERSION,
        "study": study.study_name,
        "storage": storage_url,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(spec.model.kind.startswith("torch.")),
        "data": {**spec.data.to_dict(), "seed": spec.seed},
        "model_kind": spec.model.kind,
        **({"model_source": source} if (source := study.user_attrs.get(SOURCE_ATTR)) else {}),
        **({"arrays": arrays} if (arrays := study.user_attrs.get(ARRAYS_ATTR)) else {}),
        "ranked_by": (
            "pareto-1se" if spec.multi_objective else "confirm" if confirmed else "search"
        ),
        "configs": configs,
        "retrain_command": f"hpsearch retrain {path}",
    }
