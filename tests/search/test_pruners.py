"""hpsearch's pruners (search/pruners.py), decided on hand-made learning curves."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
import scipy.stats
from optuna.trial import TrialState
from optuna.trial import create_trial

from hpsearch.pruners import CurvePruner
from hpsearch.pruners import WilcoxonPruner
from hpsearch.pruners import signed_rank_p

# Three complete trials: after epoch 1 they gained 0.10, 0.15 and 0.05; the best ends at 0.85.
DONE = [
    [0.50, 0.70, 0.78, 0.80],
    [0.55, 0.70, 0.82, 0.85],
    [0.40, 0.60, 0.64, 0.65],
]


def _study(pruner, done=DONE, direction="maximize") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction=direction, pruner=pruner)
    for curve in done:
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=curve[-1] if curve else 0.99,  # [] : a warm start's copy, no curve
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


# -- WilcoxonPruner, the default ------------------------------------------------------------

BEST = [0.50, 0.60, 0.70, 0.75, 0.78, 0.80]  # the best complete trial's curve (ends at 0.85)


@pytest.mark.parametrize(
    ("curve", "pruned"),
    [
        ([0.40, 0.50], False),  # two epochs: below at both, but p = 0.25 for n = 2
        ([0.40, 0.50, 0.55, 0.60], True),  # below at all four epochs: p = 1/16 < 0.1
        ([0.40, 0.50, 0.75, 0.80], False),  # below, then above: no evidence it is worse
        ([0.55, 0.58, 0.68, 0.74], False),  # below at 3 of 4, but once above: p = 0.125
        ([0.55, 0.65, 0.60, 0.60], False),  # mean 0.60 >= the best's 0.69? no: p = 0.19
    ],
)
def test_wilcoxon_prunes_a_curve_significantly_below_the_best_ones(curve, pruned):
    study = _study(WilcoxonPruner(), [BEST + [0.85], [0.3] * 7])
    assert _running(study, curve).should_prune() is pruned


def test_wilcoxon_spares_a_curve_whose_mean_is_not_below_the_bests():
    # Below the best at each of its three epochs (p = 1/8 < 0.2), but the best dipped later,
    # and the trial's mean so far (0.85) is above the best's whole curve's (0.67): Optuna's
    # safety keeps it. The same test with a mean below the best's prunes.
    study = _study(WilcoxonPruner(p_threshold=0.2), [[0.9, 0.9, 0.9, 0.2, 0.2, 0.9]])
    assert not _running(study, [0.85, 0.85, 0.85]).should_prune()
    assert _running(study, [0.5, 0.5, 0.5]).should_prune()


def test_wilcoxon_waits_for_its_startup_epochs_and_a_complete_trial():
    below = [0.40, 0.50, 0.55, 0.60]
    assert not _running(_study(WilcoxonPruner(), []), below).should_prune()  # nothing to beat
    assert not _running(_study(WilcoxonPruner(n_startup_steps=5), [BEST]), below).should_prune()
    assert _running(_study(WilcoxonPruner(n_startup_steps=4), [BEST]), below).should_prune()


def test_wilcoxon_compares_with_the_best_trial_that_has_a_curve():
    """A warm start's copy (a complete trial without per-epoch values) may be the best: the
    trial is then judged against the best trial that has a curve, not left unjudged."""
    below = [0.40, 0.50, 0.55, 0.60]
    study = _study(WilcoxonPruner(), [[], BEST + [0.85]])  # the copy's value 0.99 is best
    assert study.best_trial.intermediate_values == {}
    assert _running(study, below).should_prune()
    # Optuna's own class cannot judge it (it warns, and prunes nothing).
    optunas = _study(optuna.pruners.WilcoxonPruner(), [[], BEST])
    with pytest.warns(UserWarning, match="no intermediate values"):
        assert not _running(optunas, below).should_prune()


def test_wilcoxon_decides_as_optunas_on_random_studies():
    """The same decision as optuna.pruners.WilcoxonPruner at every epoch of random curves,
    both directions, values rounded so that ties and zero differences are common."""
    rng = np.random.default_rng(5)
    decisions = []
    for case in range(60):
        direction = ("maximize", "minimize")[case % 2]
        epochs = int(rng.integers(3, 9)) if case % 3 else 15  # 15: SciPy's asymptotic test
        done = [list(np.round(rng.uniform(0.2, 0.9, epochs), 2)) for _ in range(3)]
        options = {"p_threshold": float(rng.choice([0.05, 0.1, 0.3])), "n_startup_steps": 2}
        ours = _study(WilcoxonPruner(**options), done, direction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            theirs = _study(optuna.pruners.WilcoxonPruner(**options), done, direction)
        curve = np.round(rng.uniform(0.2, 0.9, epochs), 2)
        a, b = ours.ask(), theirs.ask()
        for step, value in enumerate(curve):
            a.report(float(value), step)
            b.report(float(value), step)
            if step < 8 or step >= 13:  # SciPy takes up to 0.4 s a test between (2**9+ flips)
                decisions.append((a.should_prune(), b.should_prune()))
    assert all(mine == optunas for mine, optunas in decisions)
    assert 0.05 < np.mean([d for d, _ in decisions]) < 0.95  # both answers were tested


def test_the_signed_rank_p_value_is_scipys():
    rng = np.random.default_rng(3)
    for _ in range(80):
        d = np.round(rng.normal(0.0, 1.0, int(rng.choice([2, 5, 8, 14]))), 1)  # ties
        d[rng.random(len(d)) < 0.2] = 0.0  # zeros
        for alternative in ("less", "greater", "two-sided"):
            scipys = scipy.stats.wilcoxon(d, alternative=alternative, zero_method="zsplit")
            assert signed_rank_p(d, alternative) == float(scipys.pvalue), (d, alternative)


@pytest.mark.parametrize("kwargs", [{"n_startup_steps": -1}, {"p_threshold": 1.5}])
def test_wilcoxon_refuses_bad_options(kwargs):
    with pytest.raises(ValueError):
        WilcoxonPruner(**kwargs)
