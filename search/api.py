"""hpsearch from Python (a notebook, a script): the commands as functions that return values.

    >>> import hpsearch
    >>> study = hpsearch.run("studies/quickstart.toml", n_trials=3, progress=False)
    >>> figures = hpsearch.figures(study)               # the report's figures, by name
    >>> "history" in figures and "curves" in figures
    True
    >>> best = hpsearch.export(study)                   # the best configuration, as a dict
    >>> result = hpsearch.retrain(best, out="retrained/quickstart")  # test accuracy, once
    >>> 0.0 <= result.test_accuracy <= 1.0
    True

They never print (a progress bar on stderr aside) and never exit: bad input raises UsageError,
whose message is the line the CLI would print, before anything is stored. The CLI is a thin
layer over the same modules. `[model].kind` may also be a class object: it is trained in this
process (and by `workers > 1` only when other processes can import it by name).
"""

from __future__ import annotations

import copy
import json
import weakref
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

    from hpsearch.confirming import ConfirmResult
    from hpsearch.retraining import RetrainResult
    from hpsearch.spec import StudySpec


# Where each study that run() or load() returned lives, as shown (password masked): the API
# keeps this itself rather than reading Optuna's private study._storage.
_SHOWN: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _whole(value: Any, name: str, minimum: int = 1) -> int | None:
    """An optional whole-number argument, checked as the CLI checks its flag."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{name}: got {value!r}; allowed: a whole number >= {minimum}")
    return value


def _seconds(value: Any, name: str) -> float | None:
    import math

    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name}: got {value!r}; allowed: a number of seconds > 0")
    return float(value)


def _study(value: Any, name: str = "study") -> optuna.Study:
    import optuna

    if not isinstance(value, optuna.Study):
        raise UsageError(
            f"{name}: got {type(value).__name__} {value!r}"[:120]
            + "; allowed: a study from hpsearch.run() or hpsearch.load(name)"
        )
    return value


def _kind_of_object(kind: Any, workers: int) -> str:
    """`module:QualifiedName` for a class given as an object; registered for this process."""
    from hpsearch.models.custom import register

    name = register(kind)
    if workers > 1 and not _importable(kind):
        raise UsageError(
            f"[model].kind: {kind.__qualname__} is defined where other processes cannot import "
            f"it (module {kind.__module__!r}); with workers > 1 each worker imports the class "
            "by name: move it into a .py file and give kind = 'file.py:Class', or use workers = 1"
        )
    return name


def _importable(cls: type) -> bool:
    import importlib

    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return False
    try:
        found: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is cls


def _spec(study: str | Path | Mapping[str, Any], workers: int) -> StudySpec:
    from hpsearch.study_file import load_study_file
    from hpsearch.study_file import parse_study

    if not isinstance(study, str | Path | Mapping):
        raise UsageError(
            f"study: got {type(study).__name__}; allowed: a study file's path, or a dict of "
            "the same shape"
        )
    if isinstance(study, str | Path):
        return load_study_file(study)
    doc = copy.deepcopy(dict(study))
    model = doc.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("kind"), type):
        doc["model"] = {**model, "kind": _kind_of_object(model["kind"], workers)}
    return parse_study(doc, "study")


def run(
    study: str | Path | Mapping[str, Any],
    *,
    storage: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    progress: bool = True,
    warm_start: str | Path | None = None,
    data: Any = None,
    on: Any = None,
) -> optuna.Study:
    """Create or resume a study and run trials until it has `n_trials` finished ones.

    Args:
        study: A study file's path, or a dict of the same shape (`[model].kind` may be a class).
        storage: A database URL; default $HPSEARCH_STORAGE, else sqlite:///hpsearch.db.
        n_trials: The study's total of finished trials (default: [study].n_trials).
        timeout: Start no new trial after this many seconds.
        workers: Worker processes on this machine.
        progress: A progress bar on stderr.
        warm_start: A new study starts from the finished trials of this study (same storage)
            or from this export file (a path ending in .json); overrides [study].warm_start.
        data: Arrays instead of [data].dataset: `(X, y)`, split as [data] says, or
            `{"train": (X, y), "val": (X, y), "test": (X, y)}` (test optional). X is (N, D)
            or images (N, C, H, W); labels are integers or strings (search/arrays.py).
        on: Place the `workers` on a cluster: a `distributed.Client`, any Dask cluster
            object (LocalCluster, dask-jobqueue's SLURMCluster or PBSCluster,
            dask-kubernetes), "dask://HOST:PORT", or "slurm" (one sbatch job array).

    Raises:
        UsageError: bad input (the message is one line); KeyboardInterrupt after Ctrl-C (the
            running trial is marked failed, the finished ones are kept).
    """
    # Over 60 lines for its docstring, the reference of every argument.
    from hpsearch.runner import run_study
    from hpsearch.storage import resolve_url
    from hpsearch.warm import warm_source

    n_trials = _whole(n_trials, "n_trials")
    timeout = _seconds(timeout, "timeout")
    workers = _whole(workers, "workers")
    if not isinstance(progress, bool):
        raise UsageError(f"progress: got {progress!r}; allowed: True or False")
    spec = _spec(study, workers)
    arrays = None
    if data is not None:
        from hpsearch.arrays import attach

        spec, arrays = attach(spec, data)
    outcome = run_study(
        spec,
        resolve_url(storage),
        n_trials=n_trials,
        timeout=timeout,
        progress=progress,
        workers=workers,
        warm_start=warm_source(warm_start, "warm_start"),
        arrays=arrays,
        on=_launcher(on),
    )
    if outcome.signal is not None:
        raise KeyboardInterrupt
    if outcome.lost and outcome.finished < outcome.budget:
        raise UsageError(
            f"{len(outcome.lost)} workers stopped early; the study has {outcome.finished} of "
            f"{outcome.budget} trials; run again to finish it"
        )
    return _opened(outcome.study, outcome.storage)


def _launcher(on: Any) -> Any:
    if on is None:
        return None
    if on == "slurm":
        from hpsearch.launchers import SlurmLauncher
        from hpsearch.slurm import SlurmResources

        return SlurmLauncher(SlurmResources())
    if isinstance(on, str) and not on.startswith("dask://"):
        raise UsageError(
            f"on: got {on!r}; allowed: a Dask client or cluster, 'dask://HOST:PORT' or 'slurm'"
        )
    from hpsearch.launchers import DaskLauncher

    return DaskLauncher(on)


def load(name: str, *, storage: str | None = None) -> optuna.Study:
    """A stored hpsearch study by name."""
    from hpsearch.records import load_study
    from hpsearch.storage import open_storage
    from hpsearch.storage import resolve_url

    if not isinstance(name, str):
        raise UsageError(f"name: got {type(name).__name__}; allowed: a study's name")
    target = resolve_url(storage)
    study = load_study(open_storage(target, create=False), name, target.shown)[0]
    return _opened(study, target.shown)


def _stored_spec(study: optuna.Study) -> StudySpec:
    from hpsearch.records import stored_spec

    return stored_spec(study, _storage_shown(study))


def _opened(study: optuna.Study, shown: str) -> optuna.Study:
    """Remember where a study returned by run() or load() lives (its URL, password masked)."""
    _SHOWN[study] = shown
    return study


def _storage_shown(study: optuna.Study) -> str:
    """The URL of a study from run() or load(); for a study opened by Optuna directly,
    hpsearch does not know it, and says so where the URL would be shown."""
    return _SHOWN.get(study, "(a storage opened outside hpsearch)")


def figures(study: optuna.Study) -> dict[str, go.Figure]:
    """The report's figures of one study, by name (`history`, `importances`, `curves`, ...)."""
    from hpsearch.reports import study_sections

    study = _study(study)
    prefix = f"{study.study_name}-"
    return {
        section.id.removeprefix(prefix): section.figure
        for section in study_sections(study, _stored_spec(study))
        if section.figure is not None
    }


