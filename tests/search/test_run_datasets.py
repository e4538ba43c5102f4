"""`hpsearch run` with every dataset name (fixtures in the real formats, over HTTP)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpsearch.cli import main
from hpsearch.models.data.sources import SOURCES
from tests.conftest import TINY
from tests.datafiles import DEAD
from tests.datafiles import cifar_batches
from tests.datafiles import cifar_tar
from tests.datafiles import images_and_labels
from tests.datafiles import require_debian_fashion
from tests.datafiles import serve_cifar
from tests.datafiles import serve_idx

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_cache")]
ROOT = Path(__file__).resolve().parents[2]


def _study(dataset: str) -> str:
    return TINY.replace('dataset = "digits"', f'dataset = "{dataset}"').replace(
        "n_trials = 6", "n_trials = 2"
    )


def _run_ok(write_study, db_url, dataset: str) -> optuna.Study:
    assert main(["run", str(write_study(_study(dataset))), "--storage", db_url, "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=db_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    return study


def test_run_on_mnist(server, monkeypatch, write_study, db_url):
    serve_idx(server, monkeypatch)
    _run_ok(write_study, db_url, "mnist")


def test_run_on_cifar10(server, monkeypatch, write_study, db_url):
    batches = cifar_batches(20)
    archive = cifar_tar(batches)
    serve_cifar(server, monkeypatch, archive)
    _run_ok(write_study, db_url, "cifar10")


@pytest.mark.parametrize(
    "study", ["studies/cifar10_cnn.toml", "studies/assignments/a001_cifar10_cnn.toml"]
)
def test_the_shipped_cifar10_cnn_studies_run_a_trial(
    server,
    monkeypatch,
    tmp_path,
    db_url,
    study,
    capsys,
):
    """The redesigned CIFAR-10 CNNs (blocks, augmentation, one-cycle) run one trial on the
    fixture, with their own file: only the epochs are cut to 2, or the test would take
    minutes."""
    from tests.conftest import require_torch

    require_torch()
    serve_cifar(server, monkeypatch, cifar_tar(cifar_batches(20)))
    text = (ROOT / study).read_text().replace("epochs = 30", "epochs = 2")
    assert "epochs = 2," in text
    path = tmp_path / "cifar.toml"
    path.write_text(text)
    assert main(["run", str(path), "--storage", db_url, "--quiet", "--n-trials", "1"]) == 0
    trial = optuna.load_study(study_name=optuna.get_all_study_names(db_url)[0], storage=db_url)
    assert [t.state.name for t in trial.trials] == ["COMPLETE"]
    assert len(trial.trials[0].user_attrs["curves"]["val_accuracy"]) == 2


def test_run_on_intel_and_on_an_npz_path(own_cache, tmp_path, write_study, db_url):
    X, y = images_and_labels(60, (48 * 48 * 3,), 1)
    (own_cache / "intel").mkdir(parents=True)
    np.savez(
        own_cache / "intel" / "intel_landscapes.npz",
        train_images=X[:40],
        train_labels=y[:40] % 6,
        val_images=X[40:50],
        val_labels=y[40:50] % 6,
        test_images=X[50:],
        test_labels=y[50:] % 6,
    )
    _run_ok(write_study, db_url, "intel")
    np.savez(tmp_path / "mine.npz", X_train=X[:50], y_train=y[:50])
    other = f"sqlite:///{tmp_path / 'other.db'}"
    _run_ok(write_study, other, str(tmp_path / "mine.npz"))


def test_run_on_the_real_fashion_mnist(monkeypatch, write_study, db_url):
    require_debian_fashion()
    monkeypatch.setitem(
        SOURCES, "fashion-mnist", replace(SOURCES["fashion-mnist"], mirrors=(DEAD,))
    )  # offline
    study = _run_ok(write_study, db_url, "fashion-mnist")
    assert study.best_value > 0.7  # 3 epochs of softmax regression on the real data


@pytest.mark.parametrize("problem", ["missing", "not-npz", "offline"])
def test_bad_data_ends_in_exit_2_and_creates_no_study(
    problem, monkeypatch, tmp_path, write_study, capsys
):
    if problem == "offline":
        monkeypatch.setitem(SOURCES, "mnist", replace(SOURCES["mnist"], mirrors=(DEAD,)))
        dataset = "mnist"
    else:
        dataset = str(tmp_path / "data.npz")
        if problem == "not-npz":
            (tmp_path / "data.npz").write_text("not an archive")
    db = tmp_path / "h.db"
    path = write_study(_study(dataset))
    assert main(["run", str(path), "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"{path}: [data].dataset: ")
    assert not db.exists()
