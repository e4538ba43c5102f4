"""A study of a user's own model moves between machines: its file is found again by content in a
copy of the folder at another path, and what only reads the database never runs the user's code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpsearch.cli import main
from tests.search.faults import HPSEARCH

EXAMPLE = Path(__file__).resolve().parents[2] / "studies" / "custom" / "hinge_linear.py"
MOVABLE = """
[study]
name = "moved"
n_trials = 3
seed = 0
pruner = "none"

[data]
dataset = "digits"

[model]
kind = "custom/hinge_linear.py:HingeLinear"
fixed = { epochs = 2 }

[params]
learning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }
"""


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HPSEARCH, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_a_user_class_study_moves_to_a_copy_of_its_folder_and_reads_without_the_code(tmp_path):
    machine_a, machine_b = tmp_path / "a" / "project", tmp_path / "b" / "elsewhere" / "project"
    (machine_a / "studies" / "custom").mkdir(parents=True)
    shutil.copy(EXAMPLE, machine_a / "studies" / "custom" / "hinge_linear.py")
    (machine_a / "studies" / "moved.toml").write_text(MOVABLE)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = _cli("run", "studies/moved.toml", "--storage", url, "--n-trials", "2", cwd=machine_a)
    assert first.returncode == 0, first.stderr
    # Another machine: the same project at another path; the first machine's copy is gone.
    shutil.copytree(machine_a, machine_b)
    shutil.rmtree(machine_a)
    joined = _cli("worker", "moved", "--storage", url, "--n-trials", "3", cwd=machine_b)
    assert joined.returncode == 0, joined.stderr
    resumed = _cli("run", "studies/moved.toml", "--storage", url, cwd=machine_b)
    assert resumed.returncode == 0, resumed.stderr
    states = [t.state.name for t in optuna.load_study(study_name="moved", storage=url).trials]
    assert states == ["COMPLETE"] * 3
    exported = _cli("export", "moved", "--storage", url, "-o", "best.json", cwd=machine_b)
    assert exported.returncode == 0, exported.stderr
    retrained = _cli("retrain", "best.json", "--out", "r", "--quiet", cwd=machine_b)
    assert retrained.returncode == 0, retrained.stderr
    assert json.loads((machine_b / "r" / "best.json").read_text())["retrain"]["reproduced"]
    # The code gone altogether: what only reads the database still works...
    shutil.rmtree(machine_b / "studies")
    report = str(machine_b / "r.html")
    before = {m for m in sys.modules if m.startswith("hpsearch_user_")}
    for command in (
        ["show", "moved"],
        ["studies"],
        ["report", "moved", "-o", report],
        ["export", "moved", "-o", str(machine_b / "again.json")],
    ):
        assert main([*command, "--storage", url]) == 0, command
    after = {m for m in sys.modules if m.startswith("hpsearch_user_")}
    assert after == before  # the user's code was never imported
    # ...and what must train says in one line what is missing, and where it looked.
    joined = _cli("worker", "moved", "--storage", url, "--n-trials", "4", cwd=machine_b)
    assert joined.returncode == 2
    line = joined.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line, line
    assert "the study's model file hinge_linear.py (SHA-256 " in line
    assert str(machine_b / "studies" / "custom" / "hinge_linear.py") in line


@pytest.mark.slow
def test_a_study_of_a_class_defined_in_a_notebook_reads_in_another_process(tmp_path):
    import hpsearch

    class InNotebook:  # qualname `...<locals>.InNotebook`: no other process can import it
        def __init__(self, learning_rate=0.1, epochs=1):
            self.learning_rate = learning_rate

        def partial_fit(self, X, y, classes=None):
            self.classes = np.asarray(classes)

        def predict(self, X):
            return self.classes[np.arange(len(X)) % len(self.classes)]

    doc = {
        "study": {"name": "notebook", "n_trials": 2, "seed": 0, "pruner": "none"},
        "data": {"dataset": "digits"},
        "model": {"kind": InNotebook, "fixed": {"epochs": 1}},
        "params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    url = f"sqlite:///{tmp_path / 'n.db'}"
    hpsearch.run(doc, storage=url, progress=False)
    for command in (["show", "notebook"], ["export", "notebook"], ["studies"]):
        done = _cli(*command, "--storage", url, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
