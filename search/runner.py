"""`hpsearch run` and `hpsearch worker`: run a study's trials until its budget is finished.

Creating or resuming the study is search/creation.py's; the worker processes of
`run --workers` are search/pool.py's; the trial loop itself is search/worker.py's.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from hpsearch import optuna_internals as internals
from hpsearch.algorithms import make_pruner
from hpsearch.algorithms import make_sampler
from hpsearch.algorithms import reads_finished_only
from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.arrays import for_stored
from hpsearch.creation import create_or_resume
from hpsearch.creation import drop_interrupted_warm_start
from hpsearch.creation import read_warm_start
from hpsearch.creation import refuse_cut_short_warm_start
from hpsearch.errors import UsageError
from hpsearch.models.threads import requested_threads
from hpsearch.models.threads import training_threads
from hpsearch.objective import Objective
from hpsearch.objective import derive_seed
from hpsearch.progress import Progress
from hpsearch.records import SOURCE_ATTR
from hpsearch.records import complete_best_first
from hpsearch.records import finished_count
from hpsearch.records import locate_spec
from hpsearch.records import study_threads
from hpsearch.storage import StorageURL
from hpsearch.storage import check_writable
from hpsearch.storage import open_storage
from hpsearch.trial_child import Interrupts

if TYPE_CHECKING:
    import optuna

    from hpsearch.models.data import Dataset
    from hpsearch.spec import DataSpec
    from hpsearch.spec import StudySpec
    from hpsearch.warm import WarmStart


NO_COMPLETE_TRIAL = 3  # the exit code of a run or worker after which no trial is complete


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
    ran: int = 0  # the trials this command's processes trained
    why: str = ""  # why they stopped: budget, timeout, stop rule, signal, workers lost
    detached: bool = False  # run --on CLUSTER --detach: the workers were placed, not followed

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
    def completed(self) -> int:
        """This study's complete trials (warm-start copies left out)."""
        return len(complete_best_first(self.study.get_trials(deepcopy=False)))

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return 128 + self.signal
        if self.lost and self.finished < self.budget:
            return 2 if all(code == 2 for code in self.lost) else 1
        if self.completed == 0:
            return NO_COMPLETE_TRIAL
        return 0


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
    storage, study_id = internals.storage_of(study), internals.study_id(study)

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


def _deliver_when(interrupted: threading.Event, interrupts: Any) -> None:
    def deliver() -> None:
        interrupted.wait()
        interrupts.deliver(signal.SIGTERM)

    threading.Thread(target=deliver, daemon=True, name="hpsearch-interrupt").start()


def _work(
    study: optuna.Study,
    spec: StudySpec,
    data: Dataset,
    budget: int,
    timeout: float | None,
    progress: Progress,
    hint: bool = True,
    interrupted: threading.Event | None = None,
) -> Ended:
    """Run this process's share of the trials, training in a process of its own
    (search/trial_process.py) on the threads $HPSEARCH_THREADS or the study asks for (never
    a count measured from the moment's speed); how it ended. `hint`: a first Ctrl-C says on
    stderr that a second one stops at once."""
    from hpsearch.models.torch_training import TorchMissing
    from hpsearch.models.training import TrainingDiverged
    from hpsearch.models.usercode import UserCodeError
    from hpsearch.trial_process import ProcessEnded
    from hpsearch.trial_process import Trainer
    from hpsearch.worker import BudgetGuard
    from hpsearch.worker import run_trials

    interrupts = Interrupts(hint=hint)
    if interrupted is not None:  # a Dask task's stop: as SIGTERM
        _deliver_when(interrupted, interrupts)
    guard = BudgetGuard(budget)
    threads = requested_threads() or study_threads(study.user_attrs) or training_threads()

    def stop() -> bool:
        return interrupts.signal is not None

    internals.storage_of(study).set_handlers(log=progress.write, stop=stop)
    internals.storage_of(study).for_worker(light_reads=reads_finished_only(spec), budget=budget)
    why = "signal"
    objective = None
    try:
        state = {"data": data, "threads": threads}
        with interrupts.installed(), Trainer(state, spec.model.kind) as trainer:
            interrupts.trainer = trainer
            objective = Objective(spec, data, trainer, threads, interrupts, guard)
            why = run_trials(
                study,
                objective,
                guard,
                timeout=timeout,
                callbacks=[progress],
                catch=(TrainingDiverged, UserCodeError, ProcessEnded),
                stop=stop,
                log=progress.write,
                converged=_convergence(study, spec, len(data.y_val)),
            )
    except TorchMissing as e:
        raise UsageError(f"{spec.source}: [model].kind: {e}") from None
    except KeyboardInterrupt:
        if interrupts.signal is None:  # Ctrl-C before the handler was installed
            interrupts.signal = 2
    finally:
        interrupts.trainer = None
    ran = objective.ran if objective is not None else 0
    return Ended(interrupts.signal, "signal" if interrupts.signal else why, ran)


