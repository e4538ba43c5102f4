from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.objective import trial_seed
from hpsearch.records import SCHEDULE_DEFAULT
from hpsearch.records import SPEC_ATTR
from hpsearch.records import finished_count
from hpsearch.records import pin_schedule_every
from hpsearch.study_file import load_study_file
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


def _load(db_url: str, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=db_url)


@pytest.mark.slow
def test_a_run_stores_every_trial_with_its_records(write_study, db_url, capsys):
    path = write_study()
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 0
    study = _load(db_url)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    # The study file, with the schedule stepping of this version pinned where it is silent.
    pinned = pin_schedule_every(load_study_file(path), SCHEDULE_DEFAULT)
    assert study.user_attrs[SPEC_ATTR] == pinned.to_dict()
    assert pinned.model.fixed["schedule_every"] == "batch"
    for t in trials:
        curves = t.user_attrs["curves"]
        assert set(curves) == {
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "weight_norm",
        }
        assert all(norm > 0 for norm in curves["weight_norm"])
        assert all(len(v) == 3 for v in curves.values())  # one entry per epoch
        assert t.value == curves["val_accuracy"][-1]  # the final weights' accuracy
        assert t.intermediate_values == dict(enumerate(curves["val_accuracy"]))
        assert t.user_attrs["seed"] == trial_seed(0, t.number)
        assert t.user_attrs["seconds"] > 0
        assert ("reg_strength" in t.params) == (t.params["reg"] != "none")
    assert study.best_value == max(t.value for t in trials)
    # Each class's weights as an image, stored only by trials that beat the best so far.
    with_images = [t for t in trials if "class_weights" in t.user_attrs]
    assert study.best_trial in with_images
    assert all(
        t.value > max([u.value for u in trials[: t.number]], default=-1) for t in with_images
    )
    images = study.best_trial.user_attrs["class_weights"]
    assert images["shape"] == [10, 1, 8, 8] and len(images["classes"]) == 10
    out = capsys.readouterr().out
    assert (
        f"best validation accuracy {study.best_value:.4f} (trial {study.best_trial.number})" in out
    )


def test_the_quickstart_runs_into_hpsearch_db_in_the_current_folder(tmp_path, monkeypatch):
    """The README's first command; its whole 30 trials and their accuracy are checked by the
    tutorial notebook's test, which runs the same study through the Python API."""
    monkeypatch.chdir(tmp_path)  # the default storage is ./hpsearch.db
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)
    quickstart = str(ROOT / "studies" / "quickstart.toml")
    assert main(["run", quickstart, "--quiet", "--n-trials", "2"]) == 0
    assert (tmp_path / "hpsearch.db").exists()
    study = _load("sqlite:///hpsearch.db", "quickstart")
    assert finished_count(study.get_trials()) == 2


