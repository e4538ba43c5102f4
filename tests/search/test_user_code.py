"""A user's code is untrusted: whatever its class or network does (exit, print, raise, return
nonsense), that trial fails with the user's file and line, the run goes on, the budget is kept,
and nothing is left RUNNING or written into hpsearch's machine-readable output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.records import fail_reason
from tests.conftest import require_torch
from tests.search.faults import HPSEARCH

# One class whose behaviour a module constant picks; each behaviour is one line of its own, so
# the tests can name the line the failure must point at.
HOSTILE = """
import sys
import numpy as np

BEHAVIOUR = "{behaviour}"


class Hostile:
    def __init__(self, learning_rate=0.1, epochs=1, seed=0):
        if BEHAVIOUR == "init-raises": raise ValueError("no such setting")
        self.learning_rate, self.seed = learning_rate, seed

    def partial_fit(self, X, y, classes=None):
        self.classes = np.asarray(classes)
        if BEHAVIOUR == "print": print("HELLO FROM partial_fit")
        if BEHAVIOUR == "exit-0": sys.exit(0)
        if BEHAVIOUR == "exit-3": sys.exit(3)
        if BEHAVIOUR == "generator-exit": raise GeneratorExit
        if BEHAVIOUR == "keyboard-interrupt": raise KeyboardInterrupt
        if BEHAVIOUR == "runtime-error": raise RuntimeError("boom in partial_fit")
        if BEHAVIOUR == "empty-message": raise RuntimeError()
        return self

    def predict(self, X):
        if BEHAVIOUR == "print": print("HELLO FROM predict")
        if BEHAVIOUR == "predict-none": return None
        if BEHAVIOUR == "predict-nan": return np.full(len(X), np.nan)
        if BEHAVIOUR == "predict-strings": return np.array(["cat"] * len(X))
        if BEHAVIOUR == "predict-unknown-label": return np.full(len(X), 99)
        if BEHAVIOUR == "predict-wrong-shape": return np.zeros((len(X), 2))
        return self.classes[np.arange(len(X)) % len(self.classes)]

    def decision_function(self, X):
        if BEHAVIOUR == "scores-wrong-shape": return np.zeros((len(X), 3))
        return np.eye(len(self.classes))[np.arange(len(X)) % len(self.classes)]

    if BEHAVIOUR == "evaluate-2.5":
        def evaluate(self, X, y):
            return 0.1, 2.5
"""

STUDY = """
[study]
name = "hostile"
n_trials = 3
seed = 0
pruner = "none"

[data]
dataset = "digits"

[model]
kind = "{kind}"
fixed = {{ epochs = 2 }}

