"""hpsearch's curve pruner (search/pruners.py), decided on hand-made learning curves."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from optuna.trial import create_trial

from hpsearch.pruners import CurvePruner

# Three complete trials: after epoch 1 they gained 0.10, 0.15 and 0.05; the best ends at 0.85.
DONE = [
    [0.50, 0.70, 0.78, 0.80],
    [0.55, 0.70, 0.82, 0.85],
    [0.40, 0.60, 0.64, 0.65],
]


def _study(pruner: CurvePruner, done=DONE) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for curve in done:
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=curve[-1],
                params={},
                distributions={},
                intermediate_values=dict(enumerate(curve)),
            )
        )
    return study


def _running(study: optuna.Study, curve: list[float]) -> optuna.Trial:
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
    return trial


@pytest.mark.parametrize(
    ("curve", "pruned"),
    [
        ([0.30, 0.45], True),  # 0.45 + at most 0.15 (the 90th percentile of gains: 0.14) < 0.85
        ([0.50, 0.72], False),  # 0.72 + 0.14 = 0.86 could still beat 0.85
        ([0.60], False),  # at epoch 0 gains are up to 0.35: 0.60 + 0.33 may beat it
        ([0.10], True),  # hopeless already
    ],
)
def test_a_trial_is_pruned_when_an_optimistic_gain_cannot_lift_it_above_the_best(curve, pruned):
    study = _study(CurvePruner(n_startup_trials=3))
    assert _running(study, curve).should_prune() is pruned


def test_nothing_is_pruned_before_the_startup_trials_or_the_warmup():
    assert not _running(_study(CurvePruner(n_startup_trials=4)), [0.10]).should_prune()
    warm = _study(CurvePruner(n_startup_trials=3, n_warmup_steps=2))
    assert not _running(warm, [0.10, 0.10]).should_prune()
    assert _running(warm, [0.10, 0.10, 0.10]).should_prune()


def test_an_epoch_no_complete_trial_reached_is_not_judged():
    study = _study(CurvePruner(n_startup_trials=3))
    assert not _running(study, [0.1, 0.1, 0.1, 0.1, 0.1]).should_prune()  # step 4: nobody's


def test_a_stricter_quantile_prunes_less():
    curve = [0.50, 0.68]  # 0.68 + 0.14 = 0.82 < 0.85
    assert _running(_study(CurvePruner(quantile=0.9)), curve).should_prune()
    assert not _running(_study(CurvePruner(quantile=1.0)), [0.50, 0.71]).should_prune()
    assert _running(_study(CurvePruner(quantile=0.0)), [0.50, 0.71]).should_prune()


@pytest.mark.parametrize(
    "kwargs", [{"n_startup_trials": 0}, {"n_warmup_steps": -1}, {"quantile": 1.5}]
)
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        CurvePruner(**kwargs)


@pytest.mark.slow
def test_a_study_file_names_it_and_its_trials_are_pruned_by_it(write_study, db_url):
    from hpsearch.cli import main
    from tests.conftest import TINY

    text = (
        TINY.replace('pruner = "none"', 'pruner = { type = "curve", n_startup_trials = 2 }')
        .replace("n_trials = 6", "n_trials = 12")
        .replace("epochs = 3", "epochs = 6")
        .replace("low = 1e-3, high = 1e-1", "low = 1e-6, high = 1e-1")
    )
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=db_url)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) >= 1, states
    # Each pruned trial was, when pruned, below the best by more than the optimistic gain.
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = max(t.value for t in complete)
    for t in study.trials:
        if t.state == TrialState.PRUNED:
            assert t.intermediate_values[max(t.intermediate_values)] < best
