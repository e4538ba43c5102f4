"""A storage that rides out database outages: every call is retried, none is counted as a trial.

Workers talk to the database through `RetryingStorage`. A call that fails because the
connection failed (a PostgreSQL restart, a server that is down for a while, an SQLite lock held
longer than the lock timeout) is logged with the driver's own message and tried again with
exponential backoff (1 s, 2 s, ... up to 30 s). Training simply pauses at its next storage call
(an epoch's report) until the database is back. After MAX_OUTAGE_S of failure in a row the
worker gives up with one line. Anything else (a read-only database, a bug) is not retried.

Which calls are safe to repeat: reads, heartbeats, parameter, attribute and intermediate-value
writes are idempotent. A state change that was committed just before the connection broke is
recognised on the retry (the trial already has that state). A trial created just before the
connection broke and created again on the retry leaves a RUNNING trial nobody works on; it never
writes a heartbeat, and waiting workers fail it as silent (search/worker.py).
"""

from __future__ import annotations

import abc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage

from hpsearch.budget_count import BudgetFull
from hpsearch.budget_count import budget_full
from hpsearch.errors import UsageError
from hpsearch.errors import read_only_error
from hpsearch.errors import read_only_problem
from hpsearch.optuna_internals import cached_storage
from hpsearch.optuna_internals import create_trial
from hpsearch.optuna_internals import create_trial_unless
from hpsearch.optuna_internals import heartbeat_base
from hpsearch.optuna_internals import set_trial_user_attrs
from hpsearch.optuna_internals import trial_id as id_of
from hpsearch.optuna_internals import trial_table
from hpsearch.own_trial import OwnTrialCalls
from hpsearch.trial_reads import TrialReads

BaseHeartbeat = heartbeat_base()

# Through `hpsearch proxy` a heartbeat is this system attr, which the proxy turns into the
# database's heartbeat row instead of storing it (search/proxy.py): Optuna's gRPC protocol has
# no heartbeat call.
PROXY_HEARTBEAT_KEY = "hpsearch:heartbeat"

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
MAX_OUTAGE_S = 600.0  # give up after the storage has failed for this long in a row
# A read of a study's trials is reused for this long, until this process changes a trial's
# state: within one trial the loop, Optuna's ask and the sampler read them four times in a few
# milliseconds, and a pruner once an epoch.
REUSE_S = 0.5
# The writes after which the next read is fresh: a trial's state changed. A trial this process
# creates is added to the last read (create_new_trial).
_STATE_WRITES = ("set_trial_state_values", "_fail_if_running")


# The calls made by this class itself (each one transaction), not by Optuna's storage.
_OWN_CALLS = (
    "_fail_if_running",
    "_set_trial_user_attrs",
    "_write",
    "_create_trial",
    "_create_within_budget",
    "_read_trials",
)


class StorageUnavailable(UsageError):
    """The database stayed unreachable for MAX_OUTAGE_S; the message is one line."""


def root_cause(error: BaseException) -> str:
    """The first line of the database driver's own message, without SQLAlchemy's wrapping."""
    original = error
    while True:
        inner = getattr(original, "orig", None) or original.__cause__
        if inner is None or inner is original:
            break
        original = inner
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}"


def is_transient(error: BaseException) -> bool:
    """Whether a storage error is the connection's (worth retrying) rather than the data's."""
    if read_only_problem(error) is not None:
        return False
    # PendingRollbackError: a query retried inside a session whose connection just died.
    if _proxy_unreachable(error):
        return True
    lost = (
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.PendingRollbackError,
        sqlalchemy.exc.DisconnectionError,
    )
    seen = error
    while seen is not None:
        if isinstance(seen, lost):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__
    return False


def _proxy_unreachable(error: BaseException) -> bool:
    """A gRPC call that failed because `hpsearch proxy` is down or restarting."""
    import sys

    grpc = sys.modules.get("grpc")  # loaded only by a client of the proxy
    seen: BaseException | None = error
    while grpc is not None and seen is not None:
        if isinstance(seen, grpc.RpcError) and callable(getattr(seen, "code", None)):
            code = seen.code()
            # CANCELLED: the proxy stopped while the call was in flight (hpsearch never
            # cancels its own calls).
            gone = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            return code in (*gone, grpc.StatusCode.CANCELLED)
        seen = seen.__cause__
    return False