def report(studies: optuna.Study | Sequence[optuna.Study], path: str | Path) -> Path:
    """Write the HTML report of one or more studies to `path`; returns the path."""
    from hpsearch.reports import build_report

    if isinstance(studies, str) or not isinstance(studies, Sequence):
        studies = [studies]
    studies = list(studies)
    if not studies:
        raise UsageError("studies: got none; allowed: a study, or a list of one or more")
    studies = [_study(s, "studies") for s in studies]
    page = build_report([(s, _stored_spec(s)) for s in studies], _storage_shown(studies[0]))
    path = Path(path)
    try:
        path.write_text(page)
    except OSError as e:
        raise UsageError(f"{path}: cannot write: {e.strerror}") from None
    return path


def export(study: optuna.Study, *, top: int | None = None) -> dict[str, Any]:
    """The best `top` configurations as the export document (`hpsearch export`'s JSON);
    default 1, or for a multi-objective study its Pareto front, the recommended one first."""
    from hpsearch.exports import export_document

    study, top = _study(study), _whole(top, "top")
    return export_document(study, _stored_spec(study), _storage_shown(study), top, "best.json")


def retrain(
    document: Mapping[str, Any] | str | Path,
    *,
    rank: int = 1,
    out: str | Path | None = None,
    progress: bool = False,
    data: Any = None,
) -> RetrainResult:
    """Retrain one configuration of an export (a dict from `export`, or a file), evaluate the
    test split once, and write the weights and the document with the results into `out`
    (default retrained/STUDY-trialN)."""
    from hpsearch.exports import check_export
    from hpsearch.retraining import retrain as retrain_file
    from hpsearch.retraining import retrain_document

    rank = _whole(rank, "rank")
    if out is not None and not isinstance(out, str | Path):
        raise UsageError(f"out: got {type(out).__name__}; allowed: a folder's path")
    out = Path(out) if out is not None else None
    if not isinstance(document, str | Path | Mapping):
        raise UsageError(
            f"document: got {type(document).__name__}; allowed: an export (a dict from "
            "hpsearch.export) or its file's path"
        )
    if isinstance(document, str | Path):
        return retrain_file(Path(document), out, rank, progress, data)
    doc = check_export(json.loads(json.dumps(document)), "document")
    return retrain_document(doc, Path("best.json"), out, rank, progress, data)


def confirm(
    study: optuna.Study,
    *,
    top: int = 3,
    repeats: int = 5,
    progress: bool = False,
    data: Any = None,
) -> list[ConfirmResult]:
    """Retrain the top configurations with new seeds; best mean first (stored with the study)."""
    from hpsearch.confirming import confirm as confirm_study

    study, top, repeats = _study(study), _whole(top, "top"), _whole(repeats, "repeats")
    return confirm_study(study, _stored_spec(study), top, repeats, progress, data)
