"""`hpsearch proxy`: Optuna's gRPC storage proxy in front of one database, with recovery.

Hundreds of workers on one PostgreSQL would hold hundreds of connections; through the proxy
they hold none: each talks gRPC to `hpsearch proxy`, which holds a few pooled connections
(`--threads`, one per request served at once) and Optuna's trial cache. Workers name it as
`--storage grpc://HOST:PORT`.

Optuna's gRPC protocol carries every storage call but the heartbeat, and a client cannot read
the heartbeat table. So, through the proxy:

- a worker's heartbeat is a system attr with the key `PROXY_HEARTBEAT_KEY`, which the proxy
  writes as the database's heartbeat row (never as an attr);
- a worker's batch of writes to its running trial (search/own_trial.py) is a system attr with
  the key `PROXY_WRITES_KEY`, which the proxy writes in one transaction, as a worker on the
  database writes it;
- a client asks for the study named `PROXY_PROTOCOL_NAME` once, to know that the proxy is an
  `hpsearch proxy` that understands these two (the answer is the protocol's number);
- the proxy, which alone reaches the database, recovers dead workers' trials for every study
  it serves: every heartbeat interval it fails the RUNNING trials whose heartbeat is older
  than the grace period (by the database server's clock, as workers do) and those RUNNING
  without one for three grace periods (on its own monotonic clock), and re-queues them with
  the same parameters and seed (search/worker.py does the same for direct workers);
- database outages are retried by the proxy's storage (search/retrying.py), so its workers
  simply wait; a proxy that is down or restarting is retried by the workers themselves.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from hpsearch import optuna_internals as internals
from hpsearch.grpc_client import PROXY_PROTOCOL
from hpsearch.grpc_client import PROXY_PROTOCOL_NAME
from hpsearch.own_trial import PROXY_WRITES_KEY
from hpsearch.own_trial import Writes
from hpsearch.retrying import PROXY_HEARTBEAT_KEY
from hpsearch.storage import StorageURL


class _Served:
    """The storage the proxy serves: the database's, with heartbeats made rows again."""

    def __init__(self, storage: Any) -> None:
        self._served = storage

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        if key == PROXY_HEARTBEAT_KEY:
            self._served.record_heartbeat(trial_id)
        elif key == PROXY_WRITES_KEY:  # a worker's batch of writes: one transaction
            self._served._call("_write", trial_id, Writes.from_json(value), None)
        else:
            self._served.set_trial_system_attr(trial_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        if study_name == PROXY_PROTOCOL_NAME:  # a client asking which proxy answers
            return PROXY_PROTOCOL
        return self._served.get_study_id_from_name(study_name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._served, name)


class Recovery:
    """Fails and re-queues dead workers' trials of every study in the proxy's database."""

    def __init__(self, storage: Any, log: Callable[[str], None], clock=time.monotonic) -> None:
        self.storage = storage
        self.log = log
        self.clock = clock
        self.silent_since: dict[int, float] = {}

    def _running(self) -> tuple[list[tuple[int, int, Any]], Any]:
        """(trial id, study id, heartbeat or None) of every RUNNING trial, and the server's
        now(); one query, by the trials' state index."""
        import sqlalchemy
        from optuna.trial import TrialState

        trials, beats = internals.trial_table(), internals.heartbeat_table()
        query = (
            sqlalchemy.select(trials.trial_id, trials.study_id, beats.heartbeat)
            .outerjoin(beats, beats.trial_id == trials.trial_id)
            .where(trials.state == TrialState.RUNNING)
        )
        with self.storage.backend.engine.connect() as conn:
            now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
            rows = [tuple(r) for r in conn.execute(query)]
        return rows, now.replace(tzinfo=None)

    def check(self) -> list[int]:
        """One look; the ids of the trials it failed."""
        import datetime

        import optuna

        interval = self.storage.get_heartbeat_interval()
        grace = self.storage.backend.grace_period or 2 * interval
        rows, now = self._running()
        tick = self.clock()
        silent = {trial for trial, _, beat in rows if beat is None}
        self.silent_since = {t: self.silent_since.get(t, tick) for t in silent}
        dead: list[tuple[int, int, str]] = []
        for trial, study, beat in rows:
            if beat is not None and now - beat > datetime.timedelta(seconds=grace):
                reason = f"stale: no heartbeat for over {grace} s (its worker died or lost touch)"
                dead.append((trial, study, reason))
            elif beat is None and tick - self.silent_since[trial] > 3 * grace:
                reason = (
                    f"silent: RUNNING for over {3 * grace} s without ever writing a heartbeat "
                    "(its worker died as it started, or another tool opened it)"
                )
                dead.append((trial, study, reason))
        failed = []
        from hpsearch.worker import fail_dead_trial

        for trial, study_id, reason in dead:
            name = self.storage.get_study_name_from_id(study_id)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study = optuna.load_study(study_name=name, storage=self.storage)
            if fail_dead_trial(study, trial, reason):
                number = self.storage.get_trial(trial).number
                self.log(f"study {name}: trial {number} failed and re-queued ({reason})")
                failed.append(trial)
        return failed


def _check_port(host: str, port: int) -> None:
    import socket

    from hpsearch.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise UsageError(f"--host {host}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise UsageError(
                f"--port {port}: cannot listen on {host}: {e.strerror}; choose another --port"
            ) from None


def serve(
    target: StorageURL,
    *,
    host: str,
    port: int,
    threads: int,
    log: Callable[[str], None],
    ready: Callable[[], None] = lambda: None,
    stop: threading.Event | None = None,
) -> None:
    """Serve `target` on host:port until `stop` is set (or the process is interrupted)."""
    from hpsearch.errors import UsageError
    from hpsearch.grpc_client import is_proxy
    from hpsearch.storage import heartbeat_interval
    from hpsearch.storage import open_storage

    if is_proxy(target.url):
        raise UsageError(
            f"{target.origin}: {target.shown} is a proxy itself; give the proxy the database "
            "its workers share (postgresql://user@host/dbname)"
        )
    _check_port(host, port)  # before gRPC, whose refusal comes with a C-level log line
    storage = open_storage(target, create=True, heartbeat=True, log=log, connections=threads)
    storage.serve_many()  # every client's read is the database's now, every write committed
    stop = stop or threading.Event()
    recovery = Recovery(storage, log)
    try:
        server = internals.grpc_proxy_server(_Served(storage), host, port, threads)
    except RuntimeError as e:  # another process took the port meanwhile
        raise UsageError(f"--port {port}: cannot listen on {host}: {e}") from None
    server.start()
    ready()
    # Heartbeats could not arrive while no proxy served them (a restart): the first look comes
    # one grace period after the start, so no trial is judged by a beat it could not send.
    first = storage.backend.grace_period or 2 * heartbeat_interval()
    try:
        if stop.wait(first):
            return
        while True:
            try:
                recovery.check()
            except Exception as e:
                from hpsearch.retrying import is_transient

                if not is_transient(e):
                    raise
            if stop.wait(heartbeat_interval()):
                return
    finally:
        # Calls in flight finish (new ones are refused, which workers retry) before the
        # connections close: a call cut off mid-way reached its worker as an error.
        server.stop(grace=5).wait()
        storage.backend.engine.dispose()
