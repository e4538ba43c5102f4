"""What hpsearch keeps in the study database, and how it reads it back: the one description.

Study user attrs:
    hpsearch_spec (SPEC_ATTR): the parsed study file (StudySpec.to_dict()), with
        [model].fixed.schedule_every pinned to the default of the version that created it
        where the file left it out (pin_schedule_every(); a spec without it is from 0.1, whose
        schedules stepped once an epoch).
    hpsearch_version (VERSION_ATTR): the version that created the study.
    hpsearch_model_source (SOURCE_ATTR): for a model of the user's own (module:Class or
        file.py:Class), its source file and that file's SHA-256 when the study was created.
    hpsearch_confirm (CONFIRM_ATTR): the last `hpsearch confirm`: {top, repeats, at, results: a
        list of retraining.ConfirmResult.to_dict(), best mean first}. Results stored before the
        key `trial_number` existed name it `trial`; confirm_trial_number() reads both.
Trial user attrs:
    seed (SEED_ATTR): the trial's seed, from the study seed and the trial number.
    threads (THREADS_ATTR): the CPU threads the trial trained with (cores / workers): Torch's
        CPU kernels sum in another order with another count, so `retrain` uses the same.
    curves (CURVES_ATTR): per epoch, each of CURVES (curves()); the best epoch is derived from
        them (best_epoch()), not stored.
    seconds (SECONDS_ATTR): wall-clock training time.
    class_weights (CLASS_WEIGHTS_ATTR): linear models, trials that beat the best so far: each
        class's weights as uint8 images (objective.py writes them; reports/class_weights.py
        draws them).
    fail_reason (FAIL_REASON_ATTR): why a FAIL trial failed, on every FAIL row; it starts with
        one of FAIL_REASONS.
    diverged (DIVERGED_ATTR) = True: a FAIL that counts toward the budget (its parameters made
        the loss non-finite or the weights explode).
    user_error (USER_ERROR_ATTR) = True: a FAIL that counts toward the budget: the user's
        class or network raised, exited or returned an impossible value (fail_reason says
        where and what).
    surplus (SURPLUS_ATTR) = True: a trial that started when the budget was already full; it
        did not train.
    warm_start (WARM_ATTR): on a COMPLETE trial copied from another study or an export before
        this study started (search/warm.py): where it came from. It informs the sampler and
        the pruner; it is not this study's work, so it never counts toward the budget, the
        trial counts, the ranking, the stopping rule or the report.
Intermediate values: one per epoch, the validation accuracy (the pruner reads them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.spec import StudySpec
from hpsearch.study_file import parse_study

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

SPEC_ATTR = "hpsearch_spec"
VERSION_ATTR = "hpsearch_version"
CONFIRM_ATTR = "hpsearch_confirm"
SOURCE_ATTR = "hpsearch_model_source"
SEED_ATTR = "seed"
THREADS_ATTR = "threads"
# The study's thread count, decided once when it is created (HPSEARCH_THREADS, else the creating
# machine's cores) and used by every run, worker, confirm and retrain: a count measured from
# the moment's speed would make a study's numbers depend on the machine's load.
STUDY_THREADS_ATTR = "hpsearch_threads"
# Where the training loss and accuracy of the curves came from: "batches" (the model's own
# figures over each epoch's batches) or "pass" (an evaluation of training rows after each epoch).
TRAIN_METRICS_ATTR = "train_metrics"
CURVES_ATTR = "curves"
CURVES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "weight_norm")
SECONDS_ATTR = "seconds"
CLASS_WEIGHTS_ATTR = "class_weights"
FAIL_REASON_ATTR = "fail_reason"
DIVERGED_ATTR = "diverged"
SURPLUS_ATTR = "surplus"
USER_ERROR_ATTR = "user_error"
CRASHED_ATTR = "crashed"  # a built-in kind's training process died (a segfault, out of memory)
TIMED_OUT_ATTR = "timed_out"  # the trial ran past [study].trial_timeout
ENDED_ATTRS = (CRASHED_ATTR, TIMED_OUT_ATTR)
WARM_ATTR = "warm_start"
# Set on a new study before its warm start is added; complete once WARM_ATTR is set too.
WARM_PENDING_ATTR = "hpsearch_warm_start_pending"
# The first word of every fail_reason: stale and silent (its worker died; re-queued), storage
# failure, surplus (started when the budget was full), interrupted (Ctrl-C, SIGTERM, the
# parent of `run --workers` gone), diverged (a non-finite loss or exploding weights), your code
# (the user's class or network raised, exited, ended or crashed its process, or returned an
# impossible value: its file, method or line and message follow), timeout (past
# [study].trial_timeout), crashed (a built-in kind's training process died: a segfault, out of
# memory), error (a bug: the worker stops and says so).
FAIL_REASONS = (
    "stale",
    "silent",
    "storage failure",
    "surplus",
    "interrupted",
    "diverged",
    "your code",
    "timeout",
    "crashed",
    "error",
)
# What a re-queued trial does not inherit from the attempt that died: it trains again.
ATTEMPT_ATTRS = (
    FAIL_REASON_ATTR,
    DIVERGED_ATTR,
    USER_ERROR_ATTR,
    CRASHED_ATTR,
    TIMED_OUT_ATTR,
    CURVES_ATTR,
    SECONDS_ATTR,
    CLASS_WEIGHTS_ATTR,
)


def _file_target(kind: str, fixed: dict[str, Any]) -> str | None:
    """`/path/file.py:Name` when the user's model is named by a file (the kind, or
    torch.network's `network`); None for the built-in kinds and import paths."""
    from hpsearch.models import NETWORK

    target = fixed.get("network") if kind == NETWORK else kind
    if isinstance(target, str) and target.rpartition(":")[0].endswith(".py"):
        return target
    return None


