"""`run --on slurm` on a real single-node Slurm (tests/clusters.py) and the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess

import optuna
import pytest

from tests.clusters import slurm_cluster
from tests.conftest import TINY
from tests.search.faults import HPSEARCH
from tests.search.faults import SLOWER
from tests.search.faults import check_exact
from tests.search.faults import states
from tests.search.faults import training
from tests.search.faults import wait_until

pytestmark = pytest.mark.slow

BEATS = {"HPSEARCH_HEARTBEAT_INTERVAL": "1"}


@pytest.fixture(scope="module")
def slurm():
    with slurm_cluster() as cluster:
        yield cluster


def _hpsearch(slurm, *args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HPSEARCH, *args],
        env={**slurm.env, **BEATS, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run(slurm, *args: str, cwd, env=None) -> subprocess.CompletedProcess:
    return _hpsearch(slurm, "run", *args, cwd=cwd, env=env)


def _detached(slurm, path, pg_url: str, tmp_path) -> str:
    """Two workers submitted with --detach; the job id."""
    argv = [str(path), "--workers", "2", "--on", "slurm", "--detach", "--storage", pg_url]
    started = _run(slurm, *argv, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert "its workers are submitted" in started.stdout
    return started.stderr.split("submitted Slurm job ")[1].split(":")[0]


def test_four_slurm_tasks_finish_a_study_exactly(slurm, write_study, pg_url, tmp_path):
    path = write_study(TINY.replace("n_trials = 6", "n_trials = 8"))
    dry = _run(
        slurm,
        str(path),
        "--workers",
        "4",
        "--on",
        "slurm",
        "--dry-run",
        "--storage",
        pg_url,
        cwd=tmp_path,
    )
    assert dry.returncode == 0, dry.stderr
    assert "#SBATCH --array=0-3" in dry.stdout and "worker tiny" in dry.stdout
    assert pg_url.split("@")[-1] not in dry.stdout  # the URL goes by the job's environment
    assert slurm.run("squeue", "-h").strip() == ""  # nothing submitted
    assert states(pg_url, "tiny") == {}  # nor created

    done = _run(
        slurm,
        str(path),
        "--workers",
        "4",
        "--on",
        "slurm",
        "--storage",
        pg_url,
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "submitted Slurm job" in done.stderr
    check_exact(pg_url, "tiny", 8)
    study = optuna.load_study(study_name="tiny", storage=pg_url)
    (job,) = study.user_attrs["hpsearch_slurm_jobs"]
    assert job["workers"] == 4
    outputs = sorted(tmp_path.glob(f"hpsearch-tiny-{job['job']}_*.out"))
    assert len(outputs) == 4
    assert all("hpsearch worker for study tiny" in p.read_text() for p in outputs)
    shown = _hpsearch(slurm, "show", "tiny", "--storage", pg_url)
    assert f"Slurm jobs {job['job']}:" in shown.stdout, shown.stderr


def test_a_cancelled_task_requeues_its_trial_and_the_budget_stays_exact(
    slurm, write_study, pg_url, tmp_path
):
    job = _detached(slurm, write_study(SLOWER), pg_url, tmp_path)
    wait_until(lambda: training(pg_url, "tiny") == 2)  # both tasks inside a trial
    slurm.run("scancel", f"{job}_0")
    wait_until(lambda: not slurm.tasks(job), seconds=300)  # the other task finishes the budget
    trials = check_exact(pg_url, "tiny", 4)
    (cut,) = [t for t in trials if t.state.name == "FAIL"]
    assert cut.user_attrs["fail_reason"] == "interrupted"
    (again,) = [t for t in trials if t.system_attrs.get("failed_trial") == cut.number]
    assert again.state.name in ("COMPLETE", "PRUNED")
    assert again.params == cut.params and again.user_attrs["seed"] == cut.user_attrs["seed"]


def test_cancelling_a_study_leaves_no_trial_running(slurm, write_study, pg_url, tmp_path):
    job = _detached(slurm, write_study(SLOWER), pg_url, tmp_path)
    wait_until(lambda: training(pg_url, "tiny") >= 1)
    cancelled = _hpsearch(slurm, "cancel", "tiny", "--storage", pg_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"cancelled Slurm jobs {job}" in cancelled.stdout
    wait_until(lambda: not slurm.tasks(job), seconds=60)
    counts = states(pg_url, "tiny")
    assert counts["RUNNING"] == 0 and counts["FAIL"] >= 1
    assert counts["WAITING"] == counts["FAIL"]  # each cut trial queued to run again


def test_what_slurm_cannot_do_is_one_line(slurm, write_study, pg_url, tmp_path):
    path = write_study()
    db = tmp_path / "local.db"
    local = _run(
        slurm,
        str(path),
        "--workers",
        "2",
        "--on",
        "slurm",
        "--storage",
        f"sqlite:///{db}",
        cwd=tmp_path,
    )
    assert local.returncode == 2 and local.stderr.count("\n") == 1, local.stderr
    assert "is a file on this machine" in local.stderr and "postgresql://" in local.stderr
    assert not db.exists()  # nothing created
    refused = _run(
        slurm,
        str(path),
        "--workers",
        "2",
        "--on",
        "slurm",
        "--partition",
        "nope",
        "--storage",
        pg_url,
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "sbatch refused the job:" in refused.stderr and "partition" in refused.stderr
    no_slurm = _run(
        slurm,
        str(path),
        "--workers",
        "2",
        "--on",
        "slurm",
        "--storage",
        pg_url,
        cwd=tmp_path,
        env={"PATH": os.path.dirname(HPSEARCH)},
    )
    assert no_slurm.returncode == 2 and "no `sbatch` on PATH" in no_slurm.stderr
    flag = _run(slurm, str(path), "--partition", "x", cwd=tmp_path)
    assert flag.returncode == 2 and "--partition: only with --on" in flag.stderr
