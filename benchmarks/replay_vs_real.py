"""Does the replay rank strategies as real training does?

    python benchmarks/replay_vs_real.py [TASK] [--trials 40] [--seeds 3]

For one task (default digits_softmax), every strategy of benchmarks/replay.py (Wilcoxon and
the default's duplicate left out) runs a real study of --trials trials: the study's model
trained for real, each epoch's validation accuracy reported to the pruner, the trial number as
the training seed (as in the replay). The same strategy then runs on the task's replay with the
same sampler seed and the same number of trials. Printed per strategy: the epochs the study
spent and its best final validation accuracy, real beside replay (mean over seeds), and
Spearman's rank correlation between real and replay over the strategies, for each figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/, run from a checkout

from benchmarks.curves.record import TASKS  # noqa: E402
from benchmarks.curves.record import task_data  # noqa: E402
from benchmarks.replay import fan_out  # noqa: E402
from benchmarks.replay import load_table  # noqa: E402
from benchmarks.replay import strategies  # noqa: E402

LEFT_OUT = ("TPE + Wilcoxon", "hpsearch default")


def real_study(task: str, name: str, seed: int, trials: int) -> tuple[int, float]:
    """(epochs trained, best final validation accuracy) of a real study."""
    import optuna

    from hpsearch.models import resolve
    from hpsearch.models.training import TrainingDiverged
    from hpsearch.models.training import train
    from hpsearch.space import suggest

    spec, data = task_data(TASKS[task])
    epochs = int(spec.model.fixed.get("epochs", 20))
    strategy = next(s for s in strategies(epochs) if s.name == name)
    spent = [0]

    def objective(trial: optuna.Trial) -> float:
        fixed = {**spec.model.fixed, **suggest(trial, spec.params), "patience": 0}
        model = resolve(spec.model.kind, fixed).build(fixed, trial.number)
        images = model.wants_images

        def on_epoch(epoch: int, history) -> None:
            spent[0] += 1
            trial.report(history.val_accuracy[-1], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            history = train(
                model,
                *data.split("train", images),
                *data.split("val", images),
                classes=data.classes,
                on_epoch=on_epoch,
            )
        except TrainingDiverged as e:
            raise ArithmeticError("diverged") from e
        return history.val_accuracy[-1]

    study = optuna.create_study(
        study_name=f"{task}-{name}-{seed}",
        direction="maximize",
        sampler=strategy.sampler(seed),
        pruner=strategy.pruner(epochs),
    )
    study.optimize(objective, n_trials=trials, catch=(ArithmeticError,))
    complete = [t.value for t in study.trials if t.state.name == "COMPLETE"]
    return spent[0], max(complete, default=0.0)


def replay_study(task: str, name: str, seed: int, trials: int) -> tuple[int, float]:
    """The same on the replay: the study's own number of trials, no epoch budget."""
    import optuna

    from hpsearch.replay import Budget
    from hpsearch.replay import ReplayObjective

    table = load_table(task)
    strategy = next(s for s in strategies(table.epochs) if s.name == name)
    budget = Budget(10**9)
    study = optuna.create_study(
        study_name=f"{task}-{name}-{seed}",
        direction="maximize",
        sampler=strategy.sampler(seed),
        pruner=strategy.pruner(table.epochs),
    )
    study.optimize(
        ReplayObjective(table, budget, seed_offset=1000 * seed),
        n_trials=trials,
        catch=(ArithmeticError,),
    )
    return budget.epochs, budget.best


def both(task: str, name: str, seed: int, trials: int) -> tuple[tuple, tuple]:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return real_study(task, name, seed, trials), replay_study(task, name, seed, trials)


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""

    def ranks(x: list[float]) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=float)
        for v in np.unique(x):
            r[x == v] = r[x == v].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default="digits_softmax", choices=list(TASKS))
    parser.add_argument("--trials", type=int, default=40, help="trials per study (default 40)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per strategy (default 3)")
    args = parser.parse_args()
    names = [s.name for s in strategies(1) if s.name not in LEFT_OUT]
    start = time.perf_counter()
    keys = [(args.task, n, s, args.trials) for n in names for s in range(args.seeds)]
    done = {(n, s): result for (_, n, s, _), result in fan_out(both, keys).items()}
    rows = []
    print(
        f"{args.task}: {args.trials} trials a study, {args.seeds} seeds, mean over seeds\n"
        f"  {'strategy':<26} {'epochs real':>11} {'replay':>8} {'best real':>10} {'replay':>8}"
    )
    for n in names:
        real = np.mean([done[(n, s)][0] for s in range(args.seeds)], axis=0)
        replay = np.mean([done[(n, s)][1] for s in range(args.seeds)], axis=0)
        rows.append((real, replay))
        print(f"  {n:<26} {real[0]:>11.0f} {replay[0]:>8.0f} {real[1]:>10.4f} {replay[1]:>8.4f}")
    for k, figure in enumerate(("epochs spent", "best final accuracy")):
        rho = spearman([r[0][k] for r in rows], [r[1][k] for r in rows])
        print(f"rank correlation, real against replay, {figure}: {rho:.2f}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
