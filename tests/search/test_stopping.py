"""Stopping a search that has converged: the rule on known trials, and real runs with one and
two workers."""

from __future__ import annotations

import math
import subprocess

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from optuna.trial import create_trial

from hpsearch.cli import main
from hpsearch.records import CONFIRM_ATTR
from hpsearch.records import finished_count
from hpsearch.spec import StopSpec
from hpsearch.stopping import STOP_ATTR
from hpsearch.stopping import binomial_noise
from hpsearch.stopping import decide
from tests.conftest import TINY
from tests.search.faults import HPSEARCH


def _trials(values):
    """Finished trials numbered in order; None is a pruned trial."""
    out = []
    for number, value in enumerate(values):
        state = TrialState.PRUNED if value is None else TrialState.COMPLETE
        trial = create_trial(
            state=state,
            value=value,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            intermediate_values={0: value or 0.1},
        )
        trial.number = number
        out.append(trial)
    return out


def test_a_fixed_min_delta_counts_trials_without_a_real_improvement():
    rule = StopSpec(patience=3, min_delta=0.05)
    # 0.6 is the best; 0.62 and 0.64 improve it by less than 0.05; the pruned one never does.
    assert decide(_trials([0.5, 0.6, 0.62, None]), rule, 100, {}) is None
    decision = decide(_trials([0.5, 0.6, 0.62, None, 0.64, 0.9]), rule, 100, {})
    assert (decision.after, decision.best, decision.delta) == (5, 0.6, 0.05)
    assert decision.reason() == "no improvement by more than 0.05 in 3 trials"


def test_noise_is_the_binomial_standard_error_of_the_best_accuracy():
    n_val = 360  # the digits study's validation split
    assert binomial_noise(0.9, n_val) == pytest.approx(math.sqrt(0.9 * 0.1 / 360))
    se = binomial_noise(0.9, n_val)  # 0.0158
    rule = StopSpec(patience=2, min_delta="noise")
    assert decide(_trials([0.9, 0.9 + se / 2, 0.9 + se * 2]), rule, n_val, {}) is None
    decision = decide(_trials([0.9, 0.9 + se / 2, 0.9 + se / 3]), rule, n_val, {})
    assert decision.after == 3 and decision.delta == pytest.approx(se)
    assert (
        decision.reason() == f"no improvement beyond the validation noise (±{se:.4f}) in 2 trials"
    )


def test_noise_comes_from_a_stored_confirm_when_there_is_one():
    confirm = {"results": [{"val_accuracy": [0.9, 0.92], "std": 0.03}]}
    rule = StopSpec(patience=1, min_delta="noise")
    # +0.02 beats the binomial noise of 1,000 images (0.0095) but not the confirm's 0.03.
    assert decide(_trials([0.9, 0.92]), rule, 1000, {}) is None
    decision = decide(_trials([0.9, 0.92]), rule, 1000, {CONFIRM_ATTR: confirm})
    assert decision.delta == 0.03 and decision.after == 2


STOPPING = TINY.replace("n_trials = 6", "n_trials = 40\nstop = { patience = 3, min_delta = 0.5 }")


@pytest.mark.slow
def test_a_converged_search_stops_and_says_why(write_study, db_url, capsys):
    # No trial can beat the first by 0.5: the search stops after 1 + patience trials.
    assert main(["run", str(write_study(STOPPING)), "--storage", db_url, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "stopped after 4 of 40 trials: no improvement by more than 0.5 in 3 trials" in out
    study = optuna.load_study(study_name="tiny", storage=db_url)
    assert len(study.trials) == 4 and study.user_attrs[STOP_ATTR]["after"] == 4
    assert main(["show", "tiny", "--storage", db_url]) == 0
    assert "stopped after 4 trials" in capsys.readouterr().out
    # The same rule again: nothing to do. A longer patience goes on.
    assert main(["run", str(write_study(STOPPING)), "--storage", db_url, "--quiet"]) == 0
    assert len(optuna.load_study(study_name="tiny", storage=db_url).trials) == 4
    longer = STOPPING.replace("patience = 3", "patience = 5")
    assert main(["run", str(write_study(longer)), "--storage", db_url, "--quiet"]) == 0
    assert len(optuna.load_study(study_name="tiny", storage=db_url).trials) == 6


@pytest.mark.slow
def test_every_worker_stops(write_study, db_url):
    done = subprocess.run(
        [HPSEARCH, "run", str(write_study(STOPPING)), "--storage", db_url, "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr  # both workers ended on their own
    trials = optuna.load_study(study_name="tiny", storage=db_url).trials
    # At least the 4 the rule needs; at most one more per worker, in flight when it decided.
    assert 4 <= finished_count(trials) <= 6
    assert not any(t.state.name in ("RUNNING", "WAITING") for t in trials)
    assert "stopped after" in done.stdout


@pytest.mark.parametrize(
    "stop, key",
    [
        ("{ patience = 0 }", "[study].stop.patience"),
        ('{ patience = 3, min_delta = "big" }', "[study].stop.min_delta"),
        ("{ patience = 3, min_delta = 2.0 }", "[study].stop.min_delta"),
        ("{ patience = 3, after = 1 }", "[study].stop.after"),
    ],
)
def test_a_bad_stopping_rule_is_one_line(write_study, stop, key, capsys):
    path = write_study(TINY.replace("n_trials = 6", f"n_trials = 6\nstop = {stop}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: {key}" in err
