"""Tuning your own classifier: a class in a file of yours, scikit-learn's incremental
estimators, and every way such a study file can be wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpsearch.cli import main
from tests.search.faults import HPSEARCH

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "studies" / "custom" / "hinge_linear.py"

STUDY = """
[study]
name = "own"
n_trials = {n_trials}
seed = 0
pruner = {{ type = "median", n_startup_trials = 2, n_warmup_steps = 1 }}

[data]
dataset = "digits"

[model]
kind = "{kind}"
fixed = {{ {fixed} }}

[params]
{params}
"""
HINGE_PARAMS = """learning_rate = { type = "float", low = 1e-4, high = 1e-1, log = true }
reg = { type = "categorical", choices = ["l1", "l2"] }"""


def _study(
    folder: Path, kind: str, *, fixed="epochs = 6", params=HINGE_PARAMS, n_trials=8, name="study"
):
    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(kind=kind, fixed=fixed, params=params, n_trials=n_trials))
    return path


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def own(tmp_path) -> Path:
    """A folder of the user's: their classifier file beside their study file."""
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "hinge_linear.py")
    return folder


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HPSEARCH, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_your_own_class_is_searched_pruned_exported_retrained_and_joined(own, tmp_path):
    study = _study(own, "hinge_linear.py:HingeLinear", n_trials=10)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    elsewhere = tmp_path / "elsewhere"  # run from another folder: the path is the file's
    elsewhere.mkdir()
    done = _cli("run", str(study), "--storage", url, "--n-trials", "8", "--quiet", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="own", storage=url).trials
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert any(t.state.name == "PRUNED" for t in trials)  # pruned per epoch, like any model
    for t in trials:  # one report per epoch trained
        assert len(t.intermediate_values) == len(t.user_attrs["curves"]["val_accuracy"])
        assert t.user_attrs["train_metrics"] == "batches"  # the class keeps epoch_metrics_
    # Another worker process joins the stored study with nothing but its name.
    joined = _cli("worker", "own", "--storage", url, "--quiet", cwd=elsewhere)
    assert joined.returncode == 0, joined.stderr
    assert len(optuna.load_study(study_name="own", storage=url).trials) == 10
    assert _cli("export", "own", "--storage", url, "-o", "b.json", cwd=elsewhere).returncode == 0
    doc = json.loads((elsewhere / "b.json").read_text())
    assert doc["model_kind"] == f"{own / 'hinge_linear.py'}:HingeLinear"
    assert doc["model_source"]["file"] == str(own / "hinge_linear.py")
    retrained = _cli("retrain", "b.json", "--out", "r", "--quiet", cwd=elsewhere)
    assert retrained.returncode == 0, retrained.stderr
    result = json.loads((elsewhere / "r" / "b.json").read_text())["retrain"]
    assert result["reproduced"] is True
    assert set(np.load(elsewhere / "r" / "weights.npz")) == {"W", "b"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, params",
    [
        (
            "sklearn.linear_model:SGDClassifier",
            'alpha = { type = "float", low = 1e-6, high = 1e-2, log = true }\n'
            'eta0 = { type = "float", low = 1e-3, high = 1e-1, log = true }\n'
            'loss = { type = "categorical", choices = ["hinge", "log_loss"] }\n'
            'penalty = { type = "categorical", choices = ["l2", "l1"] }\n'
            'learning_rate = { type = "categorical", choices = ["constant"] }',
        ),
        (
            "sklearn.neural_network:MLPClassifier",
            'learning_rate_init = { type = "float", low = 1e-4, high = 1e-2, log = true }\n'
            'alpha = { type = "float", low = 1e-6, high = 1e-2, log = true }',
        ),
        (
            "sklearn.linear_model:Perceptron",
            'eta0 = { type = "float", low = 1e-3, high = 1.0, log = true }\n'
            'penalty = { type = "categorical", choices = ["l2", "l1"] }',
        ),
    ],
    ids=["SGDClassifier", "MLPClassifier", "Perceptron"],
)
def test_scikit_learns_incremental_estimators_work_unchanged(tmp_path, kind, params, capsys):
    study = _study(tmp_path, kind, fixed="epochs = 3", params=params, n_trials=4)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["run", str(study), "--storage", url, "--quiet"]) == 0
    trials = optuna.load_study(study_name="own", storage=url).trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert complete and max(t.value for t in complete) > 0.5  # it learned digits
    assert all(len(t.intermediate_values) >= 1 for t in trials)
    out = tmp_path / "b.json"
    assert main(["export", "own", "--storage", url, "-o", str(out)]) == 0
    assert main(["retrain", str(out), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert json.loads((tmp_path / "r" / "b.json").read_text())["retrain"]["reproduced"]
    assert (tmp_path / "r" / "model.pkl").exists()  # no get_weights: the estimator, pickled


BROKEN_CLASS = """
import numpy as np

class NoFit:
    def __init__(self, learning_rate=0.1, reg="l2"):
        self.learning_rate = learning_rate

    def predict(self, X):
        return np.zeros(len(X))


class Strict:
    def __init__(self, learning_rate=0.1, reg="l2", seed=0):
        pass

    def partial_fit(self, X, y, classes=None):
        return self

    def predict(self, X):
        return np.zeros(len(X))
"""


@pytest.mark.parametrize(
    "kind, file_text, key, words",
    [
        ("no_such_module:Model", None, "[model].kind", "no module named 'no_such_module'"),
        ("mine.py:Model", "def broken(:\n    pass\n", "[model].kind", "mine.py:1: SyntaxError"),
        (
            "mine.py:Model",
            "import numpy\n\nvalue = 1 / 0\n",
            "[model].kind",
            "mine.py:3: ZeroDivisionError: division by zero",
        ),
        ("mine.py:NoFit", BROKEN_CLASS, "[model].kind", "NoFit has no partial_fit"),
        ("mine.py:Missing", BROKEN_CLASS, "[model].kind", "has no class 'Missing'"),
        ("missing.py:Model", None, "[model].kind", "missing.py: no such file"),
    ],
    ids=["no-module", "syntax-error", "exception", "no-partial-fit", "no-class", "no-file"],
)
def test_a_class_that_cannot_be_used_is_one_line(tmp_path, kind, file_text, key, words, capsys):
    if file_text is not None:
        (tmp_path / "mine.py").write_text(file_text)
    study = _study(tmp_path, kind)
    db = tmp_path / "h.db"
    assert main(["run", str(study), "--storage", f"sqlite:///{db}"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"{study}: {key}: ") and words in line, line
    assert not db.exists()  # no study was created


def test_unknown_arguments_refused_values_and_patience_are_one_line(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(BROKEN_CLASS)
    cases = [
        (
            _study(
                tmp_path,
                "mine.py:Strict",
                params=HINGE_PARAMS.replace("reg =", "regg ="),
                name="a",
            ),
            "mine.py:Strict has no argument 'regg'",
            "(did you mean 'reg'?)",
        ),
        (
            _study(
                tmp_path,
                "sklearn.linear_model:SGDClassifier",
                fixed="alpha = -1.0",
                params='eta0 = { type = "float", low = 1e-3, high = 1e-1 }',
                name="b",
            ),
            "[model].fixed.alpha",
            "got -1.0; allowed: a float in the range [0.0, inf)",
        ),
        (
            _study(tmp_path, "mine.py:Strict", fixed="epochs = 3, patience = 2", name="c"),
            "[model].fixed.patience",
            "Strict has no get_weights() and set_weights()",
        ),
    ]
    for path, key, words in cases:
        assert main(["validate", str(path)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert key in line and words in line, line


@pytest.mark.slow
def test_a_source_file_changed_after_the_study_was_created_is_refused(own, tmp_path, cli_here):
    study = _study(own, "hinge_linear.py:HingeLinear", n_trials=4)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert (
        _cli("run", str(study), "--storage", url, "--n-trials", "2", "--quiet", cwd=own).returncode
        == 0
    )
    assert cli_here("export", "own", "--storage", url, "-o", "b.json", cwd=own)[0] == 0
    source = own / "hinge_linear.py"
    source.write_text(source.read_text().replace("1e-3, (X.shape", "1e-2, (X.shape"))
    for args in (
        ["run", str(study), "--storage", url, "--quiet"],
        ["worker", "own", "--storage", url, "--quiet"],
        ["confirm", "own", "--storage", url, "--quiet"],
        ["retrain", "b.json", "--quiet"],
    ):
        code, _, err = cli_here(*args, cwd=own)
        assert code == 2, (args, err)
        line = _one_line(err)
        assert f"{source} differs from the file this study was created with" in line, line
    assert len(optuna.load_study(study_name="own", storage=url).trials) == 2  # nothing ran


NETWORK_STUDY = """
[study]
name = "net"
n_trials = 4
seed = 0
pruner = "none"

[data]
dataset = "digits"

[model]
kind = "torch.network"
fixed = {{ {fixed} }}

[params]
learning_rate = {{ type = "float", low = 1e-3, high = 1e-2, log = true }}
width = {{ type = "categorical", choices = [4, 8] }}
"""


@pytest.mark.slow
def test_a_torch_network_of_your_own_with_a_searched_argument(tmp_path, capsys):
    from tests.conftest import require_torch

    require_torch()
    shutil.copy(ROOT / "studies" / "custom" / "small_cnn.py", tmp_path / "net.py")
    path = tmp_path / "net.toml"
    fixed = 'network = "net.py:small_cnn", epochs = 2, optimizer = "adam"'
    path.write_text(NETWORK_STUDY.format(fixed=fixed))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["run", str(path), "--storage", url, "--quiet"]) == 0
    trials = optuna.load_study(study_name="net", storage=url).trials
    assert {t.params["width"] for t in trials} == {4, 8}  # its own argument, searched
    assert all(t.state.name == "COMPLETE" for t in trials)
    out = tmp_path / "b.json"
    assert main(["export", "net", "--storage", url, "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model_source"]["file"] == str(tmp_path / "net.py")
    assert main(["retrain", str(out), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    weights = np.load(tmp_path / "r" / "weights.npz")
    width = doc["configs"][0]["params"]["width"]
    assert weights["0.weight"].shape == (width, 1, 3, 3)  # the network the function built
    assert json.loads((tmp_path / "r" / "b.json").read_text())["retrain"]["reproduced"]


@pytest.mark.parametrize(
    "fixed, words",
    [
        ("epochs = 2", "[model].fixed.network: missing"),
        ('network = "net.py:nope"', "has no function 'nope'"),
        ('network = "net.py:wrong"', "a network function takes (input_shape, n_classes"),
    ],
    ids=["no-network", "no-function", "wrong-signature"],
)
def test_a_network_that_cannot_be_used_is_one_line(tmp_path, fixed, words, capsys):
    from tests.conftest import require_torch

    require_torch()
    (tmp_path / "net.py").write_text("def wrong(shape, classes):\n    return None\n")
    path = tmp_path / "net.toml"
    path.write_text(NETWORK_STUDY.format(fixed=fixed))
    assert main(["validate", str(path)]) == 2
    assert words in _one_line(capsys.readouterr().err)
