"""`hpsearch run`: create or resume a study and run trials until its budget is finished."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.algorithms import make_pruner
from hpsearch.algorithms import make_sampler
from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.arrays import check_same
from hpsearch.arrays import for_stored
from hpsearch.arrays import portable_dataset
from hpsearch.errors import UsageError
from hpsearch.objective import Interrupts
from hpsearch.objective import Objective
from hpsearch.objective import derive_seed
from hpsearch.pareto import VAL_SIZE_ATTR
from hpsearch.records import DIVERGED_ATTR
from hpsearch.records import SOURCE_ATTR
from hpsearch.records import SPEC_ATTR
from hpsearch.records import USER_ERROR_ATTR
from hpsearch.records import VERSION_ATTR
from hpsearch.records import WARM_ATTR
from hpsearch.records import WARM_PENDING_ATTR
from hpsearch.records import accuracy
from hpsearch.records import finished_count
from hpsearch.records import locate_model_source
from hpsearch.records import locate_spec
from hpsearch.records import model_source
from hpsearch.records import own_trials
from hpsearch.records import portable_model
from hpsearch.records import stored_spec
from hpsearch.storage import ENV_VAR
from hpsearch.storage import StorageURL
from hpsearch.storage import open_storage

# The folder `run --workers` ran in, for its workers' sys.path (last, after every package).
_CWD_ENV = "HPSEARCH_PARENT_CWD"
# How long a process that lost the race to create a study waits for the winner's spec.
SPEC_WAIT_S = 10.0

if TYPE_CHECKING:
    import optuna

    from hpsearch.models.data import Dataset
    from hpsearch.spec import DataSpec
    from hpsearch.spec import StudySpec
    from hpsearch.warm import WarmStart


def _difference(stored: Any, new: Any) -> str:
    """A short description of how two identity entries differ."""
    if isinstance(stored, dict) and isinstance(new, dict):
        changed = [k for k in {**stored, **new} if stored.get(k) != new.get(k)]
        return "differs in " + ", ".join(changed)
    return f"stored {stored!r}, now {new!r}"


def create_or_resume(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    target: StorageURL,
    warm: WarmStart | None = None,
    n_val: int | None = None,
    arrays: dict[str, Any] | None = None,
) -> tuple[optuna.Study, WarmStart | None]:
    """Create the study, or load it when the name exists and was made from the same search.

    Safe when several processes start on the same name at the same moment (docs/workers.md's
    many-machines recipe): exactly one creates the study and stores its spec; the others
    wait for the spec to be stored, then check it like any resume. The sampler is seeded from
    the study seed and the number of trials already there, so a resumed study does not replay
    the random start-up trials of its first run. A new study gets `warm`'s configurations
    first (search/warm.py); what was added is returned.
    """
    import optuna
    from optuna.exceptions import DuplicatedStudyError
    from optuna.study import StudyDirection

    study_id = None
    if spec.name not in optuna.get_all_study_names(storage=storage):
        try:
            directions = [StudyDirection.MAXIMIZE] + [StudyDirection.MINIMIZE] * len(spec.costs)
            study_id = storage.create_new_study(directions=directions, study_name=spec.name)
        except DuplicatedStudyError:
            pass  # another process created it a moment ago
    if study_id is not None:
        from hpsearch import __version__

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
    else:
        existing = optuna.load_study(study_name=spec.name, storage=storage)
        _wait_for_spec(existing, storage)
        stored = stored_spec(existing, target.shown)
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
                    f"{spec.source}: {key}: {_difference(stored_identity[key], value)} from "
                    f"the stored study {spec.name!r} in {target.shown}; give the study a new "
                    f"[study].name, or delete the old one: optuna delete-study --study-name "
                    f"{spec.name} --storage {target.shown}"
                )
    n_existing = storage.get_n_trials(storage.get_study_id_from_name(spec.name))
    sampler = make_sampler(spec, seed=derive_seed(spec.seed, n_existing))
    study = optuna.load_study(
        study_name=spec.name, storage=storage, sampler=sampler, pruner=make_pruner(spec)
    )
    if study_id is not None:
        if warm is not None:
            from hpsearch.warm import add

            warm = add(study, spec, warm)
            storage.set_study_user_attr(study_id, WARM_ATTR, warm.to_dict())
        for entry in spec.enqueue:  # tried first, in this order, with exactly these values
            study.enqueue_trial(dict(entry))
        # optuna-dashboard, the optuna CLI and Optuna's figures then say "val_accuracy", not
        # "Objective 0".
        with warnings.catch_warnings():  # Optuna calls it experimental
            warnings.simplefilter("ignore")
            study.set_metric_names(list(spec.objectives))
    return study, (warm if study_id is not None else None)


def _identity(spec: StudySpec) -> dict[str, Any]:
    """What must match to resume a study, with the user's model file named portably."""
    identity = spec.identity()
    data = {**identity["[data]"], "dataset": portable_dataset(identity["[data]"]["dataset"])}
    return {**identity, "[data]": data, "[model]": portable_model(identity["[model]"])}


