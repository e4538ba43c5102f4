"""[[enqueue]]: configurations tried first, exactly as the study file gives them."""

from __future__ import annotations

import optuna
import pytest

from hpsearch.cli import main
from tests.conftest import TINY

ENQUEUED = (
    TINY
    + """
[[enqueue]]
learning_rate = 0.01
batch_size = 32
reg = "none"

[[enqueue]]
learning_rate = 0.05
batch_size = 64
reg = "l2"
reg_strength = 0.001
"""
)


@pytest.mark.slow
def test_enqueued_configurations_run_first_with_exactly_their_values(write_study, db_url, capsys):
    assert main(["run", str(write_study(ENQUEUED)), "--storage", db_url, "--quiet"]) == 0
    assert "Warning" not in capsys.readouterr().err
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    assert len(trials) == 6  # the budget counts them like any trial
    assert trials[0].params == {"learning_rate": 0.01, "batch_size": 32, "reg": "none"}
    assert trials[1].params == {
        "learning_rate": 0.05,
        "batch_size": 64,
        "reg": "l2",
        "reg_strength": 0.001,
    }
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.params["learning_rate"] for t in trials[2:]} - {0.01, 0.05}) == 4  # sampled


@pytest.mark.parametrize(
    "entry, key, words",
    [
        ("learning_rate = 5.0", "[[enqueue]][0].learning_rate", "got 5.0; allowed: a number"),
        ("batch_size = 48", "[[enqueue]][0].batch_size", "allowed: one of 32, 64"),
        ("momentum = 0.9", "[[enqueue]][0].momentum", "unknown key 'momentum'"),
        (
            'reg = "none"\nreg_strength = 0.01',
            "[[enqueue]][0].reg_strength",
            "is only active when reg in ['l1', 'l2']",
        ),
    ],
    ids=["out-of-range", "not-a-choice", "not-searched", "inactive"],
)
def test_a_bad_enqueued_value_is_refused_with_its_key(write_study, entry, key, words, capsys):
    path = write_study(TINY + f"\n[[enqueue]]\n{entry}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: {key}: " in err and words in err, err
