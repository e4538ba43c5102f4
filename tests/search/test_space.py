from __future__ import annotations

import optuna
import pytest

from hpsearch.algorithms import grid_values
from hpsearch.space import suggest
from hpsearch.spec import ParamSpec
from hpsearch.study_file import load_study_file


@pytest.fixture
def params(write_study):
    return load_study_file(write_study()).params


def test_inactive_conditional_parameter_is_absent(params):
    trial = optuna.trial.FixedTrial({"learning_rate": 0.01, "batch_size": 32, "reg": "none"})
    chosen = suggest(trial, params)
    assert chosen == {"learning_rate": 0.01, "batch_size": 32, "reg": "none"}
    assert "reg_strength" not in trial.params


@pytest.mark.parametrize("reg", ["l1", "l2"])
def test_active_conditional_parameter_is_suggested(params, reg):
    values = {"learning_rate": 0.01, "batch_size": 64, "reg": reg, "reg_strength": 1e-3}
    trial = optuna.trial.FixedTrial(values)
    assert suggest(trial, params) == values
    assert trial.params["reg_strength"] == 1e-3


def test_values_outside_the_space_are_rejected_by_the_distribution(params):
    trial = optuna.trial.FixedTrial({"learning_rate": 0.5, "batch_size": 32, "reg": "none"})
    with pytest.warns(UserWarning, match="learning_rate"):
        suggest(trial, params)  # FixedTrial warns when a value is outside [low, high]


def test_a_real_study_samples_inside_bounds_and_respects_when(params):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        chosen = suggest(trial, params)
        assert 1e-3 <= chosen["learning_rate"] <= 1e-1
        assert chosen["batch_size"] in (32, 64)
        assert ("reg_strength" in chosen) == (chosen["reg"] != "none")
        study.tell(trial, 0.0)


def test_int_and_stepped_float_grids():
    assert grid_values(ParamSpec("epochs", "int", low=2, high=8, step=3)) == [2, 5, 8]
    assert grid_values(ParamSpec("dropout", "float", low=0.0, high=0.5, step=0.25)) == [
        0.0,
        0.25,
        0.5,
    ]
    assert grid_values(ParamSpec("learning_rate", "float", low=0.1, high=1.0, log=True)) is None
    assert grid_values(ParamSpec("reg", "categorical", choices=("l1", "l2"))) == ["l1", "l2"]