[params]
learning_rate = {{ type = "float", low = 1e-3, high = 1e-1, log = true }}
"""


def _folder(tmp_path: Path, behaviour: str) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "hostile.py").write_text(HOSTILE.format(behaviour=behaviour))
    (folder / "study.toml").write_text(STUDY.format(kind="hostile.py:Hostile"))
    return folder


def _line_of(folder: Path, text: str) -> int:
    lines = (folder / "hostile.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def _trials(db: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="hostile", storage=f"sqlite:///{db}").trials


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HPSEARCH, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


# behaviour -> words the reason must hold, after the file and line of the behaviour's line
RAISING = {
    "init-raises": "Hostile(...): ValueError: no such setting",
    "exit-0": "Hostile.partial_fit: SystemExit: the code called sys.exit(0)",
    "generator-exit": "Hostile.partial_fit: GeneratorExit: (no message)",
    "keyboard-interrupt": "Hostile.partial_fit: KeyboardInterrupt",
    "runtime-error": "Hostile.partial_fit: RuntimeError: boom in partial_fit",
    "empty-message": "Hostile.partial_fit: RuntimeError: (no message)",
}
IMPOSSIBLE = {
    "predict-none": "Hostile.predict returned None; expected ",
    "predict-nan": "Hostile.predict returned the label nan; expected ",
    "predict-strings": "Hostile.predict returned the label 'cat'; expected ",
    "predict-unknown-label": "Hostile.predict returned the label 99; expected ",
    "predict-wrong-shape": "Hostile.predict returned ndarray of shape (",
    "scores-wrong-shape": "Hostile.decision_function returned ndarray of shape (",
    "evaluate-2.5": "Hostile.evaluate returned the accuracy 2.5; expected (loss, accuracy)",
}


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", [*RAISING, *IMPOSSIBLE])
def test_what_a_users_class_does_fails_only_its_trial_and_says_where(tmp_path, capsys, behaviour):
    folder = _folder(tmp_path, behaviour)
    db = tmp_path / "h.db"
    code = main(["run", str(folder / "study.toml"), "--storage", f"sqlite:///{db}"])
    out, err = capsys.readouterr()
    assert code == 3, err  # no trial is complete
    assert "internal error" not in err and "Traceback" not in err
    trials = _trials(db)
    # Every trial of the budget ran, failed, counted, and none is left RUNNING.
    assert [t.state.name for t in trials] == ["FAIL"] * 3, [fail_reason(t) for t in trials]
    assert "3 of 3 trials finished (0 complete, 0 pruned, 3 failed)" in out
    reason = fail_reason(trials[0])
    assert reason.startswith("your code: "), reason
    if behaviour in RAISING:
        line = _line_of(folder, f'== "{behaviour}"')
        assert f"hostile.py:{line} in {RAISING[behaviour]}" in reason, reason
    else:
        assert IMPOSSIBLE[behaviour] in reason, reason
    assert f"trial 0 failed: {reason}" in err  # said on the terminal as it happens


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sys_exit_in_a_users_class_ends_the_trial_not_the_run(tmp_path, workers):
    folder = _folder(tmp_path, "exit-3")
    db = tmp_path / "h.db"
    url = f"sqlite:///{db}"
    done = _cli("run", "study.toml", "--storage", url, "--workers", str(workers), cwd=folder)
    assert done.returncode == 3, done.stderr  # no trial is complete
    # (with two workers, one may also record a surplus start: it asked when the budget was full)
    assert "3 of 3 trials finished (0 complete, 0 pruned, 3 failed" in done.stdout
    trials = [t for t in _trials(db) if not fail_reason(t).startswith("surplus")]
    assert [t.state.name for t in trials] == ["FAIL"] * 3
    line = _line_of(folder, '== "exit-3"')
    where = f"hostile.py:{line} in Hostile.partial_fit: SystemExit"
    assert all(where in fail_reason(t) for t in trials)
    # Said on the terminal as each happens, by whichever process ran the trial.
    for t in trials:
        assert f"trial {t.number} failed: {fail_reason(t)}" in done.stderr


@pytest.mark.slow
def test_a_users_prints_go_to_stderr_and_json_output_stays_json(tmp_path):
    folder = _folder(tmp_path, "print")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    done = _cli("run", "study.toml", "--storage", url, "--quiet", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "HELLO" not in done.stdout and "HELLO FROM partial_fit" in done.stderr
    confirmed = _cli(
        "confirm",
        "hostile",
        "--storage",
        url,
        "--top",
        "1",
        "--repeats",
        "2",
        "--quiet",
        "--format",
        "json",
        cwd=folder,
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert json.loads(confirmed.stdout)[0]["trial_number"] >= 0
    assert "HELLO FROM predict" in confirmed.stderr


def test_the_python_api_never_exits_for_a_users_sys_exit(tmp_path):
    import hpsearch

    class Exits:
        def __init__(self, learning_rate=0.1, epochs=1):
            pass

        def partial_fit(self, X, y, classes=None):
            sys.exit(5)

        def predict(self, X):
            raise AssertionError("never reached")

    doc = {
        "study": {"name": "api-exit", "n_trials": 2, "seed": 0, "pruner": "none"},
        "data": {"dataset": "digits"},
        "model": {"kind": Exits, "fixed": {"epochs": 1}},
        "params": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
    }
    study = hpsearch.run(doc, storage=f"sqlite:///{tmp_path / 'a.db'}", progress=False)
    reasons = [fail_reason(t) for t in study.trials]
    assert len(reasons) == 2
    words = "in Exits.partial_fit: SystemExit: the code called sys.exit(5)"
    assert all(words in r for r in reasons)
    assert all(__file__ in r for r in reasons), reasons  # the test's own file and line


def test_module_level_exit_in_a_class_file_is_one_line(tmp_path, capsys):
    folder = _folder(tmp_path, "")
    (folder / "hostile.py").write_text("raise SystemExit(4)\n")
    assert main(["validate", str(folder / "study.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"[model].kind: {folder / 'hostile.py'}:1: SystemExit" in err, err


@pytest.mark.slow
def test_a_class_file_imports_the_modules_beside_it(tmp_path, capsys):
    folder = _folder(tmp_path, "")
    (folder / "helpers_for_hostile.py").write_text("LEARNING = 'imported'\n")
    text = (folder / "hostile.py").read_text()
    (folder / "hostile.py").write_text("from helpers_for_hostile import LEARNING\n" + text)
    db = tmp_path / "h.db"
    assert main(["run", str(folder / "study.toml"), "--storage", f"sqlite:///{db}"]) == 0
    assert {t.state.name for t in _trials(db)} == {"COMPLETE"}


@pytest.mark.slow
def test_workers_start_from_a_folder_holding_models_search_and_optuna_py(tmp_path):
    folder = _folder(tmp_path, "")
    for name in ("models.py", "search.py", "optuna.py"):
        (folder / name).write_text("raise RuntimeError('the user file was imported')\n")
    url = f"sqlite:///{tmp_path / 'h.db'}"
    done = _cli("run", "study.toml", "--storage", url, "--workers", "2", "--quiet", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "3 of 3 trials finished (3 complete" in done.stdout


NETWORK = """
import torch

