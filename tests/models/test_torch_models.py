"""The PyTorch classifiers: learning, determinism, shapes, penalties, and life without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hpsearch.models import MODELS
from hpsearch.models.regularizers import penalty
from hpsearch.models.training import train
from tests.conftest import TINY
from tests.conftest import require_torch

# Settings under which each model learns digits within a few seconds, and the validation
# accuracy it must reach (measured 0.95-0.97 when these were written).
LEARNS = {
    "torch.logistic": ({"learning_rate": 0.1, "epochs": 20}, 0.93),
    "torch.mlp": ({"learning_rate": 0.05, "epochs": 20, "hidden": [64], "dropout": 0.1}, 0.93),
    "torch.cnn": (
        {"learning_rate": 0.05, "epochs": 12, "channels": "16-32", "optimizer": "momentum"},
        0.93,
    ),
}


def _train(kind, digits, seed=0, **extra):
    require_torch()
    params, _ = LEARNS[kind]
    model = MODELS[kind].build({**params, **extra}, seed=seed)
    images = model.wants_images
    history = train(
        model, *digits.split("train", images), *digits.split("val", images), classes=digits.classes
    )
    return model, history


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(LEARNS))
def test_each_model_learns_digits(kind, digits):
    _, history = _train(kind, digits)
    assert history.kept_val_accuracy >= LEARNS[kind][1]


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(LEARNS))
def test_the_same_seed_gives_the_same_metrics(kind, digits):
    runs = [_train(kind, digits, seed=s, epochs=3)[1] for s in (4, 4, 5)]
    assert runs[0].val_loss == runs[1].val_loss and runs[0].train_loss == runs[1].train_loss
    assert runs[0].val_loss != runs[2].val_loss


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 48, 48)])
def test_the_cnn_takes_each_input_shape(shape):
    require_torch()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, *shape), dtype=np.float32)
    y = np.arange(24) % 6
    for batch_norm in (True, False):
        model = MODELS["torch.cnn"].build(
            {"epochs": 1, "batch_size": 8, "channels": "8-16-16", "batch_norm": batch_norm}, seed=0
        )
        model.partial_fit(X, y, classes=np.arange(6))
        assert model.decision_function(X).shape == (24, 6)


@pytest.mark.parametrize("reg", ["l1", "l2"])
@pytest.mark.parametrize("kind", list(LEARNS))
def test_penalties_equal_the_numpy_definitions_on_the_same_weights(kind, reg, digits):
    model, _ = _train(kind, digits, epochs=1, reg=reg, reg_strength=0.01)
    weights = model.get_weights()
    matrices = {k: v for k, v in weights.items() if v.ndim >= 2}  # no biases, no BatchNorm
    assert matrices and all(k.endswith("weight") for k in matrices)
    expected, _ = penalty(reg, 0.01, {k: v.astype(np.float64) for k, v in matrices.items()})
    assert float(model.penalty().detach()) == pytest.approx(expected, rel=1e-5)


def test_early_stopping_restores_every_tensor_including_batchnorm_statistics(digits):
    model, history = _train("torch.cnn", digits, epochs=12, patience=2, learning_rate=0.3)
    X_val, y_val = digits.split("val", images=True)
    assert model.evaluate(X_val, y_val)[1] == history.kept_val_accuracy
    assert any("running_mean" in k for k in model.get_weights())


def test_an_exploding_learning_rate_stops_the_trial(digits):
    from hpsearch.models.training import TrainingDiverged

    with pytest.raises(TrainingDiverged):
        _train("torch.mlp", digits, learning_rate=1e6, epochs=3)


# A process in which `import torch` fails as on a machine without it. (An import hook, not
# sys.modules["torch"] = None: current SciPy reads sys.modules["torch"] and fails on None.)
BLOCK_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
from hpsearch.cli import main
"""


@pytest.mark.parametrize("command", ["validate", "run"])
def test_without_torch_a_torch_study_ends_in_one_line_saying_how_to_install(
    command, write_study, tmp_path
):
    path = write_study(TINY.replace("numpy.softmax", "torch.mlp"))
    argv = [command, str(path)] + (
        ["--storage", f"sqlite:///{tmp_path / 'h.db'}"] if command == "run" else []
    )
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + f"sys.exit(main({argv!r}))"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "[model].kind" in lines[0] and "pip install torch" in lines[0]
    assert not (tmp_path / "h.db").exists()


@pytest.mark.slow
def test_numpy_studies_never_import_torch(write_study, tmp_path):
    code = (
        BLOCK_TORCH + f"rc = main(['run', {str(write_study())!r}, '--quiet', '--storage', "
        f"'sqlite:///{tmp_path / 'h.db'}']); print(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "0", done.stderr