def with_file_target(kind: str, fixed: dict[str, Any], target: str) -> tuple[str, dict[str, Any]]:
    """(kind, fixed) naming the user's file `target` instead."""
    from hpsearch.models import NETWORK

    if kind == NETWORK:
        return kind, {**fixed, "network": target}
    return target, fixed


def portable_model(model: dict[str, Any]) -> dict[str, Any]:
    """A stored `[model]` table with the user's file named by its file name alone: the same
    study on another machine (or another checkout) has it at another absolute path."""
    kind, fixed = model["kind"], dict(model.get("fixed", {}))
    target = _file_target(kind, fixed)
    if target is None:
        return model
    path, _, name = target.rpartition(":")
    kind, fixed = with_file_target(kind, fixed, f"{Path(path).name}:{name}")
    return {**model, "kind": kind, "fixed": fixed}


def model_source(
    kind: str, fixed: dict[str, Any], study_dir: Path | None = None
) -> dict[str, str] | None:
    """The source file and SHA-256 of a user's class or network function; None for the
    built-in kinds. A file named in the study file is also stored relative to the folder the
    study was created from and to the study file's folder, so that it is found again from a
    copy of that folder at another path (another machine): locate_model_source()."""
    from hpsearch.models import is_user_code
    from hpsearch.models import resolve

    if not is_user_code(kind):
        return None
    entry = resolve(kind, fixed)
    digest = entry.source_sha256()
    if not digest:
        return None
    file = entry.file()
    source = {"file": str(file), "sha256": digest}
    if _file_target(kind, fixed) is not None:
        source["cwd_relative"] = os.path.relpath(file, Path.cwd())
        if study_dir is not None:
            source["relative"] = os.path.relpath(file, study_dir)
    return source


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def locate_model_source(
    kind: str, fixed: dict[str, Any], stored: dict[str, str] | None, where: str
) -> tuple[str, dict[str, Any]]:
    """(kind, fixed) naming the user's model file as found on this machine, with the content
    the study was created with; UsageError when it is not here or differs.

    The file is looked for at the path given (a study file's own, or the stored one), then at
    the stored relative paths from the current folder. Trials of two different models must
    never mix in one study, so the SHA-256 must match.
    """
    from hpsearch.models import is_user_code

    if not stored or not is_user_code(kind):
        return kind, fixed
    target = _file_target(kind, fixed)
    if target is None:  # an import path: found by Python wherever it is installed
        now = model_source(kind, fixed)
        if now is None or now["sha256"] != stored["sha256"]:
            _differs(where, stored, (now or {}).get("sha256", ""))
        return kind, fixed
    path, _, name = target.rpartition(":")
    candidates: list[Path] = []
    for candidate in (Path(path), Path(stored["file"])) + tuple(
        Path.cwd() / stored[k] for k in ("cwd_relative", "relative") if k in stored
    ):
        if candidate.resolve() not in candidates:
            candidates.append(candidate.resolve())
    # The first file found decides: a study file naming an edited copy must not silently
    # train another, older copy found elsewhere.
    for candidate in candidates:
        if candidate.is_file():
            digest = _sha256(candidate)
            if digest != stored["sha256"]:
                _differs(where, {**stored, "file": str(candidate)}, digest)
            return with_file_target(kind, fixed, f"{candidate}:{name}")
    raise UsageError(
        f"{where}: the study's model file {Path(stored['file']).name} (SHA-256 "
        f"{stored['sha256'][:12]}...) is not on this machine: looked for "
        f"{', '.join(map(str, candidates))}; run from a copy of the folder the study was "
        "created from, or put the file at one of these paths"
    )


