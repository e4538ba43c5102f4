"""Helpers for the fault tests: a PostgreSQL database per test, the server stopped and started
for real, and a process's stderr read line by line so that tests wait on what it says."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from hpsearch.records import FAIL_REASONS
from hpsearch.records import fail_reason
from hpsearch.records import finished_count
from tests.conftest import TINY

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")


def postgres_url() -> str:
    url = os.environ.get("HPSEARCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "HPSEARCH_TEST_POSTGRES_URL is not set (.ci/run sets it to this machine's PostgreSQL)"
        )
    return url


def _admin_engine():
    import sqlalchemy

    # No pool: the tests restart the server, which kills pooled connections.
    return sqlalchemy.create_engine(
        postgres_url(), isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool
    )


# The test processes (`make test` runs two, pytest-xdist) share one PostgreSQL server, and some
# tests stop or restart it. A test using the server holds this file lock shared; a test that
# stops the server holds it alone, so no other test's connection meets a server going down.
_SERVER_LOCK = Path(tempfile.gettempdir()) / "hpsearch-tests-postgresql.lock"
_held: dict[str, object] = {"file": None, "count": 0}


@contextlib.contextmanager
def server_lock(*, alone: bool = False) -> Iterator[None]:
    """Hold the server lock, shared or alone, across test processes (taken once a process;
    nested holds must be shared)."""
    if alone and _held["count"]:
        raise RuntimeError("the server lock is held shared by this process: cannot hold it alone")
    if _held["count"] == 0:
        file = open(_SERVER_LOCK, "a")  # noqa: SIM115 (held across the yield)
        fcntl.flock(file, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        _held["file"] = file
    _held["count"] += 1
    try:
        yield
    finally:
        _held["count"] -= 1
        if _held["count"] == 0:
            _held["file"].close()  # closing releases the lock
            _held["file"] = None


def new_postgres_database(*, alone: bool = False) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards; the server lock is held
    meanwhile (`alone` by a test that stops or restarts the server)."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    with server_lock(alone=alone):
        admin = _admin_engine()
        name = f"hpsearch_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(postgres_url()).set(database=name).render_as_string(hide_password=False)
        finally:
            wait_postgres_up()
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql"))
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def postgres(action: str) -> None:
    """Stop, start or restart this machine's PostgreSQL server (the tests run as root)."""
    subprocess.run([*_cluster(), action], check=True, capture_output=True, timeout=120)
    if action != "stop":
        wait_postgres_up()


def wait_postgres_up(seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode != 0:
        if time.monotonic() > deadline:
            subprocess.run([*_cluster(), "start"], capture_output=True)
            raise AssertionError("PostgreSQL did not come back")
        time.sleep(0.2)


class Lines(threading.Thread):
    """Reads a stream line by line; `wait_for(pattern)` returns once a line matches."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.start()

    def run(self) -> None:
        for line in self.stream:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("")  # end of stream
            self.changed.notify_all()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def count(self, pattern: str) -> int:
        return sum(bool(re.search(pattern, line)) for line in self.lines)

    def wait_for(self, pattern: str, n: int = 1, seconds: float = 300) -> None:
        """Until n lines match (an event), or fail after `seconds` (a bound, not a timing)."""
        with self.changed:
            ok = self.changed.wait_for(lambda: self.count(pattern) >= n, timeout=seconds)
        assert ok, f"no line matching {pattern!r} in:\n{self.text}"


def states(url: str, name: str) -> Counter:
    try:
        trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return Counter()
    return Counter(t.state.name for t in trials)


def wait_until(predicate, seconds: float = 300) -> None:
    """Poll a condition on the database (an event), failing after `seconds` (a bound)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def training(url: str, name: str) -> int:
    """RUNNING trials that have reported an epoch: their parameters and seed are stored."""
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return 0
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return sum(bool(t.intermediate_values) for t in running)


def wait_while_running(proc, err: Lines, predicate, seconds: float = 300) -> None:
    """wait_until for a process's run: if the process ends first, fail at once with what it
    printed (the state waited for can no longer come)."""

    def ready() -> bool:
        if predicate():
            return True
        if proc.poll() is not None:
            err.join(timeout=10)
            raise AssertionError(f"the run ended (exit {proc.returncode}) first:\n{err.text}")
        return False

    wait_until(ready, seconds)


def check_exact(url: str, name: str, budget: int) -> list[optuna.trial.FrozenTrial]:
    """The budget is exact, nothing is left running, and every FAIL row says why."""
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert finished_count(trials) == budget
    counts = Counter(t.state.name for t in trials)
    assert counts["RUNNING"] == 0 and counts["WAITING"] == 0
    for t in trials:
        if t.state.name == "FAIL":
            assert fail_reason(t).startswith(FAIL_REASONS), (t.number, t.user_attrs)
    return trials


def wait_gone(pid: int, seconds: float = 120) -> None:
    wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), seconds)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


# Trials of about a second, so that a kill lands inside one (tests wait for a trial to report
# an epoch before they kill, interrupt or starve it: an event, not a duration).
SLOW = (
    TINY.replace("n_trials = 6", "n_trials = 8")
    .replace("epochs = 3", "epochs = 60")
    .replace("choices = [32, 64]", "choices = [16]")
)
# Trials of several seconds, for tests that need both workers inside a trial at once; four of
# them, since after a kill one worker runs the rest alone.
SLOWER = SLOW.replace("epochs = 60", "epochs = 250").replace("n_trials = 8", "n_trials = 4")


# `hpsearch proxy` for tests/search/test_proxy.py and test_database_costs.py.
FAST_BEATS = {"HPSEARCH_HEARTBEAT_INTERVAL": "1"}  # stale after 3 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    def __init__(self, db_url: str, port: int, threads: int = 4) -> None:
        self.proc = subprocess.Popen(
            [HPSEARCH, "proxy", "--storage", db_url, "--port", str(port)]
            + ["--threads", str(threads)],
            env={**os.environ, **FAST_BEATS},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out, self.err = Lines(self.proc.stdout), Lines(self.proc.stderr)
        self.out.wait_for("hpsearch proxy for", seconds=60)
        self.url = f"grpc://127.0.0.1:{port}"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)
