"""`hpsearch retrain` (one exported configuration, then the test split once) and
`hpsearch confirm` (the top configurations again with new seeds, mean and spread)."""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.arrays import HOW
from hpsearch.arrays import check_same
from hpsearch.arrays import for_stored
from hpsearch.arrays import materialize
from hpsearch.errors import UsageError
from hpsearch.exports import SCHEMA_VERSION
from hpsearch.exports import export_json
from hpsearch.exports import schema_problem
from hpsearch.models import MODELS
from hpsearch.models import NETWORK
from hpsearch.models import Classifier
from hpsearch.models import is_user_code
from hpsearch.models import resolve
from hpsearch.models.constraints import Interval
from hpsearch.models.custom import is_custom
from hpsearch.models.custom_classifier import CustomClassifier
from hpsearch.models.threads import THREADS_ENV
from hpsearch.models.training import History
from hpsearch.models.training import train
from hpsearch.models.usercode import UserCodeError
from hpsearch.objective import derive_seed
from hpsearch.records import CONFIRM_ATTR
from hpsearch.records import SOURCE_ATTR
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first
from hpsearch.records import locate_model_source
from hpsearch.records import locate_spec
from hpsearch.runner import load_data
from hpsearch.spec import DataSpec
from hpsearch.storage import mask_password
from hpsearch.study_file import name_problem
from hpsearch.study_file import parse_configuration

if TYPE_CHECKING:
    import optuna

    from hpsearch.models.data import Dataset
    from hpsearch.spec import StudySpec