def test_the_environment_variable_names_the_storage(write_study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{tmp_path / 'env.db'}")
    assert main(["run", str(write_study()), "--quiet", "--n-trials", "1"]) == 0
    assert (tmp_path / "env.db").exists() and not (tmp_path / "hpsearch.db").exists()


@pytest.mark.slow
def test_n_trials_is_the_total_and_a_finished_study_does_nothing(write_study, db_url, capsys):
    path = write_study()
    assert main(["run", str(path), "--storage", db_url, "--quiet", "--n-trials", "2"]) == 0
    assert len(_load(db_url).trials) == 2
    assert main(["run", str(path), "--storage", db_url, "--quiet", "--n-trials", "5"]) == 0
    assert len(_load(db_url).trials) == 5  # 3 more, not 5 more
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 0
    assert len(_load(db_url).trials) == 6
    capsys.readouterr()
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 0
    assert len(_load(db_url).trials) == 6
    assert "nothing to run" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, key",
    [
        (lambda s: s.replace("high = 1e-1", "high = 0.5"), "[params]"),
        (lambda s: s.replace("choices = [32, 64]", "choices = [32, 128]"), "[params]"),
        (lambda s: s.replace("epochs = 3", "epochs = 4"), "[model]"),
        (lambda s: s.replace("val_fraction = 0.2", "val_fraction = 0.3"), "[data]"),
    ],
    ids=["range", "choices", "fixed", "data"],
)
def test_a_changed_study_is_refused(change, key, write_study, db_url, tmp_path, capsys):
    assert (
        main(["run", str(write_study()), "--storage", db_url, "--quiet", "--n-trials", "2"]) == 0
    )
    db = tmp_path / "hpsearch.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    changed = write_study(change(TINY), name="changed.toml")
    assert main(["run", str(changed), "--storage", db_url, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "optuna delete-study" in err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert len(_load(db_url).trials) == 2


@pytest.mark.slow
def test_a_different_seed_is_refused_but_budget_and_sampler_may_change(
    write_study, db_url, capsys
):
    path = write_study()
    assert main(["run", str(path), "--storage", db_url, "--quiet", "--n-trials", "1"]) == 0
    assert main(["run", str(path), "--storage", db_url, "--quiet", "--seed", "7"]) == 2
    assert "[study].seed" in capsys.readouterr().err
    other = write_study(
        TINY.replace('type = "tpe", n_startup_trials = 3', 'type = "random"').replace(
            "n_trials = 6", "n_trials = 2"
        ),
        name="random.toml",
    )
    assert main(["run", str(other), "--storage", db_url, "--quiet"]) == 0
    assert len(_load(db_url).trials) == 2


@pytest.mark.slow
def test_a_diverging_trial_fails_with_its_reason_and_the_study_goes_on(write_study, db_url):
    text = TINY.replace("low = 1e-3, high = 1e-1", "low = 1e37, high = 1e38").replace(
        "[data]", '[data]\npreprocess = "none"'
    )
    # No trial is complete: exit 3, so that a script stops here.
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 3
    trials = _load(db_url).trials
    assert len(trials) == 6  # diverged trials use up the budget instead of looping forever
    assert all(t.state.name == "FAIL" for t in trials)
    assert all(t.user_attrs["diverged"] for t in trials)
    assert all("epoch 0" in t.user_attrs["fail_reason"] for t in trials)


@pytest.mark.slow
def test_the_study_seed_reproduces_the_whole_study(write_study, tmp_path):
    path = write_study()
    results = []
    for name in ("a.db", "b.db"):
        url = f"sqlite:///{tmp_path / name}"
        assert main(["run", str(path), "--storage", url, "--quiet"]) == 0
        results.append([(t.params, t.value) for t in _load(url).trials])
    assert results[0] == results[1]


@pytest.mark.slow
def test_pruned_trials_stop_early_and_keep_their_curves(write_study, db_url):
    text = (
        TINY.replace(
            'pruner = "none"',
            'pruner = { type = "median", n_startup_trials = 2, n_warmup_steps = 0 }',
        )
        .replace("n_trials = 6", "n_trials = 12")
        .replace("epochs = 3", "epochs = 6")
        .replace("low = 1e-3, high = 1e-1", "low = 1e-6, high = 1e-1")
    )
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    pruned = [t for t in _load(db_url).trials if t.state.name == "PRUNED"]
    assert pruned, "a 1e-6 learning rate should be pruned by the median rule"
    for t in pruned:
        n = len(t.user_attrs["curves"]["val_accuracy"])
        assert n < 6 and max(t.intermediate_values) == n - 1


@pytest.mark.slow
def test_studies_and_show_report_what_is_stored(write_study, db_url, capsys):
    assert main(["run", str(write_study()), "--storage", db_url, "--quiet"]) == 0
    study = _load(db_url)
    capsys.readouterr()
    assert main(["studies", "--storage", db_url]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:7] == ["tiny", "numpy.softmax", "digits", "6", "0", "0", "0"]
    assert row[7] == f"{study.best_value:.4f}"
    assert main(["show", "tiny", "--storage", db_url, "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert (
        f"best trial {study.best_trial.number}: validation accuracy {study.best_value:.4f}" in out
    )
    assert "top 3 of 6 complete trials" in out
    assert main(["show", "nope", "--storage", db_url]) == 2
    assert "no study named 'nope'; studies there: tiny" in capsys.readouterr().err


@pytest.mark.slow
def test_a_surplus_start_is_not_reported_as_a_failure(write_study, db_url, capsys):
    """With --workers, a worker may start a trial when the budget has just filled: Optuna
    stores it as FAIL, marked surplus, and it never trains. The summaries say so apart from
    real failures (a run that went well must not read "1 failed")."""
    assert main(["run", str(write_study()), "--storage", db_url, "--quiet"]) == 0
    study = _load(db_url)
    late = study.ask()  # what worker.py's guard leaves behind
    late.set_user_attr("surplus", True)
    late.set_user_attr("fail_reason", "surplus: 6 trials ahead of it already fill the budget")
    study.tell(late, state=optuna.trial.TrialState.FAIL)
    capsys.readouterr()

    assert main(["run", str(write_study()), "--storage", db_url, "--quiet"]) == 0
    note = "; 1 surplus start, not trained: the budget was already full"
    assert f"(6 complete, 0 pruned, 0 failed{note})" in capsys.readouterr().out
    assert main(["show", "tiny", "--storage", db_url]) == 0
    assert f"0 failed, 0 running{note})" in capsys.readouterr().out
    assert main(["studies", "--storage", db_url]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[3:7] == ["6", "0", "0", "0"]  # complete, pruned, failed, running


def test_reading_commands_never_create_a_database(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    assert main(["studies", "--storage", url]) == 2
    assert main(["show", "x", "--storage", url]) == 2
    assert not (tmp_path / "absent.db").exists()
    assert "does not exist" in capsys.readouterr().err


def test_bad_storage_is_refused_and_left_byte_identical(write_study, tmp_path, capsys):
    text_file = tmp_path / "notes.db"
    text_file.write_text("my notes, not a database\n")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, 'ada')")
    path = write_study()
    for f, expected in ((text_file, "not an SQLite database"), (foreign, "another program")):
        before = f.read_bytes()
        for argv in (["run", str(path)], ["studies"]):
            assert main([*argv, "--storage", f"sqlite:///{f}"]) == 2
            err = capsys.readouterr().err
            assert expected in err and len(err.strip().splitlines()) == 1
        assert f.read_bytes() == before
    assert main(["studies", "--storage", "nosuchdb://x"]) == 2
    assert "unknown database kind" in capsys.readouterr().err
    assert main(["run", str(path), "--storage", "sqlite:///" + str(tmp_path / "no" / "x.db")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "x.toml", "--n-trials", "0"], "--n-trials"),
        (["run", "x.toml", "--timeout", "soon"], "--timeout"),
        (["run", "x.toml", "--seed", "-1"], "--seed"),
        (["show", "x", "--top", "0"], "--top"),
        (["dashboard", "--port", "70000"], "allowed: a whole number from 1 to 65535"),
        (["frobnicate"], "invalid choice"),
        ([], "choose a command"),
    ],
)
def test_bad_flags_end_in_one_line_and_exit_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
