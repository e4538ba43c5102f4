"""Optuna's gRPC storage proxy (`hpsearch proxy`, `--storage grpc://HOST:PORT`), for real: a
proxy process in front of the real PostgreSQL, workers that talk only to it, one killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import optuna
import pytest

from tests.search.faults import FAST_BEATS
from tests.search.faults import HPSEARCH
from tests.search.faults import SLOW
from tests.search.faults import Lines
from tests.search.faults import Proxy
from tests.search.faults import check_exact
from tests.search.faults import free_port
from tests.search.faults import states
from tests.search.faults import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(pg_url):
    served = Proxy(pg_url, free_port())
    yield served
    served.proc.kill()
    served.proc.wait()


def _hpsearch(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, **FAST_BEATS, **kw.pop("env", {})}
    return subprocess.run([HPSEARCH, *args], capture_output=True, text=True, env=env, **kw)


def _worker(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [HPSEARCH, "worker", "tiny", "--storage", url, "--quiet"],
        env={**os.environ, **FAST_BEATS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _pg_connections(pg_url: str) -> int:
    import sqlalchemy
    from sqlalchemy.engine import make_url

    engine = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
    )
    try:
        with engine.connect() as conn:
            return conn.execute(query, {"d": make_url(pg_url).database}).scalar()
    finally:
        engine.dispose()


def test_a_study_runs_through_the_proxy_and_a_killed_workers_trial_is_recovered(
    write_study, proxy, pg_url, tmp_path
):
    path = write_study(SLOW.replace("n_trials = 8", "n_trials = 5"))
    created = _hpsearch("run", str(path), "--storage", proxy.url, "--n-trials", "1", "--quiet")
    assert created.returncode == 0, created.stderr
    first = _worker(proxy.url)
    study = optuna.load_study(study_name="tiny", storage=pg_url)

    def mid_trial():
        running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        return bool(running) and len(running[0].intermediate_values) >= 2

    wait_until(mid_trial)
    # The worker talks to the proxy only: the database sees the proxy's pool, nothing more.
    assert _pg_connections(pg_url) <= 4
    (victim,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = _worker(proxy.url)
    assert second.wait(timeout=300) == 0, second.stderr.read()

    trials = check_exact(pg_url, "tiny", 5)
    assert trials[victim.number].state.name == "FAIL"
    assert trials[victim.number].user_attrs["fail_reason"].startswith("stale")
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state.name in ("COMPLETE", "PRUNED")
    assert retries[0].params == victim.params
    assert retries[0].user_attrs["seed"] == victim.user_attrs["seed"]
    proxy.err.wait_for(rf"study tiny: trial {victim.number} failed and re-queued \(stale")
    # Heartbeats became the database's heartbeat rows, never attributes.
    assert not any("hpsearch:heartbeat" in t.system_attrs for t in trials)

    # What reads a study works through the proxy too.
    shown = _hpsearch("show", "tiny", "--storage", proxy.url)
    assert shown.returncode == 0, shown.stderr
    assert "5 of 5 trials finished" in shown.stdout
    best = tmp_path / "best.json"
    exported = _hpsearch("export", "tiny", "--storage", proxy.url, "-o", str(best))
    assert exported.returncode == 0, exported.stderr
    best_trial = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert json.loads(best.read_text())["configs"][0]["trial_number"] == best_trial.number
    report = tmp_path / "report.html"
    reported = _hpsearch("report", "tiny", "--storage", proxy.url, "-o", str(report))
    assert reported.returncode == 0, reported.stderr
    assert report.stat().st_size > 10_000
    assert proxy.stop() == 0


def test_workers_wait_for_a_restarted_proxy_and_the_budget_stays_exact(write_study, pg_url):
    port = free_port()
    served = Proxy(pg_url, port)
    path = write_study(SLOW.replace("n_trials = 8", "n_trials = 6"))
    run = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--storage", served.url, "--workers", "2", "--quiet"],
        env={**os.environ, **FAST_BEATS},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = Lines(run.stderr)
    try:
        wait_until(lambda: states(pg_url, "tiny")["COMPLETE"] >= 2)
        assert served.stop() == 0
        err.wait_for("storage error .*retrying")  # the workers saw the proxy go
        served = Proxy(pg_url, port)
        assert run.wait(timeout=300) == 0, err.text
    finally:
        run.kill()
        served.proc.kill()
    assert "storage reachable again" in err.text
    check_exact(pg_url, "tiny", 6)


def test_proxy_mistakes_are_one_line(tmp_path, pg_url):
    port = free_port()
    quick = {"HPSEARCH_PROXY_CONNECT_TIMEOUT": "1"}
    nobody = _hpsearch("studies", "--storage", f"grpc://127.0.0.1:{port}", env=quick)
    assert nobody.returncode == 2
    assert nobody.stderr.count("\n") == 1 and "nothing answers at 127.0.0.1" in nobody.stderr
    assert "hpsearch proxy --storage" in nobody.stderr
    for bad in ("grpc://127.0.0.1", "grpc://127.0.0.1:99999", "grpc://:13000/x"):
        done = _hpsearch("studies", "--storage", bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert done.stderr.count("\n") == 1 and "grpc://HOST:PORT" in done.stderr
    itself = _hpsearch("proxy", "--storage", "grpc://127.0.0.1:13000")
    assert itself.returncode == 2 and "is a proxy itself" in itself.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        done = _hpsearch("proxy", "--storage", pg_url, "--port", str(busy))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"--port {busy}: cannot listen" in done.stderr


def test_a_plain_optuna_proxy_is_refused_in_one_line(tmp_path, write_study):
    """Optuna's own proxy would store a worker's heartbeats and batches as attrs: refused to
    a process that runs trials; what only reads works through it."""
    import sys

    port = free_port()
    code = (
        "import optuna; optuna.storages.run_grpc_proxy_server("
        f"optuna.storages.RDBStorage('sqlite:///{tmp_path / 'plain.db'}'), "
        f"host='127.0.0.1', port={port})"
    )
    plain = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening)
        url = f"grpc://127.0.0.1:{port}"
        done = _hpsearch("run", str(write_study()), "--storage", url)
        listed = _hpsearch("studies", "--storage", url)
    finally:
        plain.kill()
        plain.wait()
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "is not an `hpsearch proxy` of this release" in done.stderr
    assert "hpsearch proxy --storage" in done.stderr
    assert listed.returncode == 0, listed.stderr
