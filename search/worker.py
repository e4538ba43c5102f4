"""Running trials until a study's budget is finished, safely beside other workers.

Every worker (the process of `hpsearch run`, each of `run --workers K`, each `hpsearch worker`
on any machine) runs this loop against the shared storage:

- Before asking for a trial it counts finished trials (complete, pruned, diverged) and trials
  in flight (running, waiting to be retried). When the rest of the budget is already in flight
  it waits, failing stale trials meanwhile (a dead worker's trial must not block the end).
- Two workers can still ask at the same moment. The objective then checks the trial's rank:
  if as many trials ahead of it (lower numbers) are finished or in flight as the budget allows,
  it does not train and fails as surplus, which does not count. So the budget is exact. That
  check needs a storage query only for trials numbered budget - 1 or higher (trial n has n
  trials ahead of it), so a study adds almost none; a trial that takes the last place
  ends the worker's stretch of trials, and only then does it look at the study again.
- Storage errors (a database restart, a lock held too long) are retried with exponential
  backoff and never counted as trials; the root cause is logged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from search.errors import UsageError
from search.records import counts_toward_budget
from search.records import finished_count

if TYPE_CHECKING:
    import optuna

POLL_S = 1.0  # how often a waiting worker looks at the study again
MAX_BACKOFF_S = 30.0
MAX_OUTAGE_S = 600.0  # give up after the storage has failed for this long in a row


class Surplus(Exception):
    """This trial started when the whole budget was already finished or in flight."""


def storage_errors() -> tuple[type[BaseException], ...]:
    import optuna
    import sqlalchemy.exc

    return (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
            sqlalchemy.exc.DatabaseError, optuna.exceptions.StorageInternalError)  # fmt: skip


def root_cause(error: BaseException) -> str:
    """The first line of the database driver's own message, without SQLAlchemy's wrapping."""
    original = getattr(error, "orig", None) or error.__cause__ or error
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}"


class BudgetGuard:
    """The in-trial half of the exact budget, with one storage query per trial.

    `check(trial)` raises Surplus when `budget` trials ahead of this one (lower numbers) are
    finished or in flight. Otherwise it notes whether this trial takes the last place, and
    `callback` then stops the worker's optimize loop after it, so the worker looks at the
    study again (and waits or exits) without a query before every trial.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._last_place = False

    def check(self, trial: optuna.Trial) -> None:
        from optuna.trial import TrialState

        # Trial numbers run 0, 1, 2, ... so trial n has exactly n trials ahead of it, in any
        # state. Below budget - 1 it can be neither surplus nor the last place: no query.
        if trial.number < self.budget - 1:
            self._last_place = False
            return
        in_flight = (TrialState.RUNNING, TrialState.WAITING)
        ahead = 0
        for t in trial.study.get_trials(deepcopy=False):
            if t.number < trial.number and (counts_toward_budget(t) or t.state in in_flight):
                ahead += 1
        if ahead >= self.budget:
            raise Surplus(f"surplus: {ahead} trials ahead of it already fill the budget of "
                          f"{self.budget}")  # fmt: skip
        self._last_place = ahead + 1 >= self.budget

    def callback(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self._last_place or trial.user_attrs.get("fail_reason", "").startswith("surplus"):
            study.stop()


def fail_silent_trials(study: optuna.Study) -> None:
    """Fail and re-queue RUNNING trials that never wrote a heartbeat.

    Optuna's fail_stale_trials skips trials without a heartbeat row: a worker killed in the
    milliseconds between creating its trial and its first heartbeat, or a trial opened with
    `study.ask()` by another tool, would stay RUNNING forever and block the end of the budget.
    Such a trial is failed here once it started three grace periods ago (so a first heartbeat
    merely delayed by a held lock is never mistaken for none), and re-queued like a stale one.
    """
    from datetime import UTC
    from datetime import datetime

    import sqlalchemy
    from optuna.storages._rdb.models import TrialHeartbeatModel  # the heartbeat table
    from optuna.trial import TrialState

    backend = getattr(study._storage, "_backend", study._storage)
    interval = backend.get_heartbeat_interval() if hasattr(backend, "engine") else None
    if interval is None:
        return
    limit = 3 * (backend.grace_period or 2 * interval)
    now = datetime.now(UTC).replace(tzinfo=None)  # Optuna 5 stores naive UTC
    old = {t._trial_id: t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
           if t.datetime_start and (now - t.datetime_start).total_seconds() > limit}  # fmt: skip
    if not old:
        return
    query = sqlalchemy.select(TrialHeartbeatModel.trial_id).where(
        TrialHeartbeatModel.trial_id.in_(list(old))
    )
    with backend.engine.connect() as conn:
        beating = {row[0] for row in conn.execute(query)}
    retry = backend.get_heartbeat_stale_trial_callback()
    for trial_id in set(old) - beating:
        if study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL) and retry:
            retry(study, study._storage.get_trial(trial_id))


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep in short steps, so a Ctrl-C (recorded, not raised) is acted on quickly."""
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
) -> None:
    """Run trials until the study has `guard.budget` finished trials.

    Args:
        study: The study, on a storage with heartbeat (so stale trials can be failed).
        objective: Called with each trial; it must call `guard.check(trial)` first.
        guard: The budget; its callback ends a stretch of trials at the last place.
        timeout: Start no new trial after this many seconds.
        callbacks: Passed to study.optimize.
        catch: Exceptions that fail a trial without stopping the loop.
        stop: True when the loop should end (an interrupt was asked for).
        log: Where messages about storage errors go.
    """
    import warnings

    import optuna
    from optuna.trial import TrialState

    def stop_when_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if stop():
            study.stop()

    start = time.monotonic()
    backoff, outage_since = 1.0, None
    errors = storage_errors()
    while not stop():
        left = None if timeout is None else timeout - (time.monotonic() - start)
        if left is not None and left <= 0:
            return
        try:
            trials = study.get_trials(deepcopy=False)
            done = finished_count(trials)
            if done >= guard.budget:
                return
            running = sum(t.state == TrialState.RUNNING for t in trials)
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            if waiting == 0 and done + running >= guard.budget:
                with warnings.catch_warnings():  # Optuna calls it experimental
                    warnings.simplefilter("ignore")
                    optuna.storages.fail_stale_trials(study)  # a dead worker's trial: re-queued
                fail_silent_trials(study)
                _sleep(POLL_S, stop)
                continue
            study.optimize(objective, n_trials=guard.budget - done, timeout=left,
                           catch=(*catch, Surplus), gc_after_trial=False,
                           callbacks=[*callbacks, guard.callback, stop_when_asked])  # fmt: skip
            backoff, outage_since = 1.0, None
        except errors as e:
            outage_since = outage_since or time.monotonic()
            if time.monotonic() - outage_since > MAX_OUTAGE_S:
                raise UsageError(f"storage: failing for {MAX_OUTAGE_S:.0f} s, giving up; last "
                                 f"error: {root_cause(e)}") from None  # fmt: skip
            log(
                f"storage error ({root_cause(e)}); retrying in {backoff:.0f} s "
                f"(worker {os.getpid()})"
            )
            _sleep(backoff, stop)
            backoff = min(2 * backoff, MAX_BACKOFF_S)
