"""Many workers and faults, with real processes, a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest

from hpsearch.records import fail_reason
from tests.conftest import TINY
from tests.search.faults import HPSEARCH
from tests.search.faults import SLOW
from tests.search.faults import check_exact
from tests.search.faults import states as _states
from tests.search.faults import wait_until as _wait

pytestmark = pytest.mark.slow

# Quick trials: one epoch of softmax regression on digits, random sampling, no pruning; enough
# of them that the run is still going when the lock is taken after 8, on a busy machine too.
N_LOCKED = 100
FAST = (
    TINY.replace("n_trials = 6", f"n_trials = {N_LOCKED}")
    .replace("epochs = 3", "epochs = 1")
    .replace('sampler = { type = "tpe", n_startup_trials = 3 }', 'sampler = "random"')
)


def _run_with_lock(url: str, name: str, text: str, write_study, hold_lock) -> None:
    path = write_study(text.replace('name = "tiny"', f'name = "{name}"'))
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--workers", "4", "--storage", url, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: _states(url, name)["COMPLETE"] >= 8)
        before = _states(url, name)["COMPLETE"]
        hold_lock(4.0)  # another connection holds the write lock for 4 s
        after = _states(url, name)["COMPLETE"]
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "error" not in err.lower()
    assert before < N_LOCKED and after < N_LOCKED  # the lock was held in the middle of the run
    trials = check_exact(url, name, N_LOCKED)
    assert sum(t.state.name == "COMPLETE" for t in trials) == N_LOCKED  # none failed for it
    assert all(
        t.user_attrs["fail_reason"].startswith("surplus") for t in trials if t.state.name == "FAIL"
    )


def test_eight_workers_end_a_study_without_a_surplus_row(write_study, tmp_path):
    """The budget is counted in the transaction that creates a trial's row
    (search/budget_count.py): no worker makes a row beyond it, race or not (issue 32)."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    path = write_study(FAST.replace(f"n_trials = {N_LOCKED}", "n_trials = 24"))
    done = subprocess.run(
        [HPSEARCH, "run", str(path), "--workers", "8", "--storage", url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    trials = check_exact(url, "tiny", 24)
    surplus = [t.number for t in trials if fail_reason(t).startswith("surplus")]
    # Was 6-7 (one per worker but the last), then 0-3 with the count read before asking.
    assert surplus == []


def test_four_workers_on_sqlite_with_the_write_lock_held(write_study, tmp_path):
    db = tmp_path / "h.db"

    def hold_lock(seconds: float) -> None:
        conn = sqlite3.connect(db, timeout=60, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    _run_with_lock(f"sqlite:///{db}", "tiny", FAST, write_study, hold_lock)


def test_four_workers_on_postgresql_with_a_table_lock_held(write_study, pg_url):
    url = pg_url
    import sqlalchemy

    name = f"workers-{uuid.uuid4().hex[:8]}"

    def hold_lock(seconds: float) -> None:
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("LOCK TABLE trials IN EXCLUSIVE MODE"))
            time.sleep(seconds)
        engine.dispose()

    try:
        _run_with_lock(url, name, FAST, write_study, hold_lock)
    finally:
        optuna.delete_study(study_name=name, storage=url)


def _worker(url: str, name: str) -> subprocess.Popen:
    env = {**os.environ, "HPSEARCH_HEARTBEAT_INTERVAL": "1"}  # stale after 3 s
    return subprocess.Popen(
        [HPSEARCH, "worker", name, "--storage", url, "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _create(url: str, path: Path) -> None:
    done = subprocess.run(
        [HPSEARCH, "run", str(path), "--storage", url, "--n-trials", "1", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_a_killed_workers_trial_is_retried_with_the_same_parameters_and_seed(
    write_study, tmp_path
):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _create(url, write_study(SLOW.replace("n_trials = 8", "n_trials = 5")))
    first = _worker(url, "tiny")
    study = optuna.load_study(study_name="tiny", storage=url)

    def mid_trial():
        running = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))]
        return running and len(running[0].intermediate_values) >= 2

    _wait(mid_trial)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The trial it was in when it died (read after the kill: one read before it could name a
    # trial that finished in the moment between the read and the kill).
    (victim,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    complete_before = _states(url, "tiny")["COMPLETE"]
    second = _worker(url, "tiny")
    assert second.wait(timeout=300) == 0, second.stderr.read()
    trials = check_exact(url, "tiny", 5)
    assert trials[victim.number].state.name == "FAIL"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED")
    assert retries[0].params == victim.params
    assert retries[0].user_attrs["seed"] == victim.user_attrs["seed"]
    assert sum(t.state.name == "COMPLETE" for t in trials) >= complete_before


def test_a_kill_loop_loses_nothing_and_leaves_nothing_running(write_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _create(url, write_study(SLOW.replace("n_trials = 8", "n_trials = 12")))
    rng = random.Random(0)
    workers = [_worker(url, "tiny") for _ in range(2)]
    study = optuna.load_study(study_name="tiny", storage=url)
    complete = 0
    for _ in range(4):
        # Each kill lands inside a trial: wait for one that has reported an epoch (an event).
        _wait(
            lambda: any(
                t.intermediate_values
                for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            )
        )
        now = _states(url, "tiny")["COMPLETE"]
        assert now >= complete  # a finished trial is never lost
        complete = now
        victim = rng.choice([w for w in workers if w.poll() is None])
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        workers.append(_worker(url, "tiny"))
    for w in workers:
        assert w.wait(timeout=300) in (0, -signal.SIGKILL)
    assert sum(w.returncode == -signal.SIGKILL for w in workers) == 4
    trials = check_exact(url, "tiny", 12)
    assert sum(t.user_attrs.get("fail_reason", "").startswith("stale") for t in trials) >= 1


class _Silent(threading.Thread):
    """A TCP server on loopback that accepts connections and never says anything."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)


def test_a_postgresql_server_that_never_answers_fails_within_seconds(tmp_path):
    silent = _Silent()
    silent.start()
    start = time.monotonic()
    done = subprocess.run(
        [HPSEARCH, "studies", "--storage", f"postgresql://postgres@127.0.0.1:{silent.port}/test"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HPSEARCH_POSTGRES_CONNECT_TIMEOUT": "2"},  # stands for the 10 s
    )
    elapsed = time.monotonic() - start
    silent.sock.close()
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot open" in done.stderr
    assert 2 <= elapsed < 20  # the connect timeout, not forever


def test_an_unreachable_postgresql_is_a_one_line_error(capsys):
    from hpsearch.cli import main

    assert main(["studies", "--storage", "postgresql://postgres@127.0.0.1:1/test"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot open" in err


def test_each_worker_holds_one_postgresql_connection(write_study, pg_url):
    """A worker's threads (the trial loop, the heartbeat) take turns on one connection, and
    the parent of `run --workers` watches on one: 4 workers hold 5, where they held 10."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    path = write_study(
        FAST.replace(f"n_trials = {N_LOCKED}", "n_trials = 40").replace(
            "epochs = 1", "epochs = 20"
        )
    )
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--workers", "4", "--storage", pg_url, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    database = make_url(pg_url).database
    watcher = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.pool.NullPool)
    count = sqlalchemy.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
    )
    complete = sqlalchemy.text("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")
    peak, samples = 0, 0
    try:
        while proc.poll() is None:  # sampled while the run lasts (it ends by itself)
            with watcher.connect() as conn:
                connections = conn.execute(count, {"d": database}).scalar()
                try:  # once the workers are at work (their start-up opens and closes more)
                    working = conn.execute(complete).scalar() >= 8
                except sqlalchemy.exc.ProgrammingError:  # no trials table yet
                    working = False
            if working:
                peak, samples = max(peak, connections), samples + 1
            time.sleep(0.1)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
        watcher.dispose()
    assert proc.returncode == 0, err
    assert samples >= 10  # sampled while the workers worked
    assert 4 <= peak <= 5, peak  # the 4 workers were seen, each on one connection
    check_exact(pg_url, "tiny", 40)


def test_a_worker_needs_one_connection_from_its_first_step(write_study, pg_url):
    """No check, set-up or thread of a worker joining a study holds two connections at once
    (Optuna's schema check opened one inside another, issue 32): every database connection
    this process opens is counted while it is open, from the storage's opening to the run's
    end. (A role with CONNECTION LIMIT 1 is no test of it: the server counts a closed
    connection's backend until it has exited, a moment after.)"""
    import threading

    import sqlalchemy

    import hpsearch

    path = write_study(FAST.replace(f"n_trials = {N_LOCKED}", "n_trials = 6"))
    assert hpsearch.run(path, storage=pg_url, n_trials=1, progress=False)
    lock, open_now, peak = threading.Lock(), [0], [0]

    def opened(*args) -> None:
        with lock:
            open_now[0] += 1
            peak[0] = max(peak[0], open_now[0])

    def closed(*args) -> None:
        with lock:
            open_now[0] -= 1

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", opened)
    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "close", closed)
    try:
        study = hpsearch.run(path, storage=pg_url, progress=False)
    finally:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", opened)
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "close", closed)
    assert len(study.trials) == 6
    assert peak[0] == 1, peak[0]
