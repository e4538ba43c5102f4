"""Ctrl-C and SIGTERM against a real `hpsearch run` process, then a resume."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from hpsearch.records import finished_count
from tests.conftest import TINY

pytestmark = pytest.mark.slow

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")

# Trials of about a second each, so a signal lands in the middle of one.
SLOW = (
    TINY.replace("n_trials = 6", "n_trials = 3")
    .replace("epochs = 3", "epochs = 80")
    .replace("choices = [32, 64]", "choices = [16]")
)


def _states(db: Path) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


def _wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_fails_the_running_trial_keeps_the_rest_and_a_rerun_resumes(
    signum, write_study, tmp_path
):
    path = write_study(SLOW)
    db = tmp_path / "hpsearch.db"
    url = f"sqlite:///{db}"
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--storage", url, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait until trial 0 is complete and trial 1 is running, then interrupt trial 1.
        _wait_for(lambda: (0, "COMPLETE") in _states(db) and (1, "RUNNING") in _states(db))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert "run the same command again to resume" in out
    study = optuna.load_study(study_name="tiny", storage=url)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "WAITING"]  # trial 1 again, first in line
    assert study.trials[1].user_attrs["fail_reason"] == "interrupted"
    assert study.trials[2].params == study.trials[1].params
    assert study.trials[2].user_attrs["seed"] == study.trials[1].user_attrs["seed"]
    assert finished_count(study.trials) == 1

    rerun = subprocess.run(
        [HPSEARCH, "run", str(path), "--storage", url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert finished_count(trials) == 3  # exactly the budget: the interrupted trial is rerun
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[2].system_attrs["failed_trial"] == 1
    assert not any(t.state.name == "RUNNING" for t in trials)