def _short(x: float) -> float:
    return float(f"{x:.6g}")  # the precision trials store their accuracies with


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Torch trains on `threads` CPU threads inside (None: as configured)."""
    if threads is None:
        yield
        return
    before = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ[THREADS_ENV]
        else:
            os.environ[THREADS_ENV] = before


def fit(
    kind: str,
    params: dict[str, Any],
    seed: int,
    data: Dataset,
    label: str,
    quiet: bool,
    threads: int | None = None,
) -> tuple[Classifier, History]:
    """Train one configuration exactly as a trial would, with a progress bar over epochs;
    Torch models on `threads` CPU threads when given (the trial's: their sums depend on it)."""
    from tqdm import tqdm

    model = resolve(kind, params).build(params, seed)
    images = model.wants_images
    bar = tqdm(
        total=model.epochs, desc=label, unit="epoch", file=sys.stderr, disable=quiet, leave=False
    )

    def progress(epoch: int, history: History) -> None:
        bar.set_postfix_str(f"val acc {history.val_accuracy[-1]:.4f}", refresh=False)
        bar.update(1)

    try:
        with _torch_threads(threads):
            history = train(
                model,
                *data.split("train", images),
                *data.split("val", images),
                classes=data.classes,
                on_epoch=progress,
            )
    finally:
        bar.close()
    return model, history


# -- retrain ---------------------------------------------------------------------------------


def _read_export(path: Path) -> dict[str, Any]:
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


def _check_config(path: Path, config: dict[str, Any], rank: int) -> None:
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


def _configuration(doc: dict[str, Any], config: dict[str, Any], source: str) -> DataSpec:
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


def weights_file(model: Classifier) -> str:
    """weights.npz, or model.pkl for a class of the user's own that has no get_weights()."""
    if isinstance(model, CustomClassifier) and not callable(
        getattr(model.estimator, "get_weights", None)
    ):
        return "model.pkl"
    return "weights.npz"


def save_model(model: Classifier, path: Path) -> None:
    """The weights (weights.npz), or a user's estimator pickled (model.pkl); a user's object
    that cannot be pickled is a UserCodeError, and no partial file is left."""
    if path.suffix != ".pkl":
        np.savez(path, **model.get_weights())
        return
    estimator = model.estimator  # type: ignore[attr-defined]
    try:
        data = pickle.dumps(estimator)
    except Exception as e:  # pickling runs the user's __reduce__/__getstate__, and may fail
        raise UserCodeError(
            f"{type(estimator).__name__} cannot be pickled into {path.name} "
            f"({type(e).__name__}: {e}); add get_weights() and set_weights() to the class, or "
            "make its attributes picklable (the test split was not evaluated)"
        ) from None
    path.write_bytes(data)


@dataclass(frozen=True)
class RetrainResult:
    """One exported configuration retrained, and its test accuracy, measured once."""

    study: str
    trial_number: int
    model_kind: str
    params: dict[str, Any]
    seconds: float
    val_accuracy: float
    search_val_accuracy: float  # what the study stored; `reproduced` when they are equal
    test_accuracy: float
    test_loss: float
    n_test: int
    weights: Path
    document: Path  # the export with a `retrain` object added

    @property
    def reproduced(self) -> bool:
        return self.val_accuracy == self.search_val_accuracy


def retrain(
    path: Path, out: Path | None, rank: int, quiet: bool, data: Any = None
) -> RetrainResult:
    """Retrain configuration `rank` of an export file, evaluate the test split once, and write
    the weights and a copy of the file with the results into `out`."""
    return retrain_document(_read_export(path), path, out, rank, quiet, data)


def _arrays_dataset(doc: dict[str, Any], data: Any, path: Path) -> dict[str, Any]:
    """The export's data, reading the arrays of a study made from arrays in Python: `data`
    (checked against the export's fingerprint), or this machine's cache."""
    stored = doc.get("arrays")
    if stored is None and data is None:
        return doc["data"]
    if data is None:
        if not Path(doc["data"]["dataset"]).is_file():
            raise UsageError(
                f"{path}: the study was made from arrays in Python (SHA-256 "
                f"{stored['sha256'][:12]}...), which are not on this machine; {HOW}"
            )
        return doc["data"]
    where, given = materialize(data)
    check_same(stored, given, str(path))
    return {**doc["data"], "dataset": str(where)}


def retrain_document(
    doc: dict[str, Any], path: Path, out: Path | None, rank: int, quiet: bool, data: Any = None
) -> RetrainResult:
    """`retrain` of a checked export document; `path` names it (and its copy in `out`);
    `data`: the arrays of a study made from arrays in Python."""
    configs = [c for c in doc["configs"] if isinstance(c, dict) and c.get("rank") == rank]
    if not configs:
        raise UsageError(
            f"{path}: --rank {rank}: no such configuration; the file has ranks "
            f"{', '.join(str(c.get('rank')) for c in doc['configs'])}"
        )
    config = configs[0]
    _check_config(path, config, rank)
    # The whole document against the schema the results are written with: an edit it does
    # not allow (an extra key, a null) is refused now, not after the training.
    problem = schema_problem(doc)
    if problem is not None:
        raise UsageError(f"{path}: {problem}; export the study again, or undo the edit")
    kind, params = locate_model_source(
        doc["model_kind"], config["params"], doc.get("model_source"), str(path)
    )
    doc, config = {**doc, "model_kind": kind}, {**config, "params": params}
    doc = {**doc, "data": _arrays_dataset(doc, data, path)}
    data_spec = _configuration(doc, config, f"{path}: configs[{rank - 1}]")
    data = load_data(data_spec, doc["data"]["seed"], str(path))
    flag = "--out" if out else "the default folder"
    out = out or Path("retrained") / f"{doc['study']}-trial{config['trial_number']}"
    try:  # where the results go, before hours of training
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(
            f"{flag} {out}: cannot be created: {e.strerror}; choose a folder you can write to "
            "with --out DIR"
        ) from None
    start = time.perf_counter()
    label = f"trial {config['trial_number']}"
    threads = config.get("threads")
    model, history = fit(
        doc["model_kind"], config["params"], config["seed"], data, label, quiet, threads
    )
    seconds = time.perf_counter() - start
    # The trained model is saved before the test split is seen: a model that cannot be saved
    # ends here, with the test split still unseen, never after its one measurement.
    weights = out / weights_file(model)
    try:
        save_model(model, weights)
    except OSError as e:
        raise UsageError(
            f"{flag} {out}: cannot write the weights: {e.strerror}; choose a folder you can "
            "write to with --out DIR (the test split was not evaluated)"
        ) from None
    images = model.wants_images
    test_loss, test_accuracy = model.evaluate(*data.split("test", images))
    result = RetrainResult(
        study=doc["study"],
        trial_number=config["trial_number"],
        model_kind=doc["model_kind"],
        params=config["params"],
        seconds=seconds,
        val_accuracy=_short(history.kept_val_accuracy),
        search_val_accuracy=config["val_accuracy"],
        test_accuracy=test_accuracy,
        test_loss=test_loss,
        n_test=int(len(data.y_test)),
        weights=weights,
        document=out / path.name,
    )
    record = {
        "rank": rank,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "n_test": result.n_test,
        "reproduced": result.reproduced,
        "seconds": round(seconds, 3),
        "weights": result.weights.name,
    }
    # A hand-edited storage URL may carry a password: the copy never shows it.
    written = {**doc, "storage": mask_password(str(doc.get("storage", ""))), "retrain": record}
    try:
        result.document.write_text(export_json(written))
    except OSError as e:
        raise UsageError(
            f"{flag} {out}: cannot write the results: {e.strerror}; choose a folder you can "
            f"write to with --out DIR (the test accuracy was {test_accuracy:.4f})"
        ) from None
    return result


# -- confirm ---------------------------------------------------------------------------------


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
    study: optuna.Study, spec: StudySpec, data: Dataset, top: int, repeats: int, quiet: bool
) -> list[ConfirmResult]:
    """Retrain the `top` best configurations with `repeats` new seeds each; best mean first."""
    results = []
    for trial in complete_best_first(study.get_trials(deepcopy=False))[:top]:
        params = {**spec.model.fixed, **trial.params}
        seeds = [derive_seed(spec.seed, trial.number, 1 + r) for r in range(repeats)]
        accuracies = []
        for i, seed in enumerate(seeds):
            label = f"trial {trial.number} seed {i + 1}/{repeats}"
            history = fit(spec.model.kind, params, seed, data, label, quiet)[1]
            accuracies.append(_short(history.kept_val_accuracy))
        results.append(ConfirmResult(trial.number, accuracy(trial), params, seeds, accuracies))
    results.sort(key=lambda r: -r.mean)
    return results


def confirm(
    study: optuna.Study, spec: StudySpec, top: int, repeats: int, quiet: bool, data: Any = None
) -> list[ConfirmResult]:
    """`hpsearch confirm`: the results, best mean first, also stored with the study. `data`:
    the arrays a study made from arrays in Python needs (search/arrays.py)."""
    if not complete_best_first(study.get_trials(deepcopy=False)):
        raise UsageError(f"study {study.study_name!r} has no complete trial yet; run it first")
    spec = locate_spec(spec, study.user_attrs.get(SOURCE_ATTR))
    spec = for_stored(spec, study.user_attrs.get(ARRAYS_ATTR), data, spec.source)
    data = load_data(spec.data, spec.seed, f"stored study {study.study_name!r}")
    results = confirm_results(study, spec, data, top, repeats, quiet)
    stored = {
        "top": top,
        "repeats": repeats,
        "results": [r.to_dict() for r in results],
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    study.set_user_attr(CONFIRM_ATTR, stored)
    return results
