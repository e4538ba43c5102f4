"""Creating a study, or resuming a stored one: what is stored with a new study, what must
match to resume, and the warm start (read first, added all or nothing)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch import optuna_internals as internals
from hpsearch.algorithms import make_pruner
from hpsearch.algorithms import make_sampler
from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.arrays import check_same
from hpsearch.arrays import portable_dataset
from hpsearch.errors import UsageError
from hpsearch.objective import derive_seed
from hpsearch.pareto import VAL_SIZE_ATTR
from hpsearch.records import SCHEDULE_DEFAULT
from hpsearch.records import SCHEDULE_KEY
from hpsearch.records import SOURCE_ATTR
from hpsearch.records import SPEC_ATTR
from hpsearch.records import VERSION_ATTR
from hpsearch.records import WARM_ATTR
from hpsearch.records import WARM_PENDING_ATTR
from hpsearch.records import locate_model_source
from hpsearch.records import model_source
from hpsearch.records import pin_schedule_every
from hpsearch.records import portable_model
from hpsearch.records import stored_spec

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import StudySpec
    from hpsearch.storage import StorageURL
    from hpsearch.warm import WarmStart

# How long a process that lost the race to create a study waits for the winner's spec.
SPEC_WAIT_S = 10.0


def create_or_resume(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    target: StorageURL,
    warm: WarmStart | None = None,
    n_val: int | None = None,
    arrays: dict[str, Any] | None = None,
) -> tuple[optuna.Study, WarmStart | None, StudySpec]:
    """Create the study, or load it when the name exists and was made from the same search.

    Safe when several processes start on the same name at the same moment (docs/workers.md's
    many-machines recipe): exactly one creates the study and stores its spec; the others
    wait for the spec to be stored, then check it like any resume. The sampler is seeded from
    the study seed and the number of trials already there, so a resumed study does not replay
    the random start-up trials of its first run. A new study gets `warm`'s configurations
    first (search/warm.py); what was added is returned, with the spec to train by: `spec`
    with what the stored study pins where the study file is silent (pin_schedule_every).
    """
    import optuna

    pinned = pin_schedule_every(spec, SCHEDULE_DEFAULT)  # what a new study stores
    study_id = _create(pinned, storage, warm, n_val, arrays)
    spec = pinned if study_id is not None else _check_resume(spec, storage, target, arrays)
    decide_threads(storage, storage.get_study_id_from_name(spec.name))
    n_existing = storage.get_n_trials(storage.get_study_id_from_name(spec.name))
    sampler = make_sampler(spec, seed=derive_seed(spec.seed, n_existing))
    study = optuna.load_study(
        study_name=spec.name, storage=storage, sampler=sampler, pruner=make_pruner(spec)
    )
    if study_id is None:
        return study, None, spec
    if warm is not None:
        from hpsearch.warm import add

        warm = add(study, spec, warm)
        storage.set_study_user_attr(study_id, WARM_ATTR, warm.to_dict())
        internals.delete_study_user_attr(storage, study_id, WARM_PENDING_ATTR)
    for entry in spec.enqueue:  # tried first, in this order, with exactly these values
        study.enqueue_trial(dict(entry))
    # optuna-dashboard, the optuna CLI and Optuna's figures then say "val_accuracy", not
    # "Objective 0".
    with warnings.catch_warnings():  # Optuna calls it experimental
        warnings.simplefilter("ignore")
        study.set_metric_names(list(spec.objectives))
    return study, warm, spec


def _create(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    warm: WarmStart | None,
    n_val: int | None,
    arrays: dict[str, Any] | None,
) -> int | None:
    """The new study's id, with what hpsearch stores about it; None if it exists already."""
    import optuna
    from optuna.exceptions import DuplicatedStudyError
    from optuna.study import StudyDirection

    from hpsearch.version import VERSION as __version__

    if spec.name in optuna.get_all_study_names(storage=storage):
        return None
    try:
        directions = [StudyDirection.MAXIMIZE] + [StudyDirection.MINIMIZE] * len(spec.costs)
        study_id = storage.create_new_study(directions=directions, study_name=spec.name)
    except DuplicatedStudyError:
        return None  # another process created it a moment ago
    if warm is not None:  # marked first: a warm start cut short is found and redone whole
        storage.set_study_user_attr(study_id, WARM_PENDING_ATTR, warm.source)
    storage.set_study_user_attr(study_id, SPEC_ATTR, spec.to_dict())
    storage.set_study_user_attr(study_id, VERSION_ATTR, __version__)
    folder = Path(spec.source).resolve().parent if Path(spec.source).is_file() else None
    source = model_source(spec.model.kind, dict(spec.model.fixed), folder)
    if source is not None:
        storage.set_study_user_attr(study_id, SOURCE_ATTR, source)
    if n_val is not None:  # the standard error of a validation accuracy needs it
        storage.set_study_user_attr(study_id, VAL_SIZE_ATTR, n_val)
    if arrays is not None:  # data= from Python: their fingerprint (search/arrays.py)
        storage.set_study_user_attr(study_id, ARRAYS_ATTR, arrays)
    return study_id


