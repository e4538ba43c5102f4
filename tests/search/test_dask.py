"""`run --on dask://HOST:PORT` and `hpsearch.run(..., on=client)` on a real Dask scheduler
with two workers (tests/clusters.py) and the real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from hpsearch.records import fail_reason
from tests.clusters import dask_cluster
from tests.conftest import TINY
from tests.search.faults import HPSEARCH
from tests.search.faults import SLOWER
from tests.search.faults import check_exact
from tests.search.faults import training
from tests.search.faults import wait_gone
from tests.search.faults import wait_until

pytestmark = pytest.mark.slow

BEATS = {"HPSEARCH_HEARTBEAT_INTERVAL": "1"}


@pytest.fixture(scope="module")
def dask():
    with dask_cluster(2, env=BEATS) as cluster:
        yield cluster


def _descendants(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            text = open(f"/proc/{pid}/task/{task}/children").read()
        except OSError:
            continue
        for child in map(int, text.split()):
            found += [child, *_descendants(child)]
    return found


def test_a_study_runs_on_the_dask_cluster(dask, write_study, pg_url, tmp_path):
    path = write_study(TINY.replace("n_trials = 6", "n_trials = 10"))
    done = subprocess.run(
        [
            HPSEARCH,
            "run",
            str(path),
            "--workers",
            "2",
            "--on",
            dask.address.replace("tcp", "dask"),
            "--storage",
            pg_url,
            "--quiet",
        ],
        env={**os.environ, **BEATS},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "started 2 workers on the Dask cluster" in done.stderr
    check_exact(pg_url, "tiny", 10)


def test_from_python_with_a_client(dask, write_study, pg_url):
    import distributed

    import hpsearch

    path = write_study(TINY.replace('name = "tiny"', 'name = "from-python"'))
    with distributed.Client(dask.address) as client:
        study = hpsearch.run(path, storage=pg_url, workers=2, on=client, progress=False)
    assert study.study_name == "from-python"
    check_exact(pg_url, "from-python", 6)


def test_a_dask_worker_killed_mid_trial_leaves_no_process_and_the_budget_exact(
    dask, write_study, pg_url, tmp_path
):
    path = write_study(SLOWER)
    run = subprocess.Popen(
        [
            HPSEARCH,
            "run",
            str(path),
            "--workers",
            "2",
            "--on",
            dask.address.replace("tcp", "dask"),
            "--storage",
            pg_url,
            "--quiet",
        ],
        env={**os.environ, **BEATS},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: training(pg_url, "tiny") == 2, seconds=60)  # both workers in a trial
        victim = next(pid for pid in dask.worker_pids() if _descendants(pid))
        below = _descendants(victim)  # its training process
        os.kill(victim, signal.SIGKILL)
        wait_gone(victim)
        for pid in below:  # nothing the dead worker started lives on
            wait_gone(pid, seconds=30)
        out, err = run.communicate(timeout=600)
    finally:
        run.kill()
    assert run.returncode == 0, err
    trials = check_exact(pg_url, "tiny", 4)
    # The dead worker's trial failed as stale; any other failure is a surplus row of the race
    # at the budget's end (the task Dask reruns asks as the other worker takes the last place).
    failed = [t for t in trials if t.state.name == "FAIL"]
    (dead,) = [t for t in failed if fail_reason(t).startswith("stale")]
    assert all(fail_reason(t).startswith("surplus") for t in failed if t is not dead), [
        (t.number, fail_reason(t)) for t in failed
    ]


def test_no_scheduler_at_the_address_is_one_line(write_study, pg_url, tmp_path):
    path = write_study()
    done = subprocess.run(
        [
            HPSEARCH,
            "run",
            str(path),
            "--workers",
            "2",
            "--on",
            "dask://127.0.0.1:1",
            "--storage",
            pg_url,
        ],
        env={**os.environ, "HPSEARCH_CLUSTER_CONNECT_TIMEOUT": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no Dask scheduler answers there" in done.stderr
    assert (
        "tiny"
        not in subprocess.run(
            [HPSEARCH, "studies", "--storage", pg_url], capture_output=True, text=True
        ).stdout
    )  # nothing created