@dataclass(frozen=True)
class Ended:
    """How a process's share of the trials ended."""

    signal: int | None  # the signal that interrupted it
    why: str  # "budget", "timeout", "stop rule" or "signal" (worker.run_trials)
    ran: int  # the trials it trained


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
    progress: bool = True,
    workers: int = 1,
    debug: bool = False,
    warm_start: str | None = None,
    arrays: dict[str, Any] | None = None,
    trial_timeout: float | None = None,
    on: Any = None,
) -> RunOutcome:
    """Run trials until the study has `n_trials` finished ones.

    `on`: a launcher (search/launchers.py) that places the `workers` on a cluster; this
    process then follows the study (or, with the launcher's `detach`, returns at once).

    `arrays`: the fingerprint record of arrays given in Python (search/arrays.py), stored with
    a new study and checked against a stored one.

    `progress`: a progress bar on stderr, and a line for each trial the user's code failed.
    With `workers` > 1, worker processes run the trials (with `debug`, they show tracebacks).
    `warm_start` (`run --warm-start`) overrides [study].warm_start; it applies only to a study
    this run creates. `trial_timeout` (`--trial-timeout`) overrides [study].trial_timeout.
    """
    # Over 60 lines for its docstring and the order of its steps, each of which matters.
    import optuna

    start = time.monotonic()  # the time said at the end covers the whole command
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # hpsearch reports trials itself
    if n_trials is not None and n_trials < len(spec.enqueue):
        raise UsageError(
            f"--n-trials: got {n_trials}; the study file has {len(spec.enqueue)} [[enqueue]] "
            "tables, and each must be tried: allowed: a number >= that"
        )
    # The data first: a bad data file must not leave a study behind; and with several workers
    # the prepared cache is written once, here, before they memory-map it.
    data = load_data(spec.data, spec.seed, spec.source)
    if on is not None:
        on.check(target)
    storage = open_storage(target, create=True, heartbeat=True, log=_stderr)
    drop_interrupted_warm_start(spec, storage, target, _stderr)
    warm = read_warm_start(spec, storage, target, warm_start)
    study, warm, spec = create_or_resume(
        spec, storage, target, warm, n_val=len(data.y_val), arrays=arrays
    )
    budget = n_trials or spec.n_trials
    outcome = RunOutcome(study, budget, target.shown, rule=spec.stop, warm=warm)
    if outcome.finished >= budget:
        return dataclasses.replace(outcome, nothing_to_run=True)
    check_writable(target)
    timeout = timeout if timeout is not None else spec.timeout
    if trial_timeout is not None:
        spec = dataclasses.replace(spec, trial_timeout=trial_timeout)
    lost: list[int] = []
    if on is not None:
        signal_number, lost, before = _on_cluster(
            on, study, target, budget, timeout, spec, workers, progress
        )
        if on.detach:
            return dataclasses.replace(outcome, detached=True)
        ended = Ended(signal_number, _why(outcome, signal_number, timeout), 0)
        ended = dataclasses.replace(ended, ran=outcome.finished - before)
    elif workers > 1:
        from hpsearch.pool import WorkerTask
        from hpsearch.pool import run_workers

        task = WorkerTask(
            study.study_name,
            budget,
            timeout,
            debug,
            progress,
            os.getpid(),
            os.getcwd(),
            spec.trial_timeout,
        )
        before = outcome.finished
        signal_number, lost = run_workers(study, target, task, workers)
        ended = Ended(signal_number, _why(outcome, signal_number, timeout), 0)
        ended = dataclasses.replace(ended, ran=outcome.finished - before)
    else:
        bar = Progress(study, budget, bar=progress, failures=progress)
        try:
            ended = _work(study, spec, data, budget, _left(timeout, start), bar)
        finally:
            bar.close()
    seconds = time.monotonic() - start
    return dataclasses.replace(
        outcome,
        seconds=seconds,
        signal=ended.signal,
        lost=tuple(lost),
        ran=ended.ran,
        why=ended.why,
    )