def locate_spec(spec: StudySpec, stored: dict[str, str] | None) -> StudySpec:
    """A stored spec whose user model file is the one found on this machine
    (locate_model_source), its code imported and checked: ready to train here."""
    import dataclasses

    from hpsearch.models import CustomModelError
    from hpsearch.models import is_user_code
    from hpsearch.models import resolve

    kind, fixed = spec.model.kind, dict(spec.model.fixed)
    if not is_user_code(kind):
        return spec
    kind, fixed = locate_model_source(kind, fixed, stored, spec.source)
    try:
        resolve(kind, fixed).check()
    except CustomModelError as e:
        raise UsageError(f"{spec.source}: [model].kind: {e}") from None
    return dataclasses.replace(spec, model=dataclasses.replace(spec.model, kind=kind, fixed=fixed))


def _differs(where: str, stored: dict[str, str], now: str) -> None:
    raise UsageError(
        f"{where}: {stored['file']} differs from the file this study was created with "
        f"(SHA-256 {stored['sha256'][:12]}..., now {now[:12]}...); "
        "restore that version, or start a new study with a new [study].name"
    )


def curves(trial: FrozenTrial) -> dict[str, list[float]]:
    """The trial's per-epoch curves (empty for a trial that trained no epoch)."""
    return {name: list(values) for name, values in trial.user_attrs.get(CURVES_ATTR, {}).items()}


def seconds(trial: FrozenTrial) -> float:
    return float(trial.user_attrs.get(SECONDS_ATTR, 0.0))


def fail_reason(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get(FAIL_REASON_ATTR, ""))


def accuracy(trial: FrozenTrial) -> float:
    """A complete trial's validation accuracy: its value, or its first value in a
    multi-objective study (where Optuna's `trial.value` raises)."""
    return trial.values[0]


def is_warm(trial: FrozenTrial) -> bool:
    """A trial copied from another study or an export by a warm start (not trained here)."""
    return WARM_ATTR in trial.user_attrs


def own_trials(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The trials this study ran itself: all but the warm-start copies."""
    return [t for t in trials if not is_warm(t)]


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Complete, pruned and diverged trials use up the budget; interrupted ones do not.

    A trial interrupted by Ctrl-C or SIGTERM failed through no fault of its parameters, so
    re-running the study replaces it instead of counting it; one that failed by its own
    (diverged, the user's code failed, its process crashed, it ran past trial_timeout) would
    fail again, so it counts. Warm-start copies never count.
    """
    state = trial.state.name
    if is_warm(trial):
        return False
    attrs = trial.user_attrs
    own = (DIVERGED_ATTR, USER_ERROR_ATTR, *ENDED_ATTRS)
    failed_by_its_own = any(attrs.get(name) for name in own)
    return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and bool(failed_by_its_own))


def best_epoch(trial: FrozenTrial) -> int | None:
    """The epoch of the highest validation accuracy (the first, on ties)."""
    values = curves(trial).get("val_accuracy", [])
    return max(range(len(values)), key=values.__getitem__) if values else None


def finished_count(trials: Iterable[FrozenTrial]) -> int:
    return sum(counts_toward_budget(t) for t in trials)


