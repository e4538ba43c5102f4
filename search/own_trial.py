"""The trial a worker runs, kept in the worker: its writes go to the database together.

Optuna writes each parameter, attribute and report in a transaction of its own and reads the
trial back three times (after creating it, and before and after telling it): a trial of three
epochs cost 15 or more committed transactions, and with hundreds of workers on one database
that is what the server spends its time on (issue 32). A worker is the only process that
writes to its running trial, so it can keep the trial as it stands and send its writes in
batches:

- parameters and attributes wait for the next write that must reach the database now;
- the writes at the start of the training (its seed), each epoch's report (other workers'
  pruners compare against it) and the tell each send everything waiting in one transaction;
- the first heartbeat goes with the first of those, so a trial costs about 4 + 1 per epoch
  transactions (tests/search/test_database_costs.py);
- reads of the trial (Optuna's, the pruner's) are answered from the copy kept here.

Nothing is lost that a trial could keep: a worker that dies takes its trial with it, and the
trial is failed and re-queued from what the database holds (its parameters and seed were sent
when its training started).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from typing import Any

from hpsearch.optuna_internals import trial_id as id_of


@dataclasses.dataclass
class Writes:
    """What one transaction writes to the trial (search/optuna_internals.py's write_trial)."""

    params: list[tuple[str, float, Any, Any]] = dataclasses.field(default_factory=list)
    user_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    system_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    intermediate: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    heartbeat: bool = False
    state: Any = None
    values: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        """As one value a client of `hpsearch proxy` sends (search/proxy.py writes it)."""
        from optuna.distributions import distribution_to_json

        def stored(distribution: Any) -> str | None:
            return None if distribution is None else distribution_to_json(distribution)

        return {
            "params": [[n, v, stored(d), stored(p)] for n, v, d, p in self.params],
            "user_attrs": self.user_attrs,
            "system_attrs": self.system_attrs,
            "intermediate": self.intermediate,
            "heartbeat": self.heartbeat,
            "state": None if self.state is None else self.state.name,
            "values": self.values,
        }

    @classmethod
    def from_json(cls, sent: dict[str, Any]) -> Writes:
        from optuna.distributions import json_to_distribution
        from optuna.trial import TrialState

        def read(stored: str | None) -> Any:
            return None if stored is None else json_to_distribution(stored)

        return cls(
            params=[(n, v, read(d), read(p)) for n, v, d, p in sent["params"]],
            user_attrs=sent["user_attrs"],
            system_attrs=sent["system_attrs"],
            intermediate=[(step, value) for step, value in sent["intermediate"]],
            heartbeat=sent["heartbeat"],
            state=None if sent["state"] is None else TrialState[sent["state"]],
            values=sent["values"],
        )


class OwnTrial:
    """The running trial as this worker has written it, and the writes not yet sent.

    Touched by the trial loop and by the heartbeat thread: every change is under `lock`.
    """

    def __init__(self, trial: Any, study_id: int | None, heartbeat_s: int | None) -> None:
        self.trial = copy.deepcopy(trial)
        self.trial_id: int = id_of(trial)
        self.study_id = study_id  # (None: not known; parameters are then checked by Optuna)
        self.heartbeat_s = heartbeat_s
        self.lock = threading.Lock()
        self.waiting = Writes(heartbeat=heartbeat_s is not None)
        self.beat_at: float | None = None  # when a heartbeat last left (monotonic)
        self.beat_asked = False  # the heartbeat thread asked once before anything was sent
        self.reports_wait = False  # reports are sent by send_waiting, not at once

    def param(self, name: str, internal: float, distribution: Any, previous: Any) -> None:
        with self.lock:
            self.trial.params = {
                **self.trial.params,
                name: distribution.to_external_repr(internal),
            }
            self.trial.distributions = {**self.trial.distributions, name: distribution}
            self.waiting.params.append((name, internal, distribution, previous))

    def attrs(self, user: dict[str, Any], system: dict[str, Any] | None = None) -> None:
        with self.lock:
            self.trial.user_attrs = {**self.trial.user_attrs, **user}
            self.waiting.user_attrs.update(user)
            if system:
                self.trial.system_attrs = {**self.trial.system_attrs, **system}
                self.waiting.system_attrs.update(system)

    def report(self, step: int, value: float) -> None:
        with self.lock:
            self.trial.intermediate_values = {**self.trial.intermediate_values, step: value}
            self.waiting.intermediate.append((step, value))

    def has_waiting(self) -> bool:
        with self.lock:
            w = self.waiting
            return bool(w.params or w.user_attrs or w.system_attrs or w.intermediate)

    def take(self, state: Any = None, values: Any = None) -> Writes:
        """Everything waiting, to send now (the heartbeat too, if none has gone yet)."""
        with self.lock:
            writes, self.waiting = self.waiting, Writes()
            writes.state, writes.values = state, None if values is None else list(values)
            if writes.heartbeat:
                self.beat_at = time.monotonic()
            return writes

    def told(self, state: Any, values: Any) -> Any:
        """The trial as the tell that was just sent left it."""
        from datetime import datetime

        with self.lock:
            self.trial.state = state
            self.trial.values = None if values is None else list(values)
            self.trial.datetime_complete = datetime.now()
            return self.trial

    def beat_now(self) -> bool:
        """Whether the heartbeat thread's beat should be written now: not while the first
        one waits for the trial's first transaction, nor twice within half an interval."""
        with self.lock:
            if self.beat_at is None and not self.beat_asked:
                self.beat_asked = True
                return False
            now = time.monotonic()
            if self.beat_at is not None and now - self.beat_at < (self.heartbeat_s or 0) / 2:
                return False
            self.beat_at = now
            self.waiting.heartbeat = False
            return True

    def copy(self) -> Any:
        with self.lock:
            return copy.deepcopy(self.trial)


# Through `hpsearch proxy`, a batch of writes travels as the value of a system attr with
# this key, which the proxy writes in one transaction (never as an attr): search/proxy.py.
PROXY_WRITES_KEY = "hpsearch:writes"


class OwnTrialCalls:
    """The storage calls that keep a worker's running trial here (mixed into
    search/retrying.py's RetryingStorage, whose `_call` retries each transaction).

    For a worker's own storage (`batches`), on the database or as a client of `hpsearch proxy`;
    not for the proxy itself, which serves many workers and commits each of their calls.
    """

    _own: OwnTrial | None
    _handed: Any  # a trial this worker just created or told, for the one read that follows
    _claimed: tuple[int, int | None] | None  # a WAITING trial just set RUNNING, not yet read
    _distributions: dict[tuple[int | None, str], Any]
    _inner: Any
    batches: bool
    proxied: bool

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _init_own(self) -> None:
        self._own, self._handed, self._claimed, self._distributions = None, None, None, {}

    def _own_of(self, trial_id: int) -> OwnTrial | None:
        own = self._own
        return own if own is not None and own.trial_id == trial_id else None

    def _adopt(self, trial: Any, study_id: int | None) -> None:
        from optuna.trial import TrialState

        if self.batches and trial.state == TrialState.RUNNING:
            self._own = OwnTrial(trial, study_id, self.get_heartbeat_interval())

    def _send(self, own: OwnTrial, state: Any = None, values: Any = None) -> None:
        self._call("_write", own.trial_id, own.take(state, values), own.study_id)

    def _write(self, trial_id: int, writes: Writes, study_id: int | None) -> None:
        from hpsearch.optuna_internals import write_trial

        if self.proxied:  # one call, which the proxy writes in one transaction
            self._inner.set_trial_system_attr(trial_id, PROXY_WRITES_KEY, writes.to_json())
        else:
            write_trial(self.backend, trial_id, writes)
        for name, _, distribution, _ in writes.params:
            self._distributions.setdefault((study_id, name), distribution)

    def set_trial_param(self, trial_id: int, name: str, internal: float, dist: Any) -> None:
        own = self._own_of(trial_id)
        if own is None:
            return self._call("set_trial_param", trial_id, name, internal, dist)
        own.param(name, internal, dist, self._distributions.get((own.study_id, name)))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        own = self._own_of(trial_id)
        if own is None:
            return self._call("set_trial_user_attr", trial_id, key, value)
        own.attrs({key: value})

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        own = self._own_of(trial_id)
        if own is None:
            return self._call("set_trial_system_attr", trial_id, key, value)
        own.attrs({}, {key: value})

    def set_trial_intermediate_value(self, trial_id: int, step: int, value: float) -> None:
        own = self._own_of(trial_id)
        if own is None:
            return self._call("set_trial_intermediate_value", trial_id, step, value)
        own.report(step, value)
        if not own.reports_wait:
            self._send(own)

    def reports_wait(self, trial_id: int) -> None:
        """This worker's running trial's reports wait for `send_waiting` (called once the
        training process has its answer, so that the database is off the training's path)."""
        own = self._own_of(trial_id)
        if own is not None:
            own.reports_wait = True

    def send_waiting(self, trial_id: int) -> None:
        """Send what the running trial has waiting, if anything."""
        own = self._own_of(trial_id)
        if own is not None and own.has_waiting():
            self._send(own)

    def set_trial_state_values(self, trial_id: int, state: Any, values: Any = None) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        own = self._own_of(trial_id)
        if own is None:
            self._handed = None  # a copy handed out before this write would be out of date
            done = self._call("set_trial_state_values", trial_id, state, values)
            if done and self.batches and state.name == "RUNNING":  # a WAITING trial taken
                recent = getattr(self, "_recent", None)
                self._claimed = (trial_id, recent[0] if recent else None)
            return done
        self._recent = None  # the next read of the study's trials is fresh
        self._own = None
        try:
            self._send(own, state, values)
        except UpdateFinishedTrialError:
            return False  # failed by another worker meanwhile: the database says how
        self._handed = own.told(state, values)  # for Optuna's read after its tell
        return True

    def get_trial(self, trial_id: int) -> Any:
        own = self._own_of(trial_id)
        if own is not None:
            return own.copy()
        handed, self._handed = self._handed, None
        claimed, self._claimed = self._claimed, None
        if handed is not None and id_of(handed) == trial_id:
            return handed
        trial = self._call("get_trial", trial_id)
        if claimed is not None and claimed[0] == trial_id:
            self._adopt(trial, claimed[1])
        return trial

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        own = self._own_of(trial_id)
        if own is None:
            return self._call("get_trial_user_attrs", trial_id)
        return own.copy().user_attrs

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        own = self._own_of(trial_id)
        if own is None:
            return self._call("get_trial_system_attrs", trial_id)
        return own.copy().system_attrs
