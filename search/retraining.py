"""`hpsearch retrain`: one exported configuration trained again, saved, then measured on the
test split once."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch import jobs
from hpsearch.arrays import HOW
from hpsearch.arrays import check_same
from hpsearch.arrays import materialize
from hpsearch.errors import UsageError
from hpsearch.exports import check_config
from hpsearch.exports import check_configuration
from hpsearch.exports import export_json
from hpsearch.exports import read_export
from hpsearch.exports import schema_problem
from hpsearch.fitting import fitted
from hpsearch.fitting import short
from hpsearch.models.threads import requested_threads
from hpsearch.records import SCHEDULE_BEFORE
from hpsearch.records import locate_model_source
from hpsearch.records import pin_params
from hpsearch.runner import load_data
from hpsearch.storage import mask_password


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
    threads: int | None = None  # the CPU threads it trained on, when the export or you said
    trial_threads: int | None = None  # the threads the trial trained on, as the export says

    @property
    def reproduced(self) -> bool:
        return self.val_accuracy == self.search_val_accuracy


def retrain(
    path: Path, out: Path | None, rank: int, progress: bool, data: Any = None
) -> RetrainResult:
    """Retrain configuration `rank` of an export file, evaluate the test split once, and write
    the weights and a copy of the file with the results into `out`."""
    return retrain_document(read_export(path), path, out, rank, progress, data)


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
    doc: dict[str, Any], path: Path, out: Path | None, rank: int, progress: bool, data: Any = None
) -> RetrainResult:
    """`retrain` of a checked export document; `path` names it (and its copy in `out`);
    `data`: the arrays of a study made from arrays in Python."""
    doc, config = _checked(doc, path, rank, data)
    data_spec = check_configuration(doc, config, f"{path}: configs[{rank - 1}]")
    data = load_data(data_spec, doc["data"]["seed"], str(path))
    flag = "--out" if out else "the default folder"
    out = _output_folder(
        out or Path("retrained") / f"{doc['study']}-trial{config['trial_number']}", flag
    )
    start = time.perf_counter()
    label = f"trial {config['trial_number']}"
    # $HPSEARCH_THREADS, when you set it, wins over the trial's count (the CLI says what that
    # may change); else the trial's, so that Torch's sums are the trial's to the last digit.
    threads = requested_threads() or config.get("threads")
    fit = (doc["model_kind"], config["params"], config["seed"], data, label, progress, threads)
    with fitted(*fit) as (trainer, history):
        seconds = time.perf_counter() - start
        # The trained model is saved before the test split is seen: a model that cannot be
        # saved ends here, with the test split still unseen, never after its one measurement.
        weights = out / trainer.call(jobs.weights_name)
        problem = trainer.call(jobs.save, weights)
        if problem is not None:
            raise UsageError(
                f"{flag} {out}: cannot write the weights: {problem}; choose a folder you can "
                "write to with --out DIR (the test split was not evaluated)"
            )
        test_loss, test_accuracy = trainer.call(jobs.evaluate, "test")
    result = RetrainResult(
        study=doc["study"],
        trial_number=config["trial_number"],
        model_kind=doc["model_kind"],
        params=config["params"],
        seconds=seconds,
        val_accuracy=short(history.kept_val_accuracy),
        search_val_accuracy=config["val_accuracy"],
        test_accuracy=test_accuracy,
        test_loss=test_loss,
        n_test=int(len(data.y_test)),
        weights=weights,
        document=out / path.name,
        threads=threads,
        trial_threads=config.get("threads"),
    )
    _write_results(doc, result, rank, flag)
    return result


def _checked(
    doc: dict[str, Any], path: Path, rank: int, data: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The document and configuration `rank`, checked in full before anything trains, with
    the user's model file and the arrays as found on this machine."""
    configs = [c for c in doc["configs"] if isinstance(c, dict) and c.get("rank") == rank]
    if not configs:
        raise UsageError(
            f"{path}: --rank {rank}: no such configuration; the file has ranks "
            f"{', '.join(str(c.get('rank')) for c in doc['configs'])}"
        )
    config = configs[0]
    check_config(path, config, rank)
    # The whole document against the schema the results are written with: an edit it does
    # not allow (an extra key, a null) is refused now, not after the training.
    problem = schema_problem(doc)
    if problem is not None:
        raise UsageError(f"{path}: {problem}; export the study again, or undo the edit")
    kind, params = locate_model_source(
        doc["model_kind"], config["params"], doc.get("model_source"), str(path)
    )
    # An export made by hpsearch 0.1 has no schedule_every: its schedules stepped per epoch.
    params = pin_params(kind, params, SCHEDULE_BEFORE)
    doc, config = {**doc, "model_kind": kind}, {**config, "params": params}
    return {**doc, "data": _arrays_dataset(doc, data, path)}, config


def _output_folder(out: Path, flag: str) -> Path:
    """Where the results go, created before hours of training."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(
            f"{flag} {out}: cannot be created: {e.strerror}; choose a folder you can write to "
            "with --out DIR"
        ) from None
    return out


def _write_results(doc: dict[str, Any], result: RetrainResult, rank: int, flag: str) -> None:
    """A copy of the export with a `retrain` object added, beside the weights."""
    record = {
        "rank": rank,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "n_test": result.n_test,
        "reproduced": result.reproduced,
        "seconds": round(result.seconds, 3),
        "weights": result.weights.name,
    }
    # A hand-edited storage URL may carry a password: the copy never shows it.
    written = {**doc, "storage": mask_password(str(doc.get("storage", ""))), "retrain": record}
    try:
        result.document.write_text(export_json(written))
    except OSError as e:
        raise UsageError(
            f"{flag} {result.document.parent}: cannot write the results: {e.strerror}; choose "
            f"a folder you can write to with --out DIR (the test accuracy was "
            f"{result.test_accuracy:.4f})"
        ) from None
