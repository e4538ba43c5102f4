"""Warm start: another study's finished trials, or an export's configurations, added to a new
study before it starts; marked, never counted in the budget, the counts or the ranking."""

from __future__ import annotations

import json

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.records import WARM_ATTR
from tests.conftest import TINY

NARROW = 'learning_rate = { type = "float", low = 1e-3, high = 3e-2, log = true }'
WIDE = 'learning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }'


def _warm_file(write_study, source: str = "tiny", budget: int = 3, **flags: str):
    text = TINY.replace('name = "tiny"', f'name = "warm"\nwarm_start = "{source}"')
    text = text.replace("n_trials = 6", f"n_trials = {budget}").replace(WIDE, NARROW)
    return write_study(text, name="warm.toml")


def _source(write_study, db_url, n: int = 8) -> list[optuna.trial.FrozenTrial]:
    text = TINY.replace("n_trials = 6", f"n_trials = {n}")
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    return optuna.load_study(study_name="tiny", storage=db_url).trials


@pytest.mark.slow
def test_a_study_starts_from_the_fitting_trials_of_another(write_study, db_url, capsys):
    source = _source(write_study, db_url)
    complete = [t for t in source if t.state.name == "COMPLETE"]
    fits = [t for t in complete if t.params["learning_rate"] <= 3e-2]
    outside = len(complete) - len(fits)
    assert fits and outside, "the source must have trials on both sides of the new range"
    capsys.readouterr()

    assert main(["run", str(_warm_file(write_study)), "--storage", db_url, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (
        f"warm start from study 'tiny': {len(fits)} trials added, {outside} skipped as outside "
        "this search space (trial " in out
    )
    assert "learning_rate: got " in out and "allowed: a number >= 0.001 and <= 0.03" in out
    study = optuna.load_study(study_name="warm", storage=db_url)
    warm = [t for t in study.trials if WARM_ATTR in t.user_attrs]
    own = [t for t in study.trials if WARM_ATTR not in t.user_attrs]
    # Exactly the fitting trials, with their parameters and value, complete (what the sampler
    # reads), distributions of the new space; no per-epoch values, which the pruner would read.
    by_params = {json.dumps(t.params, sort_keys=True): t for t in fits}
    assert len(warm) == len(fits)
    for t in warm:
        original = by_params[json.dumps(t.params, sort_keys=True)]
        assert t.state.name == "COMPLETE" and t.value == original.value
        assert original.intermediate_values and not t.intermediate_values
        assert t.distributions["learning_rate"].high == 3e-2
        assert t.user_attrs[WARM_ATTR] == f"study 'tiny', trial {original.number}"
    # Never counted in the budget: the new study trained its own 3.
    assert len(own) == 3 and all(t.state.name == "COMPLETE" for t in own)
    assert all(t.params["learning_rate"] <= 3e-2 for t in own)
    assert "study 'warm': 3 of 3 trials finished (3 complete, 0 pruned, 0 failed)" in out

    # show and studies count and rank only the study's own trials, and say where it started.
    assert main(["show", "warm", "--storage", db_url, "--format", "json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["states"]["COMPLETE"] == 3 and detail["n_complete"] == 3
    assert {row["trial_number"] for row in detail["top"]} == {t.number for t in own}
    assert detail["warm"] == {"source": "study 'tiny'", "added": len(fits), "skipped": outside}
    assert main(["studies", "--storage", db_url, "--format", "json"]) == 0
    rows = {r["study"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["warm"]["complete"] == 3
    assert rows["warm"]["best"] == max(t.value for t in own)

    # Resuming runs the new budget; the warm start is not repeated.
    assert main(["run", str(_warm_file(write_study, budget=5)), "--storage", db_url]) == 0
    trials = optuna.load_study(study_name="warm", storage=db_url).trials
    assert len(trials) == len(fits) + 5
    assert "warm start" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_study_starts_from_an_export(write_study, db_url, tmp_path, capsys):
    import hpsearch

    _source(write_study, db_url)
    export = tmp_path / "best.json"
    assert main(["export", "tiny", "--storage", db_url, "--top", "3", "-o", str(export)]) == 0
    configs = json.loads(export.read_text())["configs"]
    doc = {
        "study": {"name": "from-export", "n_trials": 2, "seed": 1},
        "data": {"dataset": "digits", "val_fraction": 0.2},
        "model": {"kind": "numpy.softmax", "fixed": {"epochs": 3}},
        "params": {
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            "batch_size": {"type": "categorical", "choices": [32, 64]},
            "reg": {"type": "categorical", "choices": ["none", "l1", "l2"]},
            "reg_strength": {
                "type": "float",
                "low": 1e-5,
                "high": 1e-2,
                "log": True,
                "when": {"reg": ["l1", "l2"]},
            },
        },
    }
    study = hpsearch.run(doc, storage=db_url, progress=False, warm_start=export)
    warm = [t for t in study.trials if WARM_ATTR in t.user_attrs]
    # The export's params hold the fixed epochs too; only the searched names are kept.
    assert [t.params for t in warm] == [
        {k: v for k, v in c["params"].items() if k not in ("epochs", "schedule_every")}
        for c in configs
    ]
    assert [t.value for t in warm] == [c["val_accuracy"] for c in configs]
    assert len(study.trials) == len(configs) + 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "setup, args, words",
    [
        ("none", ["--warm-start", "nosuch"], "--warm-start: sqlite:///"),
        ("none", ["--warm-start", "missing.json"], "missing.json: no such file"),
        ("not-json", ["--warm-start", "bad.json"], "bad.json: not a JSON file"),
        ("not-json", ["--warm-start", "text.json"], "text.json: configs[0].val_accuracy: got 'x'"),
        ("exists", ["--warm-start", "tiny"], "study 'warm' exists already"),
        ("none", ["--warm-start", "warm"], "this study itself"),
    ],
    ids=["unknown-study", "missing-file", "not-json", "not-a-number", "existing-study", "itself"],
)
def test_a_bad_warm_start_is_one_line_and_creates_nothing(
    write_study, db_url, tmp_path, monkeypatch, capsys, setup, args, words
):
    monkeypatch.chdir(tmp_path)
    _source(write_study, db_url, n=3)
    path = write_study(TINY.replace('name = "tiny"', 'name = "warm"'), name="warm.toml")
    if setup == "exists":
        assert main(["run", str(path), "--storage", db_url, "--quiet", "--n-trials", "1"]) == 0
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "text.json").write_text('{"configs": [{"params": {}, "val_accuracy": "x"}]}')
    before = len(optuna.get_all_study_names(storage=db_url))
    capsys.readouterr()
    assert main(["run", str(path), "--storage", db_url, "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert len(optuna.get_all_study_names(storage=db_url)) == before


@pytest.mark.parametrize(
    "value, words",
    [
        ('"nothere.json"', "nothere.json: no such file"),
        ('"tiny"', "this study itself"),
        ("3", "got 3; allowed: another study's name or an export file"),
        ('"a b"', "[study].warm_start: "),
    ],
)
def test_a_bad_warm_start_key_is_refused_by_validate(write_study, value, words, capsys):
    path = write_study(TINY.replace("seed = 0", f"seed = 0\nwarm_start = {value}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: [study].warm_start: " in err, err
    assert words in err, err
