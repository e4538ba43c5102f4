"""Running trials until a study's budget is finished, safely beside other workers.

Every worker (the process of `hpsearch run`, each of `run --workers K`, each `hpsearch worker`
on any machine) runs this loop against the shared storage:

- Before asking for a trial it counts finished trials (complete, pruned, diverged) and trials
  in flight (running, waiting to be retried). When the rest of the budget is already in flight
  it waits, failing dead workers' trials meanwhile (they must not block the end).
- Two workers can still ask at the same moment. On a database, the count is made again in
  the transaction that creates the row (search/budget_count.py): no row beyond the budget.
  Through `hpsearch proxy` the objective checks the trial's rank instead: with as many trials
  ahead of it as the budget allows, it fails as surplus, not trained and not counted. A trial
  that takes the last place ends the worker's stretch, and then it looks at the study again.
- Storage errors are retried by the storage itself (search/retrying.py), never counted.
- A trial whose worker died is failed with its reason and re-queued with the same parameters
  and seed: `stale` when its heartbeat stopped (by the database server's clock, as Optuna
  does), `silent` when it never wrote one (by this worker's monotonic clock). No machine's
  wall clock is compared with another's, so workers in any time zone agree.

hpsearch's own ask/tell loop, not `study.optimize`: Optuna's lets a storage error escape from
its bookkeeping and its heartbeat thread die, and fails stale trials without saying why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from hpsearch import optuna_internals as internals
from hpsearch.budget_count import BudgetFull
from hpsearch.records import ATTEMPT_ATTRS
from hpsearch.records import FAIL_REASON_ATTR
from hpsearch.records import counts_toward_budget
from hpsearch.records import fail_reason
from hpsearch.records import finished_count

if TYPE_CHECKING:
    import optuna

POLL_S = 1.0  # how often a waiting worker looks at the study again
MAX_RETRY = 3  # a dead worker's trial is re-queued this many times at most


class Surplus(Exception):
    """This trial started when the whole budget was already finished or in flight."""


class BudgetGuard:
    """The in-trial half of the exact budget, with one storage query per trial.

    `check(trial)` raises Surplus when `budget` trials ahead of this one (lower numbers) are
    finished or in flight. Otherwise it notes whether this trial takes the last place
    (`last_place`); the worker then ends its stretch of trials after it and looks at the
    study again (waits or exits), without a query before every trial.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.last_place = False

    def taken(self, study: optuna.Study) -> bool:
        """Before a trial row is created: whether the budget is already finished or in flight
        (with no WAITING trial, which the next ask would take instead of a new row): one read,
        which the sampler then reuses (search/retrying.py). Without it each worker but one
        made a surplus row at the end of every study."""
        from optuna.trial import TrialState

        trials = _fresh_trials(study)
        if len(trials) < self.budget:  # fewer rows than the budget: nothing can be surplus
            return False
        if any(t.state == TrialState.WAITING for t in trials):
            return False
        running = sum(t.state == TrialState.RUNNING for t in trials)
        return finished_count(trials) + running >= self.budget

    def check(self, trial: optuna.Trial) -> None:
        from optuna.trial import TrialState

        # Trial numbers run 0, 1, 2, ... so trial n has exactly n trials ahead of it, in any
        # state. Below budget - 1 it can be neither surplus nor the last place: no query.
        if trial.number < self.budget - 1:
            self.last_place = False
            return
        in_flight = (TrialState.RUNNING, TrialState.WAITING)
        ahead = 0
        for t in _fresh_trials(trial.study):
            if t.number < trial.number and (counts_toward_budget(t) or t.state in in_flight):
                ahead += 1
        if ahead >= self.budget:
            self.last_place = True
            raise Surplus(
                f"surplus: {ahead} trials ahead of it already fill the budget of {self.budget}"
            )
        self.last_place = ahead + 1 >= self.budget


def _fresh_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as stored now, not a read reused (search/retrying.py)."""
    storage = internals.storage_of(study)
    fresh = getattr(storage, "fresh_trials", None)
    if fresh is None:
        return study.get_trials(deepcopy=False)
    return fresh(internals.study_id(study))


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Queue a dead worker's trial again: same parameters, same seed, up to MAX_RETRY times.

    The retry's system attrs `failed_trial` and `retry_history` are those of Optuna's
    RetryHeartbeatStaleTrialCallback, so Optuna's tools read them as usual.
    """
    import optuna

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRY:
        return
    system_attrs = {"failed_trial": trial.number, **trial.system_attrs}
    system_attrs["retry_history"] = history
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in ATTEMPT_ATTRS}
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
    )


