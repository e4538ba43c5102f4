"""A trial that takes its process down fails alone: user code that ends its process (os._exit,
a segfault, a SIGKILL of its own), hangs, ignores signals, leaves threads or writes to file
descriptor 1 fails only its own trial, at once, naming the user's file, class, method and
epoch; the run finishes its budget and no process of it outlives it.

Every case runs `hpsearch` as a real process on a class file the test writes; the waits are on
events (a line the user's code prints, a process gone), bounded, never timed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from hpsearch.records import fail_reason
from tests.conftest import require_torch
from tests.search.faults import HPSEARCH
from tests.search.faults import Lines

# The class misbehaves in epoch 1 of a trial whose learning rate is above 0.01; the study
# tries 0.05 (misbehaves) and 0.002 (trains) first, so both kinds of trial are always there.
CLASS = """
import os, signal, sys, threading, time
import numpy as np

BEHAVIOUR = "{behaviour}"


def _misbehave():
    with open(os.path.join(os.path.dirname(__file__), "pids.txt"), "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    if BEHAVIOUR == "os-exit-0": os._exit(0)
    if BEHAVIOUR == "os-exit-3": os._exit(3)
    if BEHAVIOUR == "segfault":
        import ctypes
        ctypes.string_at(0)
    if BEHAVIOUR == "sigkill": os.kill(os.getpid(), signal.SIGKILL)
    if BEHAVIOUR == "hang": time.sleep(10 ** 6)
    if BEHAVIOUR == "deaf":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("LOOPING", flush=True)
        while True:
            time.sleep(0.01)


class Mine:
    def __init__(self, learning_rate=0.1, epochs=2, seed=0):
        self.learning_rate, self.epoch = learning_rate, 0

    def partial_fit(self, X, y, classes=None):
        self.classes = np.asarray(classes)
        if BEHAVIOUR == "exit-always": os._exit(3)
        if BEHAVIOUR == "thread":
            threading.Thread(target=time.sleep, args=(10 ** 6,)).start()
        if BEHAVIOUR == "fd1":
            os.write(1, b"RAW ON FD 1\\n")
            os.system("echo CHILD ON FD 1")
        if self.epoch == 1 and self.learning_rate > 0.01:
            _misbehave()
        self.epoch += 1
        return self

    def predict(self, X):
        if BEHAVIOUR == "crash-when-asked" and os.environ.get("HOSTILE_CRASH"):
            os._exit(9)
        return self.classes[np.arange(len(X)) % len(self.classes)]
"""

STUDY = """
[study]
name = "hostile"
n_trials = {n_trials}
seed = 0
pruner = "none"
{extra}

[data]
dataset = "digits"

[model]
kind = "mine.py:Mine"
fixed = {{ epochs = 2 }}

[params]
learning_rate = {{ type = "float", low = 1e-3, high = 1e-1, log = true }}

[[enqueue]]
learning_rate = 0.05

[[enqueue]]
learning_rate = 0.002
"""


def _folder(tmp_path: Path, behaviour: str, n_trials: int = 4, extra: str = "") -> Path:
    folder = tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "mine.py").write_text(CLASS.format(behaviour=behaviour))
    (folder / "study.toml").write_text(STUDY.format(n_trials=n_trials, extra=extra))
    return folder


def _run(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # The bound is for a hung product, not a timing: these runs take seconds.
    return subprocess.run(
        [HPSEARCH, *args],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=240,
        env={**os.environ, **(env or {})},
    )


def _trials(folder: Path) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{folder / 'h.db'}"
    return optuna.load_study(study_name="hostile", storage=url).trials


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie has ended; only its parent has not collected it yet.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def _wait_gone(pids: list[int], seconds: float = 60) -> list[int]:
    """The pids still alive after waiting (up to a bound) for all of them to end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if not _gone(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` now (from /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with open(task / "children") as f:
                children = [int(c) for c in f.read().split()]
            found += children
            todo += children
    return found


ENDS = {
    "os-exit-0": "ended its process with exit code 0 (os._exit(0) or exit() in C code)",
    "os-exit-3": "ended its process with exit code 3 (os._exit(3) or exit() in C code)",
    "segfault": "had its process killed by SIGSEGV",
    "sigkill": "had its process killed by SIGKILL (out of memory?)",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("behaviour", "workers"),
    [(b, 1) for b in ENDS] + [("os-exit-0", 2), ("segfault", 2)],  # (every end, each way)
)
def test_code_that_ends_its_process_fails_only_its_trial(tmp_path, behaviour, workers):
    folder = _folder(tmp_path, behaviour)
    done = _run(
        folder, "run", "study.toml", "--storage", "sqlite:///h.db", "--workers", str(workers)
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    trials = [t for t in _trials(folder) if not fail_reason(t).startswith("surplus")]
    # The budget is finished exactly; nothing is left RUNNING, nothing re-queued.
    assert "4 of 4 trials finished" in done.stdout
    assert len(trials) == 4 and all(t.state.name in ("COMPLETE", "FAIL") for t in trials)
    assert not any("failed_trial" in t.system_attrs for t in trials)
    for t in trials:
        misbehaved = t.params["learning_rate"] > 0.01
        assert t.state.name == ("FAIL" if misbehaved else "COMPLETE"), fail_reason(t)
        if misbehaved:
            where = f"in {folder / 'mine.py'}, Mine.partial_fit, epoch 1"
            assert fail_reason(t) == f"your code: {ENDS[behaviour]} {where}"
            assert f"trial {t.number} failed: {fail_reason(t)}" in done.stderr
    assert trials[0].state.name == "FAIL" and trials[1].state.name == "COMPLETE"


@pytest.mark.slow
def test_a_trial_past_trial_timeout_is_stopped_and_the_run_goes_on(tmp_path):
    folder = _folder(tmp_path, "hang", n_trials=3, extra="trial_timeout = 30")
    # The flag overrides the study file's 30 s: the hanging trial is stopped after 2.
    done = _run(folder, "run", "study.toml", "--storage", "sqlite:///h.db", "--trial-timeout", "2")
    assert done.returncode == 0, done.stderr
    trials = _trials(folder)
    hung = [t for t in trials if t.params["learning_rate"] > 0.01]
    assert hung and len(trials) == 3
    where = f"in {folder / 'mine.py'}, Mine.partial_fit, epoch 1"
    for t in hung:
        assert t.state.name == "FAIL"
        assert fail_reason(t) == f"timeout: took longer than 2 s (trial_timeout) {where}"
        assert f"trial {t.number} failed: {fail_reason(t)}" in done.stderr
    assert {t.state.name for t in trials if t not in hung} == {"COMPLETE"}
    pids = [int(p) for p in (folder / "pids.txt").read_text().split()]
    assert _wait_gone(pids) == []


def _start(folder: Path, *args: str) -> tuple[subprocess.Popen, Lines]:
    proc = subprocess.Popen(
        [HPSEARCH, "run", "study.toml", "--storage", "sqlite:///h.db", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, Lines(proc.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_two_ctrl_c_stop_a_run_whose_code_ignores_signals(tmp_path, workers):
    folder = _folder(tmp_path, "deaf", n_trials=4)
    proc, err = _start(folder, "--workers", str(workers), "--quiet")
    err.wait_for("LOOPING", n=1, seconds=120)
    proc.send_signal(signal.SIGINT)
    err.wait_for("press Ctrl-C again", seconds=60)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130, err.text
    pids = [int(p) for p in (folder / "pids.txt").read_text().split()]
    assert _wait_gone(pids) == [], err.text
    trials = _trials(folder)
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    looping = [t for t in trials if t.params.get("learning_rate", 0) > 0.01]
    failed = [t for t in looping if t.state.name == "FAIL"]
    assert failed and all(fail_reason(t) == "interrupted" for t in failed)
    # Each interrupted trial waits to run again first, with the same parameters and seed.
    again = [t for t in looping if t.state.name == "WAITING"]
    assert len(again) == len(failed) == len(looping) / 2
    for retry in again:
        (was,) = [t for t in failed if t.number == retry.system_attrs["failed_trial"]]
        assert retry.params == was.params and retry.user_attrs["seed"] == was.user_attrs["seed"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_no_process_outlives_a_run_killed_by_sigkill(tmp_path, workers):
    folder = _folder(tmp_path, "deaf", n_trials=4)
    proc, err = _start(folder, "--workers", str(workers), "--quiet")
    err.wait_for("LOOPING", n=1, seconds=120)
    below = _descendants(proc.pid)
    assert below, "the run has started no process"
    proc.kill()
    proc.wait(timeout=30)
    # Its workers, their training processes, and the code looping in them: all end.
    assert _wait_gone(below) == [], err.text


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_thread_left_running_by_the_users_code_does_not_hold_the_run(tmp_path, workers):
    folder = _folder(tmp_path, "thread", n_trials=2)
    done = _run(
        folder, "run", "study.toml", "--storage", "sqlite:///h.db", "--workers", str(workers)
    )
    assert done.returncode == 0, done.stderr
    assert "2 of 2 trials finished (2 complete" in done.stdout


@pytest.mark.slow
def test_writes_to_file_descriptor_1_never_reach_json_output(tmp_path):
    folder = _folder(tmp_path, "fd1", n_trials=2)
    done = _run(folder, "run", "study.toml", "--storage", "sqlite:///h.db", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "RAW ON FD 1" not in done.stdout and "RAW ON FD 1" in done.stderr
    assert "CHILD ON FD 1" not in done.stdout and "CHILD ON FD 1" in done.stderr
    args = ["--storage", "sqlite:///h.db", "--quiet", "--format", "json"]
    confirmed = _run(folder, "confirm", "hostile", "--top", "1", "--repeats", "1", *args)
    assert confirmed.returncode == 0, confirmed.stderr
    assert json.loads(confirmed.stdout)[0]["trial_number"] in (0, 1)
    assert "RAW ON FD 1" in confirmed.stderr


@pytest.mark.slow
def test_confirm_and_retrain_fail_in_one_line_when_the_code_ends_its_process(tmp_path):
    folder = _folder(tmp_path, "crash-when-asked", n_trials=2)
    done = _run(folder, "run", "study.toml", "--storage", "sqlite:///h.db", "--quiet")
    assert done.returncode == 0, done.stderr
    crash = {"HOSTILE_CRASH": "1"}
    args = ["--storage", "sqlite:///h.db"]
    confirmed = _run(folder, "confirm", "hostile", *args, "--quiet", "--format", "json", env=crash)
    assert _run(folder, "export", "hostile", *args, "-o", "best.json").returncode == 0
    retrained = _run(folder, "retrain", "best.json", "--out", "out", "--quiet", env=crash)
    for ended in (confirmed, retrained):
        assert ended.returncode == 1, ended.stderr
        assert ended.stdout == ""
        line = ended.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, line
        assert line.startswith("your code ended its process with exit code 9"), line
        assert f"in {folder / 'mine.py'}, Mine.predict, epoch" in line
    assert not any((folder / "out").iterdir())  # retrain wrote nothing


@pytest.mark.slow
def test_a_run_with_no_complete_trial_exits_3_and_says_why(tmp_path):
    folder = _folder(tmp_path, "exit-always", n_trials=2)
    done = _run(folder, "run", "study.toml", "--storage", "sqlite:///h.db", "--quiet")
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("no trial of study 'hostile' is complete"), last
    assert "your code: ended its process with exit code 3" in last
    # `hpsearch worker` on the same study says the same.
    again = _run(folder, "worker", "hostile", "--storage", "sqlite:///h.db", "--quiet")
    assert again.returncode == 3, again.stderr


TORCH_STUDY = """
[study]
name = "hostile"
n_trials = 2
seed = 0
pruner = "none"

[data]
dataset = "digits"

[model]
kind = "torch.logistic"

[params]
learning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }
epochs = { type = "categorical", choices = [2, 100000] }

[[enqueue]]
learning_rate = 0.01
epochs = 100000

[[enqueue]]
learning_rate = 0.01
epochs = 2
"""


@pytest.mark.slow
def test_a_built_in_torch_kind_whose_process_crashes_fails_alone(tmp_path):
    """A segfault in Torch's own code (sent from outside once the trial has reported an
    epoch) ends that trial as `crashed`, counted and not re-queued; the run goes on."""
    require_torch()
    (tmp_path / "study.toml").write_text(TORCH_STUDY)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    proc = subprocess.Popen(
        [HPSEARCH, "run", "study.toml", "--storage", url, "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    reported = False
    while not reported and time.monotonic() < deadline:
        with _quiet_optuna():
            try:
                trials = optuna.load_study(study_name="hostile", storage=url).trials
            except Exception:  # the study is not created yet
                trials = []
        reported = bool(trials and trials[0].intermediate_values)
        time.sleep(0.05)
    assert reported, "trial 0 never reported an epoch"
    (trainer,) = _descendants(proc.pid)
    os.kill(trainer, signal.SIGSEGV)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    first, second = optuna.load_study(study_name="hostile", storage=url).trials
    assert first.state.name == "FAIL" and second.state.name == "COMPLETE"
    assert fail_reason(first).startswith(
        "crashed: training had its process killed by SIGSEGV in torch.logistic, epoch "
    ), fail_reason(first)
    assert "2 of 2 trials finished (1 complete, 0 pruned, 1 failed)" in out


class _quiet_optuna:
    def __enter__(self):
        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.ERROR)

    def __exit__(self, *exc):
        optuna.logging.set_verbosity(self.level)


def test_trial_timeout_is_checked_like_every_key(write_study, capsys):
    from hpsearch.cli import main
    from tests.conftest import TINY

    path = write_study(TINY.replace("seed = 0", "seed = 0\ntrial_timeout = -1"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}: [study].trial_timeout: got -1") and "\n" not in err


def test_the_training_process_reports_where_it_was_when_it_died():
    """The page the training process writes as it goes is read after it has died."""
    from hpsearch import trial_process

    with trial_process.Trainer({}) as trainer:
        assert trainer.call(_answer, 41) == 42  # a job answers
        first = trainer.pid
        with pytest.raises(trial_process.ProcessEnded) as ended:
            trainer.call(_dies, 5)
        assert ended.value.place == trial_process.whereabouts.Place(
            "/somewhere/mine.py", "Mine.partial_fit", 7
        )
        assert "exit code 5" in ended.value.how
        assert _gone(first)
        assert trainer.call(_answer, 1) == 2  # a fresh process takes the next job
        assert trainer.pid != first


def test_where_it_died_is_read_without_linux_memfd_too(monkeypatch):
    """Where the system has no memfd (macOS), the page is an unlinked temporary file."""
    from hpsearch import trial_process

    monkeypatch.delattr(os, "memfd_create")
    with trial_process.Trainer({}) as trainer:
        with pytest.raises(trial_process.ProcessEnded) as ended:
            trainer.call(_dies, 4)
    assert ended.value.place.what == "Mine.partial_fit" and ended.value.place.epoch == 7


def _answer(state, channel, x):
    return x + 1


def _dies(state, channel, code):
    from hpsearch.models import whereabouts
    from hpsearch.models.usercode import calling

    whereabouts.set_file("/somewhere/mine.py")
    whereabouts.set_epoch(7)
    with calling("Mine.partial_fit"):
        os._exit(code)


@pytest.mark.slow
def test_a_database_deleted_mid_run_is_named_as_deleted(write_study, tmp_path):
    from tests.conftest import TINY

    study = write_study(TINY.replace("n_trials = 6", "n_trials = 400"))
    db = tmp_path / "gone.db"
    url = f"sqlite:///{db}"
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(study), "--storage", url, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until a trial is stored (an event, bounded)
        with _quiet_optuna():
            try:
                if optuna.load_study(study_name="tiny", storage=url).trials:
                    break
            except Exception:  # not created yet
                pass
        time.sleep(0.05)
    db.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"storage: {url}: the database file was deleted or moved"), line
    assert "read-only" not in line


AFTER_TORCH = """
import sys
import torch

x = torch.randn(2000, 2000)
(x + x).sum()  # Torch's OpenMP threads now run in this process: a fork of it would hang

import hpsearch

doc = {
    "study": {"name": "after-torch", "n_trials": 2, "seed": 0, "pruner": "none"},
    "data": {"dataset": "digits"},
    "model": {"kind": sys.argv[2], "fixed": {"epochs": 2}},
    "params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
}
if sys.argv[2] == "local":
    class Local:  # known only to this process: trained in a fork, on one thread
        def __init__(self, learning_rate=0.1, epochs=2):
            pass

        def partial_fit(self, X, y, classes=None):
            self.classes = classes
            (torch.randn(500, 500) * 2).sum()  # its own Torch, in the fork

        def predict(self, X):
            return self.classes[[i % len(self.classes) for i in range(len(X))]]

    doc["model"]["kind"] = Local
study = hpsearch.run(doc, storage=sys.argv[1], progress=False)
trials = study.trials
print(sorted({t.state.name for t in trials}), sorted({t.user_attrs["threads"] for t in trials}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torch.logistic", "local"])
def test_a_program_that_ran_torch_trains_without_hanging(tmp_path, kind):
    """A program that ran Torch before calling hpsearch: a Torch kind trains in a fresh
    interpreter, a class known only to that program in a fork on one thread."""
    require_torch()
    script = tmp_path / "after_torch.py"
    script.write_text(AFTER_TORCH)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    done = subprocess.run(
        [sys.executable, str(script), url, kind], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    states, threads = done.stdout.strip().splitlines()[-1].split("] [")
    assert states == "['COMPLETE'"
    if kind == "local":
        assert threads == "1]"