def complete_best_first(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """This study's complete trials, highest validation accuracy first (the lower number on
    ties); warm-start copies are left out."""
    complete = [t for t in own_trials(trials) if t.state.name == "COMPLETE"]
    return sorted(complete, key=lambda t: (-accuracy(t), t.number))


def confirm_trial_number(result: dict) -> int:
    return result["trial_number"] if "trial_number" in result else result["trial"]


def last_update(trials: Iterable[FrozenTrial]) -> str | None:
    """When the latest trial ended (or started, if running), with its UTC offset shown.

    Optuna stores naive UTC and hands out naive times in this process's local zone, so the
    time is shown in the reader's zone, whatever zone each worker ran in.
    """
    stamps = [t.datetime_complete or t.datetime_start for t in trials]
    stamps = [s for s in stamps if s is not None]
    if not stamps:
        return None
    return max(stamps).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def state_counts(trials: Iterable[FrozenTrial]) -> Counter[str]:
    """This study's trials by state (warm-start copies are not its trials). Surplus starts
    (FAIL in Optuna: a worker asked for a trial when the budget was already full, and it did
    not train) are counted as "SURPLUS", not as failures: nothing went wrong."""
    return Counter(
        "SURPLUS" if t.user_attrs.get(SURPLUS_ATTR) else t.state.name for t in own_trials(trials)
    )


def surplus_note(counts: Counter[str]) -> str:
    """The summary lines' note on surplus starts, or "" when there were none."""
    n = counts["SURPLUS"]
    if not n:
        return ""
    starts = "start" if n == 1 else "starts"
    return f"; {n} surplus {starts}, not trained: the budget was already full"


def study_threads(attrs: dict[str, Any]) -> int | None:
    """The thread count stored with a study (None for one made before 0.4)."""
    value = attrs.get(STUDY_THREADS_ATTR)
    return int(value) if value else None


def stored_spec(study: optuna.Study, storage_name: str) -> StudySpec:
    """The spec a study was created with; UsageError for studies hpsearch did not create.

    A spec stored without schedule_every is from hpsearch 0.1: its schedules stepped once an
    epoch, and so they still do for it (its trials, resumed runs, exports and retrains).
    """
    raw = study.user_attrs.get(SPEC_ATTR)
    if raw is None:
        raise UsageError(
            f"{storage_name}: study {study.study_name!r} was not created by "
            "hpsearch (it has no stored study file); use another study name"
        )
    spec = parse_study(raw, f"stored study {study.study_name!r}", stored=True)
    return pin_schedule_every(spec, SCHEDULE_BEFORE)


SCHEDULE_KEY = "schedule_every"  # the model argument (models.schedules.SCHEDULE_EVERY: its values)
SCHEDULE_DEFAULT, SCHEDULE_BEFORE = "batch", "epoch"  # now, and in hpsearch 0.1


def pin_schedule_every(spec: StudySpec, value: str) -> StudySpec:
    """The spec with [model].fixed.schedule_every = value where the kind takes it (every
    built-in kind and torch.network) and the study file neither fixes nor searches it."""
    import dataclasses

    fixed = pin_params(spec.model.kind, dict(spec.model.fixed), value)
    if SCHEDULE_KEY in {p.name for p in spec.params} or fixed == dict(spec.model.fixed):
        return spec
    return dataclasses.replace(spec, model=dataclasses.replace(spec.model, fixed=fixed))


def pin_params(kind: str, params: dict[str, Any], value: str) -> dict[str, Any]:
    """`params` (a model's arguments) with schedule_every = value unless they give it."""
    from hpsearch.models import is_custom

    if is_custom(kind) or SCHEDULE_KEY in params:
        return params
    return {**params, SCHEDULE_KEY: value}


def load_study(storage: optuna.storages.BaseStorage, name: str, storage_name: str):
    """Load an hpsearch study by name, or raise UsageError listing the names there are."""
    import optuna

    names = optuna.get_all_study_names(storage=storage)
    if name not in names:
        listed = ", ".join(sorted(names)) or "none yet"
        raise UsageError(f"{storage_name}: no study named {name!r}; studies there: {listed}")
    study = optuna.load_study(study_name=name, storage=storage)
    return study, stored_spec(study, storage_name)