def clashing(input_shape, n_classes, learning_rate=0.1):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(n_classes))

def no_parameters(input_shape, n_classes):
    return torch.nn.Flatten()

def fifty_outputs(input_shape, n_classes):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 50))

def needs_width(input_shape, n_classes, *, width):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, n_classes))

def fails_inside(input_shape, n_classes):
    return Broken()

class Broken(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.layer(x.reshape(len(x), 63))
"""

NETWORK_STUDY = """
[study]
name = "hostile"
n_trials = 2
seed = 0
pruner = "none"

[data]
dataset = "digits"

[model]
kind = "torch.network"
fixed = {{ network = "net.py:{function}", epochs = 1 }}

[params]
learning_rate = {{ type = "float", low = 1e-3, high = 1e-1, log = true }}
"""


def _network_study(tmp_path: Path, function: str) -> Path:
    (tmp_path / "net.py").write_text(NETWORK)
    path = tmp_path / f"{function}.toml"
    path.write_text(NETWORK_STUDY.format(function=function))
    return path


def test_a_network_argument_named_like_a_trainer_argument_is_refused(tmp_path, capsys):
    require_torch()
    assert main(["validate", str(_network_study(tmp_path, "clashing"))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "[model].fixed.network: clashing's argument 'learning_rate'" in err
    assert "torch.network's trainer argument 'learning_rate'" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "words"),
    [
        ("no_parameters", "no_parameters returned a Flatten with no parameters"),
        ("fifty_outputs", "the network returned outputs of shape (64, 50); expected (64, 10)"),
        ("needs_width", "in needs_width(...): TypeError: needs_width() missing 1 required"),
        ("fails_inside", "net.py:{reshape} in fails_inside forward: RuntimeError: shape"),
    ],
)
def test_a_users_network_failing_fails_its_trial(tmp_path, capsys, function, words):
    require_torch()
    db = tmp_path / "h.db"
    study = _network_study(tmp_path, function)
    assert (
        main(["run", str(study), "--storage", f"sqlite:///{db}", "--quiet"]) == 3
    )  # both trials fail
    trials = _trials(db)
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    assert fail_reason(trials[0]).startswith("your code: ")
    reshape = 1 + NETWORK.splitlines().index("        return self.layer(x.reshape(len(x), 63))")
    words = words.format(reshape=reshape)
    assert words in fail_reason(trials[0]), fail_reason(trials[0])