def fail_dead_trial(study: optuna.Study, trial_id: int, reason: str) -> bool:
    """Fail a RUNNING trial whose worker is gone, with its reason, and re-queue it.

    Several workers may find the same dead trial at once: the first to set its state wins and
    re-queues it (the others get False, not an error).
    """
    from optuna.exceptions import UpdateFinishedTrialError

    storage = internals.storage_of(study)
    try:
        storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)
    except UpdateFinishedTrialError:
        return False  # another worker got there first
    if not storage.fail_if_running(trial_id):
        return False
    requeue(study, storage.get_trial(trial_id))
    return True


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail RUNNING trials whose heartbeat is older than the grace period, and re-queue them.

    The age is the database server's `now()` minus the server-written heartbeat: one clock."""
    storage = internals.storage_of(study)
    interval = storage.get_heartbeat_interval()
    if interval is None or storage.proxied:  # `hpsearch proxy` recovers (search/proxy.py)
        return
    grace = storage.backend.grace_period or 2 * interval
    for stale in internals.stale_trial_ids(storage, internals.study_id(study)):
        fail_dead_trial(
            study,
            stale,
            f"stale: no heartbeat for over {grace} s (its worker died or lost the database)",
        )


class SilentTrials:
    """RUNNING trials that never wrote a heartbeat, timed on this worker's monotonic clock.

    Optuna's stale check skips trials without a heartbeat row: a worker killed in the
    milliseconds between creating its trial and its first heartbeat, or a trial opened with
    `study.ask()` by another tool, would stay RUNNING forever and block the end of the budget.
    Such a trial is failed once this worker has watched it RUNNING without a heartbeat for
    three grace periods (so a first heartbeat merely delayed by a held lock is never mistaken
    for none). Trial start times are not used: they are the writing machine's local wall clock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.first_seen: dict[int, float] = {}

    def check(self, study: optuna.Study) -> list[int]:
        """Fail the trials silent for too long; returns their trial ids."""
        import sqlalchemy
        from optuna.trial import TrialState

        TrialHeartbeatModel = internals.heartbeat_table()
        storage = internals.storage_of(study)
        interval = storage.get_heartbeat_interval()
        if interval is None or storage.proxied:  # `hpsearch proxy` recovers them
            return []
        limit = 3 * (storage.backend.grace_period or 2 * interval)
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        running = {internals.trial_id(t): t for t in trials}
        query = sqlalchemy.select(TrialHeartbeatModel.trial_id).where(
            TrialHeartbeatModel.trial_id.in_(list(running))
        )
        with storage.backend.engine.connect() as conn:
            beating = {row[0] for row in conn.execute(query)}
        now = self.clock()
        silent = set(running) - beating
        self.first_seen = {i: self.first_seen.get(i, now) for i in silent}
        failed = []
        for trial_id, since in self.first_seen.items():
            if now - since > limit and fail_dead_trial(
                study,
                trial_id,
                f"silent: RUNNING for over {limit} s without ever writing a "
                "heartbeat (its worker died as it started, or another tool opened it)",
            ):
                failed.append(trial_id)
        return failed


class _Heartbeat:
    """Writes the trial's heartbeat every interval; a missed beat (database away) is skipped."""

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
        self.storage = internals.storage_of(study)
        self.trial_id = trial_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._beat, daemon=True, name=f"heartbeat-{trial_id}"
        )

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval()
        while True:
            self.storage.record_heartbeat(self.trial_id)  # never raises on a lost connection
            if self.stopped.wait(interval):
                return

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        if self.storage.get_heartbeat_interval() is None:
            yield
            return
        self.thread.start()
        try:
            yield
        finally:
            self.stopped.set()
            self.thread.join()


def _error_reason(error: BaseException) -> str:
    from hpsearch.retrying import is_transient
    from hpsearch.retrying import root_cause

    if is_transient(error):
        return f"storage failure: {root_cause(error)}"
    return f"error: {type(error).__name__}: {error}"


def run_one(
    study: optuna.Study,
    objective: Callable[[Any], float],
    catch: tuple[type[Exception], ...],
    log: Callable[[str], None],
) -> optuna.trial.FrozenTrial:
    """Ask for a trial, train it under a heartbeat, tell its outcome; the trial as stored.

    Exceptions in `catch` fail the trial (the objective has stored its reason). Any other
    exception, and KeyboardInterrupt, fails it too and is raised again once that is stored.
    """
    import optuna
    from optuna.trial import TrialState

    trial = study.ask()
    value: float | None = None
    state = TrialState.COMPLETE
    error: BaseException | None = None
    with _Heartbeat(study, internals.trial_id(trial)).running():
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except catch:
            state = TrialState.FAIL
        except (Exception, KeyboardInterrupt) as e:
            state, error = TrialState.FAIL, e
            if not isinstance(e, KeyboardInterrupt):
                with contextlib.suppress(Exception):
                    trial.set_user_attr(FAIL_REASON_ATTR, _error_reason(e))
    told = study.tell(
        trial,
        values=value if state == TrialState.COMPLETE else None,
        state=state,
        skip_if_finished=True,
    )
    if told.state != state:
        stored = told
        log(
            f"trial {trial.number} was failed by another worker while this one could not "
            f"reach the database ({fail_reason(stored)}); it was re-queued"
        )
    if isinstance(error, KeyboardInterrupt) and told.state == TrialState.FAIL:
        # Ctrl-C, SIGTERM, a cancelled Slurm task: run again first, same parameters and seed.
        with contextlib.suppress(Exception):
            requeue(study, told)
    if error is not None:
        raise error
    return told


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep in short steps, so a Ctrl-C (recorded, not raised) is acted on at once."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop():
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