def _check_resume(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    target: StorageURL,
    arrays: dict[str, Any] | None,
) -> StudySpec:
    """A stored study resumes only with the search it was made from; else one line. Returns
    `spec` with the schedule stepping the stored study trained with, where `spec` is silent."""
    import optuna

    existing = optuna.load_study(study_name=spec.name, storage=storage)
    _wait_for_spec(existing, storage)
    stored = stored_spec(existing, target.shown)
    every = stored.model.fixed.get(SCHEDULE_KEY, SCHEDULE_DEFAULT)
    spec = pin_schedule_every(spec, every)
    check_same(existing.user_attrs.get(ARRAYS_ATTR), arrays, spec.source)
    # The user's model file, by its content: the study file may sit at another path now.
    stored_source = existing.user_attrs.get(SOURCE_ATTR)
    locate_model_source(spec.model.kind, dict(spec.model.fixed), stored_source, spec.source)
    if [dict(e) for e in spec.enqueue] != [dict(e) for e in stored.enqueue]:
        raise UsageError(
            f"{spec.source}: [[enqueue]]: differs from the tables study {spec.name!r} was "
            f"created with in {target.shown}; they are tried only when a study is created: "
            "restore them, or give the study a new [study].name"
        )
    new_identity, stored_identity = _identity(spec), _identity(stored)
    for key, value in new_identity.items():
        if stored_identity[key] != value:
            raise UsageError(
                f"{spec.source}: {key}: {_difference(stored_identity[key], value)} (the "
                f"stored study {spec.name!r} in {target.shown}); give the study a new "
                f"[study].name, or delete the old one: optuna delete-study --study-name "
                f"{spec.name} --storage {target.shown}"
            )
    return spec


def _difference(stored: Any, new: Any, where: str = "") -> str:
    """A short description of how two identity entries differ: the stored and the new value
    of the one key that differs, however deep; else the keys that differ."""
    if isinstance(stored, dict) and isinstance(new, dict):
        changed = [k for k in {**stored, **new} if stored.get(k) != new.get(k)]
        if len(changed) == 1 and changed[0] in stored and changed[0] in new:
            return _difference(stored[changed[0]], new[changed[0]], f"{where}{changed[0]}.")
        return "differs in " + ", ".join(f"{where}{k}" for k in changed)
    return f"{where[:-1]}{': ' if where else ''}stored {stored!r}, now {new!r}"


def _identity(spec: StudySpec) -> dict[str, Any]:
    """What must match to resume a study, with the user's model file named portably."""
    identity = spec.identity()
    data = {**identity["[data]"], "dataset": portable_dataset(identity["[data]"]["dataset"])}
    return {**identity, "[data]": data, "[model]": portable_model(identity["[model]"])}


def _wait_for_spec(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """A study created this instant by another process gets its spec a moment later."""
    deadline = time.monotonic() + SPEC_WAIT_S
    while time.monotonic() < deadline:
        if SPEC_ATTR in storage.get_study_user_attrs(internals.study_id(study)):
            return
        if storage.get_n_trials(internals.study_id(study)):
            return  # it has trials and no spec: not an hpsearch study; stored_spec says so
        time.sleep(0.05)


def read_warm_start(
    spec: StudySpec, storage: Any, target: StorageURL, flag: str | None
) -> WarmStart | None:
    """The warm start's source, read before anything is created (a bad source leaves no
    study behind). None when there is none, or the study exists (it started warm or cold)."""
    import optuna

    from hpsearch.warm import read_source

    exists = spec.name in optuna.get_all_study_names(storage=storage)
    if flag is not None and exists:
        raise UsageError(
            f"--warm-start: study {spec.name!r} exists already in {target.shown}; a warm start "
            "adds trials only when a study is created: give [study].name a new name"
        )
    source = flag if flag is not None else spec.warm_start
    if source is None or exists:
        return None
    key = "--warm-start" if flag is not None else f"{spec.source}: [study].warm_start"
    if source == spec.name:
        raise UsageError(f"{key}: got {source!r}, this study itself; give another study")
    warm, origin = read_source(source, storage, target.shown, key)
    return warm.compared_with(origin, spec)


def decide_threads(storage: Any, study_id: int) -> int:
    """The study's thread count: stored when it is created (or first resumed, for a study of
    an older hpsearch), by a rule that reads no load: $HPSEARCH_THREADS, else every core of
    this machine. Every later run and worker, on any machine, trains with it."""
    from hpsearch.models.threads import training_threads
    from hpsearch.records import STUDY_THREADS_ATTR
    from hpsearch.records import study_threads

    stored = study_threads(storage.get_study_user_attrs(study_id))
    if stored is not None:
        return stored
    threads = training_threads()
    storage.set_study_user_attr(study_id, STUDY_THREADS_ATTR, threads)
    return threads


def refuse_cut_short_warm_start(name: str, attrs: dict[str, Any], shown: str) -> None:
    """A worker joining by name never trains on a warm start cut short: `run` redoes it."""
    if WARM_PENDING_ATTR in attrs and WARM_ATTR not in attrs:
        raise UsageError(
            f"study {name!r} in {shown}: its warm start from {attrs[WARM_PENDING_ATTR]} was cut "
            "short (or is still being added); `hpsearch run STUDY.toml` redoes it whole, then "
            "start the workers"
        )


def drop_interrupted_warm_start(
    spec: StudySpec, storage: Any, target: StorageURL, log: Callable[[str], None]
) -> None:
    """A warm start is all or nothing: a study whose warm start was cut short (the process
    killed while adding) holds only some of the copies and none of its own trials; it is
    deleted here, and this run creates it again, whole."""
    import optuna

    from hpsearch.records import is_warm

    if spec.name not in optuna.get_all_study_names(storage=storage):
        return
    study_id = storage.get_study_id_from_name(spec.name)
    attrs = storage.get_study_user_attrs(study_id)
    if WARM_PENDING_ATTR not in attrs or WARM_ATTR in attrs:
        return
    trials = storage.get_all_trials(study_id, deepcopy=False)
    if all(is_warm(t) for t in trials):
        log(
            f"study {spec.name!r} in {target.shown}: its warm start from "
            f"{attrs[WARM_PENDING_ATTR]} was cut short ({len(trials)} trials added); starting "
            "the study again"
        )
        optuna.delete_study(study_name=spec.name, storage=storage)
