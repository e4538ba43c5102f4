"""The Python API: each command as a function that returns values, prints nothing and raises
UsageError with the CLI's own line on bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import hpsearch
from hpsearch.exports import SCHEMA_PATH
from tests.search.faults import HPSEARCH

SCHEMA = json.loads(SCHEMA_PATH.read_text())
ROOT = Path(__file__).resolve().parents[2]


class Centroid:
    """A classifier defined in this test module, handed to hpsearch.run as an object."""

    def __init__(self, shrink: float = 0.0, seed: int = 0) -> None:
        self.shrink = shrink

    def partial_fit(self, X, y, classes=None):
        self.classes_ = np.asarray(classes)
        self.means_ = np.stack([X[y == c].mean(axis=0) * (1 - self.shrink) for c in classes])
        return self

    def predict(self, X):
        distances = ((X[:, None, :] - self.means_[None]) ** 2).sum(axis=2)
        return self.classes_[distances.argmin(axis=1)]


def _doc(kind) -> dict:
    return {
        "study": {"name": "api", "n_trials": 3, "seed": 0, "pruner": "none"},
        "data": {"dataset": "digits"},
        "model": {"kind": kind, "fixed": {"epochs": 2}},
        "params": {"shrink": {"type": "float", "low": 0.0, "high": 0.5}},
    }


@pytest.fixture
def ran(tmp_path, write_study, capsys):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = hpsearch.run(write_study(), storage=url, progress=False)
    assert capsys.readouterr() == ("", "")  # nothing printed
    return study, url


@pytest.mark.slow
def test_run_load_and_export_return_values(ran, capsys):
    study, url = ran
    assert study.study_name == "tiny" and len(study.trials) == 6
    loaded = hpsearch.load("tiny", storage=url)
    assert [t.value for t in loaded.trials] == [t.value for t in study.trials]
    doc = hpsearch.export(loaded, top=2)
    jsonschema.validate(doc, SCHEMA)
    ranked = sorted(
        (t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: (-t.value, t.number)
    )
    assert [c["trial_number"] for c in doc["configs"]] == [t.number for t in ranked[:2]]
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_retrain_and_confirm_return_results(ran, tmp_path, capsys):
    study, _ = ran
    result = hpsearch.retrain(hpsearch.export(study), out=tmp_path / "r")
    assert result.reproduced and result.val_accuracy == study.best_value
    assert 0.5 < result.test_accuracy <= 1.0 and result.weights.exists()
    confirmed = hpsearch.confirm(study, top=2, repeats=2)
    assert [len(r.val_accuracy) for r in confirmed] == [2, 2]
    assert confirmed[0].mean >= confirmed[1].mean
    stored = hpsearch.load("tiny", storage=study._storage.backend.url).user_attrs
    assert stored["hpsearch_confirm"]["results"] == [r.to_dict() for r in confirmed]
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_figures_and_report(ran, tmp_path):
    study, _ = ran
    figures = hpsearch.figures(study)
    assert {"history", "curves", "learning-rate"} <= set(figures)
    best = study.best_trial
    curves = {trace.name: list(trace.y) for trace in figures["curves"].data}
    assert curves["val accuracy"] == best.user_attrs["curves"]["val_accuracy"]
    path = hpsearch.report(study, tmp_path / "r.html")
    assert "plotly" in path.read_text()[:2_000_000].lower()


@pytest.mark.slow
def test_bad_input_raises_the_clis_line(ran, tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(hpsearch.UsageError) as raised:
        hpsearch.run(missing, storage=f"sqlite:///{tmp_path / 'h.db'}")
    done = subprocess.run([HPSEARCH, "run", str(missing)], capture_output=True, text=True)
    assert str(raised.value) == done.stderr.strip()
    with pytest.raises(hpsearch.UsageError, match="no study named 'nope'; studies there: tiny"):
        hpsearch.load("nope", storage=ran[1])


@pytest.mark.slow
def test_a_class_object_as_kind(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = hpsearch.run(_doc(Centroid), storage=url, progress=False)
    assert len(study.trials) == 3 and study.best_value > 0.8
    stored = study.user_attrs["hpsearch_spec"]["model"]["kind"]
    assert stored == "tests.search.test_api:Centroid"


@pytest.mark.slow
def test_workers_need_a_class_other_processes_can_import(tmp_path):
    class Local(Centroid):
        pass

    with pytest.raises(hpsearch.UsageError, match="other processes cannot import"):
        hpsearch.run(_doc(Local), storage=f"sqlite:///{tmp_path / 'h.db'}", workers=2)
    assert not (tmp_path / "h.db").exists()
    study = hpsearch.run(_doc(Local), storage=f"sqlite:///{tmp_path / 'h.db'}", progress=False)
    assert len(study.trials) == 3  # in this process it trains


def test_importing_search_loads_no_heavy_module():
    heavy = "('optuna', 'numpy', 'plotly', 'torch')"
    code = f"import sys, search; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run(
        [str(Path(HPSEARCH).parent / "python"), "-c", code], capture_output=True, text=True
    )
    assert done.stdout.strip() == "[]", done.stderr
