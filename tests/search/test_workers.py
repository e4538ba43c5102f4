"""Many workers and faults, with real processes, a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

from search.records import finished_count
from tests.conftest import TINY

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")

# Quick trials: one epoch of softmax regression on digits, random sampling, no pruning.
FAST = (
    TINY.replace("n_trials = 6", "n_trials = 200")
    .replace("epochs = 3", "epochs = 1")
    .replace('sampler = { type = "tpe", n_startup_trials = 3 }', 'sampler = "random"')
)
# Trials of about a second, so that a kill lands inside one.
SLOW = (
    TINY.replace("n_trials = 6", "n_trials = 10")
    .replace("epochs = 3", "epochs = 120")
    .replace("choices = [32, 64]", "choices = [16]")
)


def postgres_url() -> str:
    url = os.environ.get("HPSEARCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "HPSEARCH_TEST_POSTGRES_URL is not set (.ci/run sets it to this machine's PostgreSQL)"
        )
    return url


def _states(url: str, name: str) -> Counter:
    try:
        trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    except (KeyError, Exception):  # not created yet, or the database is busy: look again
        return Counter()
    return Counter(t.state.name for t in trials)


def _wait(predicate, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _check_exact(url: str, name: str, budget: int) -> list[optuna.trial.FrozenTrial]:
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert finished_count(trials) == budget
    states = Counter(t.state.name for t in trials)
    assert states["RUNNING"] == 0 and states["WAITING"] == 0
    return trials


def _run_with_lock(url: str, name: str, text: str, write_study, hold_lock) -> None:
    path = write_study(text.replace('name = "tiny"', f'name = "{name}"'))
    proc = subprocess.Popen([HPSEARCH, "run", str(path), "--workers", "4", "--storage", url,
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        _wait(lambda: _states(url, name)["COMPLETE"] >= 20)
        before = _states(url, name)["COMPLETE"]
        hold_lock(8.0)  # another connection holds the write lock for 8 s
        after = _states(url, name)["COMPLETE"]
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "error" not in err.lower()
    assert before < 200 and after < 200  # the lock was held in the middle of the run
    trials = _check_exact(url, name, 200)
    assert sum(t.state.name == "COMPLETE" for t in trials) == 200  # no trial failed for it
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in trials
               if t.state.name == "FAIL")  # fmt: skip


def test_four_workers_on_sqlite_with_the_write_lock_held(write_study, tmp_path):
    db = tmp_path / "h.db"

    def hold_lock(seconds: float) -> None:
        conn = sqlite3.connect(db, timeout=60, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    _run_with_lock(f"sqlite:///{db}", "tiny", FAST, write_study, hold_lock)


def test_four_workers_on_postgresql_with_a_table_lock_held(write_study):
    url = postgres_url()
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
    done = subprocess.run([HPSEARCH, "run", str(path), "--storage", url, "--n-trials", "1",
                           "--quiet"], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_killed_workers_trial_is_retried_with_the_same_parameters_and_seed(
    write_study, tmp_path
):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _create(url, write_study(SLOW))
    first = _worker(url, "tiny")
    study = optuna.load_study(study_name="tiny", storage=url)

    def mid_trial():
        running = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))]
        return running and len(running[0].intermediate_values) >= 2

    _wait(mid_trial)
    (victim,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    complete_before = _states(url, "tiny")["COMPLETE"]
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = _worker(url, "tiny")
    assert second.wait(timeout=300) == 0, second.stderr.read()
    trials = _check_exact(url, "tiny", 10)
    assert trials[victim.number].state.name == "FAIL"
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED")
    assert retries[0].params == victim.params
    assert retries[0].user_attrs["seed"] == victim.user_attrs["seed"]
    assert sum(t.state.name == "COMPLETE" for t in trials) >= complete_before


def test_a_kill_loop_loses_nothing_and_leaves_nothing_running(write_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _create(url, write_study(SLOW.replace("n_trials = 10", "n_trials = 16")))
    rng = random.Random(0)
    workers = [_worker(url, "tiny") for _ in range(2)]
    seen_complete = [0]
    kills = 0
    deadline = time.monotonic() + 400
    while finished_count(optuna.load_study(study_name="tiny", storage=url).trials) < 16:
        assert time.monotonic() < deadline, "the kill loop did not finish"
        time.sleep(rng.uniform(1.5, 3.0))
        complete = _states(url, "tiny")["COMPLETE"]
        assert complete >= seen_complete[-1]  # a finished trial is never lost
        seen_complete.append(complete)
        alive = [w for w in workers if w.poll() is None]
        if alive and kills < 6:
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            workers.append(_worker(url, "tiny"))
    for w in workers:
        assert w.wait(timeout=300) in (0, -signal.SIGKILL)
    assert kills >= 3
    _check_exact(url, "tiny", 16)


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
    done = subprocess.run([HPSEARCH, "studies", "--storage",
                           f"postgresql://postgres@127.0.0.1:{silent.port}/test"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    elapsed = time.monotonic() - start
    silent.sock.close()
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot open" in done.stderr
    assert elapsed < 30  # the 10 s connect timeout, not forever


def test_an_unreachable_postgresql_is_a_one_line_error(capsys):
    from search.cli import main

    assert main(["studies", "--storage", "postgresql://postgres@127.0.0.1:1/test"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot open" in err


def test_a_running_trial_that_never_beat_cannot_block_the_end(write_study, tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    _create(url, write_study(SLOW.replace("n_trials = 10", "n_trials = 3")
                             .replace("epochs = 120", "epochs = 5")))  # fmt: skip
    # A trial opened outside hpsearch's workers: RUNNING, and no heartbeat ever written.
    orphan = optuna.load_study(study_name="tiny", storage=url).ask()
    worker = _worker(url, "tiny")  # heartbeat every 1 s, stale after 3 s, silent after 9 s
    assert worker.wait(timeout=120) == 0, worker.stderr.read()
    trials = _check_exact(url, "tiny", 3)
    assert trials[orphan.number].state.name == "FAIL"
    assert any(t.system_attrs.get("failed_trial") == orphan.number for t in trials)
