"""`hpsearch export`: a study's best configurations as JSON (schema: schemas/export.schema.json),
and the checks that read one back for `hpsearch retrain`.

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
from hpsearch.models import MODELS
from hpsearch.models import NETWORK
from hpsearch.models import is_user_code
from hpsearch.models.constraints import Interval
from hpsearch.models.custom import is_custom
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
from hpsearch.spec import DataSpec
from hpsearch.study_file import name_problem
from hpsearch.study_file import parse_configuration

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


# -- reading an export back (retrain) -------------------------------------------------------


def read_export(path: Path) -> dict[str, Any]:
    """The export file, checked as far as retraining depends on it."""
    from hpsearch.jsonfile import read_json

    doc = read_json(path, "", "give a file written by `hpsearch export STUDY`")
    return check_export(doc, path)


def check_export(doc: Any, path: Path | str) -> dict[str, Any]:
    """An export document (a file's or a dict), checked as far as retraining depends on it;
    `path` names it in messages. retrain_document() checks the rest before it trains."""
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        got = doc.get("schema_version") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(
            f"{path}: schema_version: got {got!r}; allowed: {SCHEMA_VERSION} "
            "(a file written by `hpsearch export`)"
        )
    for key in ("data", "model_kind", "configs"):
        if key not in doc:
            raise UsageError(f"{path}: {key}: missing; export the study again")
    kind = doc["model_kind"]
    if not isinstance(kind, str) or not (kind in (*MODELS, NETWORK) or is_custom(kind)):
        raise UsageError(
            f"{path}: model_kind: unknown model {kind!r}; allowed: {', '.join(MODELS)}, or "
            "module:Class / file.py:Class"
        )
    if is_user_code(kind) and "model_source" not in doc:
        raise UsageError(
            f"{path}: model_source: missing for a model of your own ({kind}); without it "
            "retrain cannot check that the code is the code the study searched: export the "
            "study again"
        )
    if not isinstance(doc["configs"], list) or not doc["configs"]:
        raise UsageError(f"{path}: configs: must be a non-empty list")
    # Names from a file are data, never paths: the default output folder is built from them.
    problem = name_problem(doc.get("study"))
    if problem is not None:
        raise UsageError(f"{path}: study: {problem}")
    return doc


_SEED = Interval(0, 2**32 - 1, integer=True)  # NumPy and torch seeds: 32 bits
_TRIAL_NUMBER = Interval(0, None, integer=True)  # also the study seed's constraint
_THREADS = Interval(1, None, integer=True)


def check_config(path: Path, config: dict[str, Any], rank: int) -> None:
    key = f"configs[{rank - 1}]"
    for name in ("seed", "val_accuracy", "trial_number"):
        if name not in config:
            raise UsageError(f"{path}: {key}.{name}: missing; export again")
    for name, constraint in (("seed", _SEED), ("trial_number", _TRIAL_NUMBER)):
        problem = constraint.check(config[name])
        if problem is not None:
            raise UsageError(f"{path}: {key}.{name}: {problem}")
    if "threads" in config:
        problem = _THREADS.check(config["threads"])
        if problem is not None:
            raise UsageError(f"{path}: {key}.threads: {problem}")


def check_configuration(doc: dict[str, Any], config: dict[str, Any], source: str) -> DataSpec:
    """Check the data settings and every argument with the study-file validator."""
    data, params = doc["data"], config.get("params")
    if not isinstance(params, dict) or not isinstance(data, dict):
        raise UsageError(f"{source}: params and data must be JSON objects")
    problem = _TRIAL_NUMBER.check(data.get("seed"))  # the study seed: a whole number >= 0
    if problem is not None:
        raise UsageError(f"{source}: data.seed: {problem}")
    without_seed = {k: v for k, v in data.items() if k != "seed"}
    data_spec, _ = parse_configuration(
        without_seed, {"kind": doc["model_kind"], "fixed": params}, source
    )
    return data_spec