class _Outage:
    """Backoff and messages for one run of failures; shared by a worker's threads."""

    def __init__(self, log: Callable[[str], None], stop: Callable[[], bool]) -> None:
        self.log = log
        self.stop = stop
        self.lock = threading.Lock()
        self.since: float | None = None

    def failed(self, error: BaseException, backoff: float, shown: str) -> None:
        with self.lock:
            self.since = self.since or time.monotonic()
            lasted = time.monotonic() - self.since
        if lasted > MAX_OUTAGE_S:
            raise StorageUnavailable(
                f"storage: {shown} failing for {lasted:.0f} s, giving up; last error: "
                f"{root_cause(error)}; run the same command again once it is back"
            ) from None
        self.log(
            f"storage error ({root_cause(error)}); retrying in {backoff:.0f} s "
            f"(worker {os.getpid()})"
        )
        end = time.monotonic() + backoff
        while time.monotonic() < end:
            if self.stop():
                raise KeyboardInterrupt  # a Ctrl-C while the database is away: stop now
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))

    def recovered(self) -> None:
        with self.lock:
            if self.since is None:
                return
            lasted, self.since = time.monotonic() - self.since, None
        self.log(f"storage reachable again after {lasted:.0f} s (worker {os.getpid()})")


class _RetryingBase(OwnTrialCalls):
    """The calls; the class below gets one delegating method per storage method."""

    def __init__(
        self,
        backend: optuna.storages.RDBStorage,
        *,
        log: Callable[[str], None],
        shown: str = "the database",
        stop: Callable[[], bool] = lambda: False,
        heartbeat_s: int | None = None,
    ) -> None:
        self.backend = backend
        self._heartbeat_s = heartbeat_s  # a proxy's client's, which beats through attrs
        # A client of `hpsearch proxy` caches the study's trials itself; the proxy recovers
        # dead workers' trials, as it alone reaches the database (search/proxy.py).
        self.proxied = not isinstance(backend, optuna.storages.RDBStorage)
        self._inner = backend if self.proxied else cached_storage(backend)
        self._shown = shown
        self._outage = _Outage(log, stop)
        self._recent: tuple[int, float, list[Any]] | None = None
        # Off for `hpsearch proxy` (serve_many), whose many clients each need what the
        # database holds now and their every write committed.
        self.reuse_reads = True
        self.batches = True  # the running trial's writes (search/own_trial.py)
        self.light_reads = False  # set by a worker whose sampler and pruner allow it
        self.budget: int | None = None  # a worker's: no trial row is created beyond it
        self._reads = TrialReads()
        self._init_own()

    def for_worker(self, *, light_reads: bool, budget: int) -> None:
        """A worker's loop: its light reads (search/trial_reads.py), and its budget, which no
        trial row it creates goes beyond (search/budget_count.py)."""
        self.light_reads, self.budget = light_reads, budget

    def serve_many(self) -> None:
        """For `hpsearch proxy`: no read reused, no write held back."""
        self.reuse_reads = self.batches = False

    def set_handlers(self, *, log: Callable[[str], None], stop: Callable[[], bool]) -> None:
        """Where messages go (a progress bar's write) and when a retry should give up waiting."""
        self._outage.log = log
        self._outage.stop = stop

    def fail_if_running(self, trial_id: int) -> bool:
        """Set a RUNNING trial to FAIL in one conditional UPDATE; whether this call did it.

        Optuna reads the state, then writes it, which two workers on SQLite can both pass;
        `UPDATE ... WHERE state = RUNNING` lets exactly one of them win.
        """
        return self._call("_fail_if_running", trial_id)

    def _fail_if_running(self, trial_id: int) -> bool:
        from datetime import UTC
        from datetime import datetime

        from optuna.trial import TrialState

        if self._own_of(trial_id) is not None:
            self._own = None
        if self.proxied:  # the proxy's database sets it under a row lock (SELECT FOR UPDATE)
            try:
                return self._inner.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                return False

        TrialModel = trial_table()

        update = (
            sqlalchemy.update(TrialModel)
            .where(TrialModel.trial_id == trial_id, TrialModel.state == TrialState.RUNNING)
            # The column holds naive UTC (Optuna converts to local time when reading).
            .values(
                state=TrialState.FAIL, datetime_complete=datetime.now(UTC).replace(tzinfo=None)
            )
        )
        with self.backend.engine.begin() as conn:
            return conn.execute(update).rowcount == 1

    def set_trial_user_attrs(
        self, trial_id: int, attrs: dict[str, Any], send: bool = True
    ) -> None:
        """Several user attrs in one transaction (one call each through the proxy); for this
        worker's running trial, with everything else it waits to write, now or (not `send`)
        with its next transaction."""
        own = self._own_of(trial_id)
        if own is None:
            self._call("_set_trial_user_attrs", trial_id, attrs)
            return
        own.attrs(attrs)
        if send:
            self._send(own)

    def _set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        if self.proxied:
            for key, value in attrs.items():
                self._inner.set_trial_user_attr(trial_id, key, value)
        else:
            set_trial_user_attrs(self.backend, trial_id, attrs)

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Any = None
    ) -> list[optuna.trial.FrozenTrial]:
        """The study's trials, read again only when this process has changed a trial's
        state since, or the last read is REUSE_S old: what other workers changed meanwhile
        shows at the next read. The check that keeps the budget exact reads `fresh_trials`."""
        import copy

        recent, now = self._recent, time.monotonic()
        fresh_enough = recent is not None and now - recent[1] < REUSE_S
        if self.reuse_reads and fresh_enough and recent[0] == study_id:
            trials = recent[2]
        else:
            trials = self.fresh_trials(study_id)
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def create_new_trial(self, study_id: int, template_trial: Any = None) -> int:
        """A new trial, added to the last read of the study's trials and handed to the
        get_trial that Optuna's ask makes next: created whole by a worker, which keeps it
        (search/own_trial.py), read back once by a client of the proxy."""
        if self.batches and not self.proxied:
            exact = template_trial is None and self.budget is not None
            if exact:  # the budget counted in the transaction that creates the row
                trial = self._call("_create_within_budget", study_id)
            else:
                trial = self._call("_create_trial", study_id, template_trial)
        else:
            trial_id = self._call("create_new_trial", study_id, template_trial)
            if not self.reuse_reads:
                return trial_id
            trial = self._call("get_trial", trial_id)
        if self.batches:
            self._adopt(trial, study_id)
        recent = self._recent
        if recent is not None and recent[0] == study_id:
            self._recent = (study_id, recent[1], [*recent[2], trial])
        self._handed = None if self._own is not None else trial
        return id_of(trial)

    def _create_trial(self, study_id: int, template_trial: Any) -> Any:
        return create_trial(self.backend, study_id, template_trial)

    def _create_within_budget(self, study_id: int) -> Any:
        budget = self.budget
        trial = create_trial_unless(
            self.backend, study_id, lambda session: budget_full(session, study_id, budget)
        )
        if trial is None:
            raise BudgetFull(f"the trials ahead already fill the budget of {budget}")
        return trial

    def fresh_trials(self, study_id: int) -> list[optuna.trial.FrozenTrial]:
        """The study's trials as the database holds them now (not deep-copied). With
        `light_reads`, the trials in flight come by their state alone (search/trial_reads.py)."""
        now = time.monotonic()
        if self.proxied:
            trials = self._call("get_all_trials", study_id, deepcopy=False)
        else:
            trials = self._call("_read_trials", study_id)
        self._recent = (study_id, now, trials)
        return trials

    def _read_trials(self, study_id: int) -> list[optuna.trial.FrozenTrial]:
        return self._reads.read(self.backend, study_id, light=self.light_reads)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in _STATE_WRITES:
            self._recent = None
        backoff = FIRST_BACKOFF_S
        attempt = 0
        target = self if name in _OWN_CALLS else self._inner
        while True:
            try:
                result = getattr(target, name)(*args, **kwargs)
            except UpdateFinishedTrialError:
                # A state change that the database committed just before the connection broke.
                if attempt and name == "set_trial_state_values":
                    trial = self._call("get_trial", args[0])
                    if trial.state == kwargs.get("state", args[1] if len(args) > 1 else None):
                        return True
                raise
            except Exception as e:
                if not is_transient(e):
                    problem = read_only_problem(e)
                    if problem is not None:
                        url = getattr(self.backend, "url", None)
                        raise read_only_error(self._shown, problem, url) from None
                    raise
                self._outage.failed(e, backoff, self._shown)
                backoff = min(2 * backoff, MAX_BACKOFF_S)
                attempt += 1
                continue
            if attempt:
                self._outage.recovered()
            return result

    def record_heartbeat(self, trial_id: int) -> None:
        """One heartbeat; a failed one is skipped (the next comes one interval later)."""
        own = self._own_of(trial_id)
        if own is not None and not own.beat_now():
            return  # the first goes with the trial's first transaction
        try:
            if self.proxied:
                self._inner.set_trial_system_attr(trial_id, PROXY_HEARTBEAT_KEY, True)
            else:
                self._inner.record_heartbeat(trial_id)
        except UpdateFinishedTrialError:
            pass  # told finished by another worker (a recovery) between two beats
        except Exception as e:
            if not is_transient(e):
                raise

    def get_heartbeat_interval(self) -> int | None:
        if self.proxied:
            return self._heartbeat_s
        return self._inner.get_heartbeat_interval()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _delegate(name: str) -> Callable[..., Any]:
    def method(self: _RetryingBase, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


_METHODS = {
    name
    for base in (BaseStorage, BaseHeartbeat)
    for name, value in vars(base).items()
    if callable(value)
    and not name.startswith("__")
    and not any(name in vars(cls) for cls in _RetryingBase.__mro__[:-1])
}
RetryingStorage = abc.ABCMeta(
    "RetryingStorage",
    (_RetryingBase, BaseStorage, BaseHeartbeat),
    {
        "__doc__": __doc__,
        "__module__": __name__,
        **{name: _delegate(name) for name in sorted(_METHODS)},
    },
)
