"""Replayed learning curves (search/replay.py): the answers are the table's, the nearest
recorded configuration is the one a person would pick, and a strategy replays by its seed."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from hpsearch.replay import Budget
from hpsearch.replay import ReplayObjective
from hpsearch.replay import ReplayTable
from hpsearch.spec import ParamSpec

PARAMS = [
    ParamSpec("learning_rate", "float", 1e-4, 1e-1, log=True),
    ParamSpec("optimizer", "categorical", choices=("sgd", "adam")),
    ParamSpec("momentum", "float", 0.5, 0.99, when=(("optimizer", ("sgd",)),)),
]
EPOCHS = 6


def _table(n: int = 40, seeds: int = 2) -> ReplayTable:
    rng = np.random.default_rng(0)
    configs = []
    for _ in range(n):
        config = {
            "learning_rate": float(10 ** rng.uniform(-4, -1)),
            "optimizer": str(rng.choice(["sgd", "adam"])),
        }
        if config["optimizer"] == "sgd":
            config["momentum"] = float(rng.uniform(0.5, 0.99))
        configs.append(config)
    # Curves that rise to a level set by the learning rate, with seed noise.
    level = np.array([0.5 + 0.1 * np.log10(c["learning_rate"] * 1e4) for c in configs])
    epochs = np.arange(1, EPOCHS + 1)
    acc = level[:, None, None] * (1 - np.exp(-epochs / 2))[None, None, :]
    acc = acc + rng.normal(0, 0.01, (n, seeds, EPOCHS))
    acc[3, 1, 4:] = np.nan  # a run that diverged after 4 epochs
    loss = 1 - acc
    seconds = rng.uniform(0.1, 0.2, (n, seeds, EPOCHS))
    return ReplayTable(PARAMS, configs, acc, loss, seconds, {"n_val": 300})


def test_the_answer_to_a_recorded_configuration_is_its_recorded_curve():
    table = _table()
    for i in (0, 7, 21):
        for seed in (0, 1, 2):
            curve = table.answer(table.configs[i], seed)
            np.testing.assert_array_equal(curve.val_accuracy, table.val_accuracy[i, seed % 2])
            np.testing.assert_array_equal(curve.seconds, table.seconds[i, seed % 2])
    diverged = table.curve(3, 1)
    assert diverged.epochs == 4 and np.isfinite(diverged.val_accuracy).all()


def test_the_nearest_configuration_keeps_the_choices_then_the_closest_numbers():
    table = _table()
    target = table.configs[5]
    near = {**target, "learning_rate": target["learning_rate"] * 1.001}
    assert table.nearest(near) == 5
    # Another optimizer is never the answer while one with the same choices is recorded.
    other = "adam" if target["optimizer"] == "sgd" else "sgd"
    flipped = {k: v for k, v in target.items() if k != "momentum"} | {"optimizer": other}
    if other == "sgd":
        flipped["momentum"] = 0.9
    assert table.configs[table.nearest(flipped)]["optimizer"] == other
    # On the log scale: 1e-3 is as far from 1e-4 as from 1e-2.
    assert table._position({"learning_rate": 1e-3, "optimizer": "adam"})[0] == pytest.approx(1 / 3)


def test_a_table_survives_saving_and_loading(tmp_path):
    table = _table()
    table.save(tmp_path / "t.npz")
    again = ReplayTable.load(tmp_path / "t.npz", PARAMS)
    assert again.configs == table.configs and again.meta == table.meta
    np.testing.assert_allclose(again.val_accuracy, table.val_accuracy.astype(np.float32))
    assert again.nearest(table.configs[9]) == 9


def _replay(table: ReplayTable, seed: int, limit: int) -> Budget:
    budget = Budget(limit)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )

    def stop(study, trial) -> None:
        if budget.spent:
            study.stop()

    objective = ReplayObjective(table, budget, seed_offset=seed)
    study.optimize(objective, n_trials=10_000, callbacks=[stop], catch=(ArithmeticError,))
    return budget


def test_a_strategy_on_the_replay_is_reproducible_by_its_seed_and_keeps_the_budget():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = _table()
    limit = 20 * EPOCHS
    first, again, other = (
        _replay(table, 3, limit),
        _replay(table, 3, limit),
        _replay(table, 4, limit),
    )
    assert first.anytime == again.anytime and first.seconds == again.seconds
    assert first.anytime != other.anytime
    assert first.epochs == limit  # every epoch charged, none beyond the budget
    # The best so far never falls, and is a value the table holds.
    bests = [best for _, best in first.anytime]
    assert bests == sorted(bests) and bests[-1] in set(table.val_accuracy[:, :, -1].ravel())


def test_a_diverged_replayed_run_counts_toward_the_budget_as_a_studys_would():
    from hpsearch.records import counts_toward_budget

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = _table()
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(dict(table.configs[3]))  # recorded seed 1 diverged after 4 epochs
    objective = ReplayObjective(table, Budget(100), seed_offset=1)
    study.optimize(objective, n_trials=1, catch=(ArithmeticError,))
    trial = study.trials[0]
    assert trial.state.name == "FAIL" and len(trial.intermediate_values) == 4
    assert counts_toward_budget(trial)  # what the stop rule and the budget count


def test_the_benchmarks_fast_wilcoxon_gives_scipys_p_values_and_is_undone():
    """benchmarks/replay.py runs Optuna's WilcoxonPruner with SciPy's exact test told that its
    statistic is vectorized: every p-value must be SciPy's own (the pruner's decisions follow
    from them), on the small samples with ties and zeros that take the slow path."""
    import scipy.stats

    from benchmarks.replay import vectorized_wilcoxon

    rng = np.random.default_rng(7)
    cases = []
    for _ in range(40):
        d = np.round(rng.normal(0.0, 1.0, int(rng.integers(2, 9))), 1)  # ties
        d[rng.random(len(d)) < 0.2] = 0.0  # zeros
        cases.append((d, ("two-sided", "less", "greater")[int(rng.integers(3))]))

    def p_values() -> list[float]:
        return [
            float(scipy.stats.wilcoxon(d, alternative=a, zero_method="zsplit").pvalue)
            for d, a in cases
        ]

    original = scipy.stats.permutation_test
    slow = p_values()
    with vectorized_wilcoxon():
        assert scipy.stats.permutation_test is not original
        fast = p_values()
    assert scipy.stats.permutation_test is original
    assert fast == slow
    assert 0.0 < min(slow) < 0.2 and max(slow) == 1.0  # the cases span the test's range


def test_the_benchmarks_fan_out_shows_its_progress_on_stderr(capsys):
    import math

    from benchmarks.replay import fan_out

    keys = [(float(n),) for n in range(6)]
    assert fan_out(math.sqrt, keys) == {k: math.sqrt(k[0]) for k in keys}
    err = capsys.readouterr().err
    assert "studies: 100%" in err and "6/6" in err