def _wait_for_spec(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """A study created this instant by another process gets its spec a moment later."""
    deadline = time.monotonic() + SPEC_WAIT_S
    while time.monotonic() < deadline:
        if SPEC_ATTR in storage.get_study_user_attrs(study._study_id):
            return
        if storage.get_n_trials(study._study_id):
            return  # it has trials and no spec: not an hpsearch study; stored_spec says so
        time.sleep(0.05)


@dataclass(frozen=True)
class RunOutcome:
    """What a `run` or `worker` did; the CLI turns it into lines and an exit code."""

    study: optuna.Study
    budget: int
    storage: str  # the URL as shown (password masked)
    seconds: float = 0.0
    nothing_to_run: bool = False  # the budget was already finished
    signal: int | None = None  # the signal that interrupted it
    lost: tuple[int, ...] = ()  # exit codes of `run --workers` workers that stopped early
    warm: WarmStart | None = None  # what a warm start added when this run created the study
    rule: Any = None  # the study's stopping rule (StopSpec), if it has one

    @property
    def stopped(self) -> dict[str, Any] | None:
        """The stored decision to stop before the budget (search/stopping.py), if any."""
        from hpsearch.stopping import stored_decision

        if self.rule is None:
            return None
        return stored_decision(self.study.user_attrs, self.rule)

    @property
    def finished(self) -> int:
        return finished_count(self.study.get_trials(deepcopy=False))

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return 128 + self.signal
        if self.lost and self.finished < self.budget:
            return 2 if all(code == 2 for code in self.lost) else 1
        return 0


class _Progress:
    """One tqdm bar over the study's finished trials (whoever ran them), with the best value."""

    def __init__(self, study: optuna.Study, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.quiet = quiet
        trials = study.get_trials(deepcopy=False)
        self.bar = tqdm(
            total=total,
            initial=min(finished_count(trials), total),
            desc=study.study_name,
            unit="trial",
            file=sys.stderr,
            disable=quiet,
            dynamic_ncols=True,
        )
        self.refresh(trials)

    def refresh(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        complete = [accuracy(t) for t in own_trials(trials) if t.state.name == "COMPLETE"]
        if complete:
            self.bar.set_postfix_str(f"best val acc {max(complete):.4f}", refresh=False)
        self.bar.n = min(finished_count(trials), self.bar.total)
        self.bar.refresh()

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attrs = trial.user_attrs
        told = attrs.get(DIVERGED_ATTR) or attrs.get(USER_ERROR_ATTR)
        if trial.state.name == "FAIL" and told and not self.quiet:
            self.write(f"trial {trial.number} failed: {trial.user_attrs['fail_reason']}")
        self.refresh(study.get_trials(deepcopy=False))

    def write(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def load_data(data: DataSpec, seed: int, source: str) -> Dataset:
    """A study's dataset; a missing or malformed file is the user's to fix (exit 2)."""
    from hpsearch.models.data import DataError
    from hpsearch.models.data import load_dataset

    try:
        return load_dataset(
            data.dataset,
            val_fraction=data.val_fraction,
            test_fraction=data.test_fraction,
            preprocess=data.preprocess,
            seed=seed,
        )
    except DataError as e:
        raise UsageError(f"{source}: [data].dataset: {e}") from None


def _convergence(
    study: optuna.Study, spec: StudySpec, n_val: int
) -> Callable[[list[Any]], bool] | None:
    """The study's stopping rule as the worker loop asks it: stop now? The first worker to
    decide stores the decision with the study; the others then stop on it too."""
    from hpsearch.stopping import STOP_ATTR
    from hpsearch.stopping import decide
    from hpsearch.stopping import stored_decision

    rule = spec.stop
    if rule is None:
        return None
    storage, study_id = study._storage, study._study_id

    def converged(trials: list[Any]) -> bool:
        attrs = storage.get_study_user_attrs(study_id)
        if stored_decision(attrs, rule):
            return True
        decision = decide(trials, rule, n_val, attrs)
        if decision is None:
            return False
        storage.set_study_user_attr(study_id, STOP_ATTR, decision.to_dict(rule))
        return True

    return converged


def _work(
    study: optuna.Study,
    spec: StudySpec,
    data: Dataset,
    budget: int,
    timeout: float | None,
    progress: _Progress,
) -> int | None:
    """Run this process's share of the trials; the signal number if interrupted."""
    from hpsearch.models.torch_models import TorchMissing
    from hpsearch.models.training import TrainingDiverged
    from hpsearch.models.usercode import UserCodeError
    from hpsearch.worker import BudgetGuard
    from hpsearch.worker import run_trials

    interrupts = Interrupts()
    guard = BudgetGuard(budget)

    def stop() -> bool:
        return interrupts.signal is not None

    study._storage.set_handlers(log=progress.write, stop=stop)
    try:
        with interrupts.installed():
            run_trials(
                study,
                Objective(spec, data, interrupts, guard),
                guard,
                timeout=timeout,
                callbacks=[progress],
                catch=(TrainingDiverged, UserCodeError),
                stop=stop,
                log=progress.write,
                converged=_convergence(study, spec, len(data.y_val)),
            )
    except TorchMissing as e:
        raise UsageError(f"{spec.source}: [model].kind: {e}") from None
    except KeyboardInterrupt:
        if interrupts.signal is None:  # Ctrl-C before the handler was installed
            interrupts.signal = 2
    return interrupts.signal


def _sampler_study(spec: StudySpec, storage: Any) -> optuna.Study:
    """The stored study, loaded with this process's own seeded sampler and the pruner."""
    import optuna

    n_existing = storage.get_n_trials(storage.get_study_id_from_name(spec.name))
    # With several workers each needs its own sampler seed, or their random start-up trials
    # would coincide; parallel studies are not reproducible anyway.
    sampler = make_sampler(spec, seed=derive_seed(spec.seed, n_existing, os.getpid()))
    return optuna.load_study(
        study_name=spec.name, storage=storage, sampler=sampler, pruner=make_pruner(spec)
    )


def run_study(
    spec: StudySpec,
    target: StorageURL,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    quiet: bool = False,
    workers: int = 1,
    debug: bool = False,
    warm_start: str | None = None,
    arrays: dict[str, Any] | None = None,
) -> RunOutcome:
    """Run trials until the study has `n_trials` finished ones.

    `arrays`: the fingerprint record of arrays given in Python (search/arrays.py), stored with
    a new study and checked against a stored one.

    With `workers` > 1, worker processes run the trials (with `debug`, they show tracebacks).
    `warm_start` (`run --warm-start`) overrides [study].warm_start; it applies only to a study
    this run creates.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # hpsearch reports trials itself
    if n_trials is not None and n_trials < len(spec.enqueue):
        raise UsageError(
            f"--n-trials: got {n_trials}; the study file has {len(spec.enqueue)} [[enqueue]] "
            "tables, and each must be tried: allowed: a number >= that"
        )
    # The data first: a bad data file must not leave a study behind; and with several workers
    # the prepared cache is written once, here, before they memory-map it.
    data = load_data(spec.data, spec.seed, spec.source)
    storage = open_storage(target, create=True, heartbeat=True, log=_stderr)
    _drop_interrupted_warm_start(spec, storage, target)
    warm = _read_warm_start(spec, storage, target, warm_start)
    study, warm = create_or_resume(
        spec, storage, target, warm, n_val=len(data.y_val), arrays=arrays
    )
    budget = n_trials or spec.n_trials
    outcome = RunOutcome(study, budget, target.shown, rule=spec.stop, warm=warm)
    if outcome.finished >= budget:
        return dataclasses.replace(outcome, nothing_to_run=True)
    timeout = timeout if timeout is not None else spec.timeout
    start = time.monotonic()
    lost: list[int] = []
    if workers > 1:
        signal_number, lost = _run_workers(study, target, budget, timeout, quiet, workers, debug)
    else:
        progress = _Progress(study, budget, quiet)
        try:
            signal_number = _work(study, spec, data, budget, timeout, progress)
        finally:
            progress.close()
    seconds = time.monotonic() - start
    return dataclasses.replace(outcome, seconds=seconds, signal=signal_number, lost=tuple(lost))


def _read_warm_start(
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


def _drop_interrupted_warm_start(spec: StudySpec, storage: Any, target: StorageURL) -> None:
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
        _stderr(
            f"study {spec.name!r} in {target.shown}: its warm start from "
            f"{attrs[WARM_PENDING_ATTR]} was cut short ({len(trials)} trials added); starting "
            "the study again"
        )
        optuna.delete_study(study_name=spec.name, storage=storage)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def join_study(
    name: str,
    target: StorageURL,
    *,
    n_trials: int | None,
    timeout: float | None,
    quiet: bool,
    parent: int | None = None,
) -> RunOutcome:
    """`hpsearch worker`: run trials of a stored study until its budget is finished.

    With `parent` (set by `run --workers`), the worker stops cleanly once that process is gone.
    """
    import optuna

    from hpsearch.records import load_study
    from hpsearch.worker import watch_parent

    if parent is not None:
        watch_parent(parent)
        folder = os.environ.get(_CWD_ENV)
        if folder and folder not in sys.path:
            sys.path.append(folder)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(target, create=False, heartbeat=True, log=_stderr)
    stored, spec = load_study(storage, name, target.shown)
    spec = locate_spec(spec, stored.user_attrs.get(SOURCE_ATTR))
    spec = for_stored(spec, stored.user_attrs.get(ARRAYS_ATTR), None, spec.source)
    data = load_data(spec.data, spec.seed, spec.source)
    study = _sampler_study(spec, storage)
    budget = n_trials or spec.n_trials
    start = time.monotonic()
    progress = _Progress(study, budget, quiet)
    try:
        signal_number = _work(study, spec, data, budget, timeout or spec.timeout, progress)
    finally:
        progress.close()
    seconds = time.monotonic() - start
    return RunOutcome(study, budget, target.shown, seconds, signal=signal_number, rule=spec.stop)


def _describe_exit(index: int, workers: int, proc: Any) -> str:
    """Which worker stopped, and how, in one line."""
    import signal

    who = f"worker {index + 1} of {workers} (pid {proc.pid})"
    code = proc.returncode
    if code < 0:
        name = signal.Signals(-code).name
        return (
            f"{who} was killed by {name}; the other workers go on, and its running trial is "
            "failed and re-queued once its heartbeat is stale"
        )
    if code in (130, 143):
        name = "SIGINT" if code == 130 else "SIGTERM"
        return (
            f"{who} was stopped by {name}; its running trial was marked failed; the others go on"
        )
    if code == 2:
        return f"{who} stopped on bad input (exit 2); its message is above"
    return f"{who} exited with code {code}; its message is above"


def _run_workers(
    study: optuna.Study,
    target: StorageURL,
    budget: int,
    timeout: float | None,
    quiet: bool,
    workers: int,
    debug: bool,
) -> tuple[int | None, list[int]]:
    """Start `workers` processes of `hpsearch worker`, each with cores / workers threads, and
    show one progress bar for the study; Ctrl-C or SIGTERM is passed on to them once.

    A worker that stops early is reported (which one, and how) and the others go on.
    Returns the signal received, if any, and the exit codes of workers that stopped early.
    """
    import signal
    import subprocess

    threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
    # The URL goes in the environment, not the command line, where `ps` would show a password.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "HPSEARCH_THREADS": threads,
        ENV_VAR: target.url,
    }
    # `-P`: the current folder is not put first on the workers' sys.path, so a user's
    # models.py, search.py or optuna.py there cannot shadow hpsearch's packages or Optuna. The
    # worker appends it last instead (join_study), so a module of the user's there still
    # imports by name.
    env[_CWD_ENV] = os.getcwd()
    argv = [
        sys.executable,
        "-P",
        "-m",
        "hpsearch.cli",
        "worker",
        study.study_name,
        "--n-trials",
        str(budget),
        "--quiet",
        "--parent",
        str(os.getpid()),
    ]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    if debug:
        argv.append("--debug")
    # Their own session: a Ctrl-C in the terminal reaches this process only, which forwards it
    # once (a second signal would interrupt a worker anywhere, even inside a database write).
    # They watch this process and stop cleanly if it dies (search/worker.py: watch_parent).
    # Their stderr is this terminal's: their messages (storage errors) are seen as they come,
    # and a full pipe can never block a worker.
    procs = [
        subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    progress = _Progress(study, budget, quiet)
    received: list[int] = []
    lost: dict[int, int] = {}

    def forward(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while any(proc.poll() is None for proc in procs):
            time.sleep(1.0)
            for index, proc in enumerate(procs):
                code = proc.poll()
                if code not in (None, 0) and index not in lost and not received:
                    lost[index] = code
                    progress.write(_describe_exit(index, workers, proc))
            progress.refresh(study.get_trials(deepcopy=False))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        progress.refresh(study.get_trials(deepcopy=False))
        progress.close()
    for index, proc in enumerate(procs):  # those that stopped in the last second
        if proc.returncode != 0 and index not in lost and not received:
            lost[index] = proc.returncode
            _stderr(_describe_exit(index, workers, proc))
    return (received[0] if received else None), list(lost.values())
