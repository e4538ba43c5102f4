"""A study's numbers do not depend on the machine's load (issue 34): its thread count is
decided once, when it is created, by a rule that reads no load ($HPSEARCH_THREADS, else every
core), stored with it, shown by `show`, and used by every later run and worker. OpenBLAS and
Torch sum in another order on another count, so a count measured from the moment's speed gave
a busy machine other trials than an idle one."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest

from hpsearch.records import STUDY_THREADS_ATTR
from tests.search.faults import HPSEARCH

# A NumPy MLP trained for over 200 batches (3 epochs of 72): hpsearch 0.3 timed 1 thread
# against every core for it, and trained on the faster.
STUDY = """
[study]
name = "busy"
n_trials = 3
seed = 3
pruner = "none"

[data]
dataset = "digits"

[model]
kind = "numpy.mlp"
fixed = { epochs = 3, hidden = [128, 128], batch_size = 16 }

[params]
learning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }
"""


def _run(path, url, *args, threads=None, command="run", code=0):
    env = {k: v for k, v in os.environ.items() if k != "HPSEARCH_THREADS"}
    if threads is not None:
        env["HPSEARCH_THREADS"] = str(threads)
    storage = ["--storage", url]
    argv = [command, str(path), *storage, "--quiet", *args] if command == "run" else args
    done = subprocess.run(
        [HPSEARCH, *argv, *([] if command == "run" else storage)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == code, done.stderr
    return done


def _trials(url):
    study = optuna.load_study(study_name="busy", storage=url)
    return study, [(t.params, t.value, t.user_attrs["threads"]) for t in study.trials]


@pytest.mark.slow
def test_a_study_resumed_on_a_busy_machine_gives_the_trials_of_an_idle_run(tmp_path):
    path = tmp_path / "busy.toml"
    path.write_text(STUDY)
    idle = f"sqlite:///{tmp_path / 'idle.db'}"
    _run(path, idle)
    busy = f"sqlite:///{tmp_path / 'busy.db'}"
    # Created on the idle machine (its time is up before a first trial: exit 3, no trial)...
    _run(path, busy, "--timeout", "0.001", code=3)
    # ... and resumed while two processes keep both cores busy.
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        _run(path, busy)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    first, expected = _trials(idle)
    second, got = _trials(busy)
    assert got == expected
    cores = len(os.sched_getaffinity(0))
    assert first.user_attrs[STUDY_THREADS_ATTR] == second.user_attrs[STUDY_THREADS_ATTR] == cores
    assert {threads for _, _, threads in got} == {cores}


@pytest.mark.slow
def test_the_count_is_the_studys_wherever_it_runs_and_show_says_it(tmp_path):
    path = tmp_path / "busy.toml"
    path.write_text(STUDY.replace("n_trials = 3", "n_trials = 2"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    # Created with HPSEARCH_THREADS=1: a later run without it keeps 1.
    _run(path, url, "--n-trials", "1", threads=1)
    _run(path, url)
    study, trials = _trials(url)
    assert study.user_attrs[STUDY_THREADS_ATTR] == 1
    assert [threads for _, _, threads in trials] == [1, 1]
    shown = _run(None, url, "show", "busy", command="show").stdout
    assert "trains on 1 CPU threads, decided when the study was created" in shown
