"""Accuracy against cost: a multi-objective study end to end (front, recommended configuration,
export, retrain), pruning by hpsearch on the stored accuracy, the metric names the tools show,
and bad `[study].objectives`."""

from __future__ import annotations

import json
import math
import urllib.request

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.models.data import load_dataset
from tests.conftest import TINY
from tests.search.dashboard import dashboard

OBJECTIVES = '["val_accuracy", "train_seconds", "n_weights"]'
MULTI = TINY.replace('name = "tiny"', f'name = "multi"\nobjectives = {OBJECTIVES}').replace(
    "n_trials = 6", "n_trials = 8"
)


def _dominates(a, b) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2] and tuple(a) != tuple(b)


@pytest.mark.slow
def test_a_multi_objective_study_end_to_end(write_study, db_url, tmp_path, capsys, monkeypatch):
    assert main(["run", str(write_study(MULTI)), "--storage", db_url, "--quiet"]) == 0
    study = optuna.load_study(study_name="multi", storage=db_url)
    assert study.metric_names == ["val_accuracy", "train_seconds", "n_weights"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE", "MINIMIZE"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 8
    data = load_dataset("digits", val_fraction=0.2, test_fraction=0.2, seed=0)
    n_weights = (data.X_train.shape[1] + 1) * len(data.classes)  # softmax: W and b
    for t in complete:
        accuracy, seconds, weights = t.values
        assert accuracy == t.user_attrs["curves"]["val_accuracy"][-1]
        assert weights == n_weights
        assert 0 < seconds and math.isclose(seconds, t.user_attrs["seconds"], rel_tol=0.5)

    # The front and the one-standard-error rule, computed here from the trials.
    values = {t.number: t.values for t in complete}
    front = {n for n, v in values.items() if not any(_dominates(o, v) for o in values.values())}
    best = max(v[0] for v in values.values())
    error = math.sqrt(best * (1 - best) / len(data.y_val))
    close = [n for n in front if values[n][0] >= best - error]
    recommended = min(close, key=lambda n: (values[n][1], values[n][2], -values[n][0], n))

    capsys.readouterr()
    assert main(["show", "multi", "--storage", db_url, "--format", "json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    rows = detail["front"]
    assert {r["trial_number"] for r in rows} == front
    assert rows[0]["trial_number"] == recommended and rows[0]["recommended"]
    assert not any(r["recommended"] for r in rows[1:])
    assert f"±{error:.4f}" in detail["recommended_because"]
    assert main(["show", "multi", "--storage", db_url]) == 0
    text = capsys.readouterr().out
    assert (
        f"Pareto front, validation accuracy against train_seconds, n_weights: {len(front)}" in text
    )
    assert f"\n{recommended} *" in text

    monkeypatch.chdir(tmp_path)
    assert main(["export", "multi", "--storage", db_url, "-o", "front.json"]) == 0
    doc = json.loads((tmp_path / "front.json").read_text())
    assert doc["ranked_by"] == "pareto-1se"
    assert [c["trial_number"] for c in doc["configs"]] == [r["trial_number"] for r in rows]
    first = doc["configs"][0]
    assert first["recommended"] and first["objectives"]["n_weights"] == n_weights
    assert first["objectives"]["val_accuracy"] == first["val_accuracy"]
    capsys.readouterr()
    assert main(["retrain", "front.json"]) == 0
    assert "reproduced" in capsys.readouterr().out

    # The report draws the front and names the recommended trial.
    assert main(["report", "multi", "--storage", db_url, "-o", "report.html"]) == 0
    page = (tmp_path / "report.html").read_text()
    assert 'id="multi-pareto"' in page and f"recommended: trial {recommended}" in page
    assert 'class="note"' not in page  # every figure drawn


PRUNED = TINY.replace('name = "tiny"', 'name = "NAME"\nOBJECTIVES').replace(
    'pruner = "none"', 'pruner = { type = "median", n_startup_trials = 2, n_warmup_steps = 0 }'
) + "".join(
    f'\n[[enqueue]]\nlearning_rate = {lr}\nbatch_size = 32\nreg = "none"\n'
    for lr in (0.1, 0.09, 0.001)
)


@pytest.mark.slow
@pytest.mark.parametrize("objectives", ['["val_accuracy"]', OBJECTIVES])
def test_a_hopeless_trial_is_pruned_by_the_same_rule(write_study, db_url, objectives):
    """Two good trials, then a hopeless one (learning rate 100 times smaller): the median
    rule prunes it after its first epoch, whether Optuna asks the pruner (one objective) or
    hpsearch does (accuracy against cost)."""
    name = "single" if objectives == '["val_accuracy"]' else "multi"
    text = PRUNED.replace("NAME", name).replace("OBJECTIVES", f"objectives = {objectives}")
    text = text.replace("fixed = { epochs = 3 }", "fixed = { epochs = 6 }")
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    trials = optuna.load_study(study_name=name, storage=db_url).trials
    assert [t.state.name for t in trials[:3]] == ["COMPLETE", "COMPLETE", "PRUNED"]
    hopeless = trials[2]
    assert hopeless.params["learning_rate"] == 0.001
    assert len(hopeless.user_attrs["curves"]["val_accuracy"]) == 1  # pruned after epoch 0
    if name == "multi":  # Optuna's samplers go on reading the study without error
        assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials) and len(trials) == 6


@pytest.mark.slow
def test_optuna_dashboard_shows_the_metric_names(write_study, db_url):
    assert main(["run", str(write_study(MULTI)), "--storage", db_url, "--quiet"]) == 0
    assert main(["run", str(write_study()), "--storage", db_url, "--quiet"]) == 0
    with dashboard(db_url) as base:
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            ids = {s["study_name"]: s["study_id"] for s in json.load(response)["study_summaries"]}
        names = {}
        for name, study_id in ids.items():
            with urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=30) as response:
                names[name] = json.load(response).get("objective_names")
    assert names == {
        "multi": ["val_accuracy", "train_seconds", "n_weights"],
        "tiny": ["val_accuracy"],
    }


@pytest.mark.parametrize(
    "value, words",
    [
        ('["train_seconds"]', 'allowed: ["val_accuracy"] followed by any of train_seconds'),
        ('["val_accuracy", "train_second"]', "(did you mean 'train_seconds'?)"),
        ('["val_accuracy", "n_weights", "n_weights"]', "each once"),
        ('"val_accuracy"', "got 'val_accuracy'"),
        ("[]", "got []"),
    ],
)
def test_bad_objectives_are_refused_with_the_key(write_study, value, words, capsys):
    path = write_study(TINY.replace("seed = 0", f"seed = 0\nobjectives = {value}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: [study].objectives: " in err, err
    assert words in err, err


def test_a_pruner_that_cannot_prune_a_multi_objective_study_is_refused(write_study, capsys):
    text = MULTI.replace('pruner = "none"', 'pruner = "hyperband"')
    path = write_study(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{path}: [study].pruner: hyperband cannot prune a multi-objective study; allowed "
        "there: median, percentile, successive_halving, none"
    )