def _on_cluster(
    on: Any,
    study: optuna.Study,
    target: StorageURL,
    budget: int,
    timeout: float | None,
    spec: StudySpec,
    workers: int,
    progress: bool,
) -> tuple[int | None, list[int], int]:
    """Place the workers with launcher `on`, then follow the study (unless detached)."""
    from hpsearch.pool import WorkerTask

    task = WorkerTask(
        study.study_name,
        budget,
        timeout,
        debug=False,
        progress=progress,
        parent=os.getpid(),
        folder=os.getcwd(),
        trial_timeout=spec.trial_timeout,
    )
    before = finished_count(study.get_trials(deepcopy=False))
    print(on.start(study, target, task, workers), file=sys.stderr, flush=True)
    if on.detach:
        return None, [], before
    signal_number, lost = on.follow(study, task)
    return signal_number, lost, before


def _why(outcome: RunOutcome, signal_number: int | None, timeout: float | None) -> str:
    """Why the workers of `run --workers` stopped, from the study they left."""
    if signal_number is not None:
        return "signal"
    if outcome.finished >= outcome.budget:
        return "budget"
    if outcome.stopped is not None:
        return "stop rule"
    return "timeout" if timeout is not None else "workers lost"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _left(timeout: float | None, start: float) -> float | None:
    """What is left of a --timeout counted from the command's start (loading included)."""
    return None if timeout is None else max(0.0, timeout - (time.monotonic() - start))


def join_study(
    name: str,
    target: StorageURL,
    *,
    n_trials: int | None,
    timeout: float | None,
    bar: bool,
    failures: bool,
    trial_timeout: float | None = None,
    hint: bool = True,
    interrupted: threading.Event | None = None,
) -> RunOutcome:
    """`hpsearch worker`, and each worker of `run --workers`: run trials of a stored study
    until its budget is finished (`interrupted`: set by another thread, it stops them as a
    SIGTERM would). `bar`: a progress bar; `failures`: a line for each trial the
    user's code failed; `trial_timeout` overrides the stored spec's; `hint`: a first Ctrl-C
    says that a second one stops at once."""
    import optuna

    from hpsearch.records import load_study

    start = time.monotonic()  # the time said at the end covers the whole command
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(target, create=False, heartbeat=True, log=_stderr)
    stored, spec = load_study(storage, name, target.shown)
    refuse_cut_short_warm_start(name, stored.user_attrs, target.shown)
    spec = locate_spec(spec, stored.user_attrs.get(SOURCE_ATTR))
    spec = for_stored(spec, stored.user_attrs.get(ARRAYS_ATTR), None, spec.source)
    if trial_timeout is not None:
        spec = dataclasses.replace(spec, trial_timeout=trial_timeout)
    data = load_data(spec.data, spec.seed, spec.source)
    study = _sampler_study(spec, storage)
    budget = n_trials or spec.n_trials
    progress = Progress(study, budget, bar=bar, failures=failures)
    try:
        left = _left(timeout or spec.timeout, start)
        ended = _work(study, spec, data, budget, left, progress, hint, interrupted)
    finally:
        progress.close()
    seconds = time.monotonic() - start
    return RunOutcome(
        study,
        budget,
        target.shown,
        seconds,
        signal=ended.signal,
        rule=spec.stop,
        ran=ended.ran,
        why=ended.why,
    )