def run_trials(
    study: optuna.Study,
    objective: Callable[[Any], float],
    guard: BudgetGuard,
    *,
    timeout: float | None,
    callbacks: list[Callable[..., None]],
    catch: tuple[type[Exception], ...],
    stop: Callable[[], bool],
    log: Callable[[str], None],
    converged: Callable[[list[optuna.trial.FrozenTrial]], bool] | None = None,
) -> str:
    """Run trials until the study has `guard.budget` finished trials, or has converged; why it
    stopped: "budget", "timeout", "stop rule" or "signal".

    Args:
        study: The study, on a RetryingStorage with heartbeat (search/storage.py).
        objective: Called with each trial; it must call `guard.check(trial)` first.
        guard: The budget; a trial in its last place ends a stretch of trials.
        timeout: Start no new trial after this many seconds.
        callbacks: Called with (study, finished trial) after every trial.
        catch: Exceptions that fail a trial without stopping the loop.
        stop: True when the loop should end (an interrupt was asked for).
        log: Where messages about storage errors and dead trials go.
        converged: Given the study's trials, whether to start no more (search/stopping.py).
    """
    # Over 60 lines for its docstring, the reference of every argument.
    import warnings

    from optuna.trial import TrialState

    # Optuna warns that its heartbeat is meant for study.optimize; this loop beats itself.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    start = time.monotonic()
    silent = SilentTrials()
    recovery = _Every(internals.storage_of(study).get_heartbeat_interval())

    def time_left() -> float | None:
        return None if timeout is None else timeout - (time.monotonic() - start)

    def out_of_time() -> bool:
        left = time_left()
        return left is not None and left <= 0

    while not stop():
        if out_of_time():
            return "timeout"
        trials = study.get_trials(deepcopy=False)
        done = finished_count(trials)
        if done >= guard.budget:
            return "budget"
        if converged is not None and converged(trials):
            return "stop rule"
        running = sum(t.state == TrialState.RUNNING for t in trials)
        waiting = sum(t.state == TrialState.WAITING for t in trials)
        if waiting == 0 and done + running >= guard.budget:
            _watch_the_running(study, silent, stop)
            continue
        for _ in range(guard.budget - done):
            if stop() or out_of_time():
                break
            if converged is not None and converged(study.get_trials(deepcopy=False)):
                return "stop rule"
            if recovery.due():
                fail_stale_trials(study)
            prepare = getattr(objective, "prepare", None)
            if prepare is not None:  # the training process starts before the heartbeat
                prepare()
            if guard.taken(study):  # look again above: wait for the running, or end
                break
            try:
                trial = run_one(study, objective, (*catch, Surplus), log)
            except BudgetFull:  # another worker took the last place first: look again
                break
            for callback in callbacks:
                callback(study, trial)
            if guard.last_place:
                break
    return "signal"


class _Every:
    """True at the first call, then once `seconds` have passed since the last True (dead
    workers' trials are looked for once a heartbeat interval, not before every trial)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds or 0.0
        self.last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.seconds:
            return False
        self.last = now
        return True


def _watch_the_running(
    study: optuna.Study, silent: SilentTrials, stop: Callable[[], bool]
) -> None:
    """The budget is taken by running trials: fail those whose worker is gone (they are
    re-queued, and this worker may run them), then wait a poll."""
    fail_stale_trials(study)
    try:
        silent.check(study)
    except Exception as e:  # the database is away: look again at the next poll
        from hpsearch.retrying import is_transient

        if not is_transient(e):
            raise
    _sleep(POLL_S, stop)


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Stop this worker cleanly (as SIGTERM would) once the process that started it is gone.

    `run --workers` starts workers in their own sessions, so that a Ctrl-C reaches the parent
    only; if the parent is killed, its workers must not run on unseen. A worker whose parent
    died is adopted by another process, so its parent pid changes.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        # Twice: the second stops the running trial at once, whatever its code does with
        # signals (search/trial_process.py); nobody is left to wait for it.
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()
