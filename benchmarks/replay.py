"""Search strategies compared on recorded learning curves: python benchmarks/replay.py [--quick]

Every strategy runs on every task's table (benchmarks/curves/*.npz, search/replay.py) for many
seeds, each with the same budget of epochs (BUDGET full trials' worth). Printed per task and
strategy: the epochs needed to come within one standard error (binomial, of the task's
validation size) of the task's best recorded mean (median and quartiles over seeds; a run that
never gets there counts as the whole budget, and the share that did is shown), the area under
the anytime curve (best-so-far validation accuracy against epochs spent, as a fraction of the
budget), and the final best. `--html FILE` writes the anytime curves (plotly).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/curves, run from a checkout

from benchmarks.curves.record import TASKS  # noqa: E402

CURVES = ROOT / "benchmarks" / "curves"
BUDGET = 30  # full trials' worth of epochs per study


@dataclass(frozen=True)
class Strategy:
    name: str
    sampler: Callable[[int], object]
    pruner: Callable[[int], object]


def strategies(epochs: int) -> list[Strategy]:
    import optuna.pruners as P
    import optuna.samplers as S

    from hpsearch.pruners import CurvePruner

    def median() -> object:
        return P.MedianPruner(n_startup_trials=5, n_warmup_steps=3)  # hpsearch's old default

    return [
        Strategy("random", lambda s: S.RandomSampler(seed=s), lambda e: P.NopPruner()),
        Strategy("TPE", lambda s: S.TPESampler(seed=s), lambda e: P.NopPruner()),
        Strategy("TPE + median", lambda s: S.TPESampler(seed=s), lambda e: median()),
        Strategy(
            "TPE + Hyperband",
            lambda s: S.TPESampler(seed=s),
            lambda e: P.HyperbandPruner(min_resource=1, max_resource=e),
        ),
        Strategy(
            "TPE + successive halving",
            lambda s: S.TPESampler(seed=s),
            lambda e: P.SuccessiveHalvingPruner(),
        ),
        Strategy("TPE + Wilcoxon", lambda s: S.TPESampler(seed=s), lambda e: P.WilcoxonPruner()),
        Strategy(
            "TPE + patient median",
            lambda s: S.TPESampler(seed=s),
            lambda e: P.PatientPruner(median(), patience=2),
        ),
        Strategy("TPE + curve", lambda s: S.TPESampler(seed=s), lambda e: CurvePruner()),
        Strategy("hpsearch default", lambda s: S.TPESampler(seed=s), lambda e: default_pruner()),
    ]


def default_pruner() -> object:
    """The pruner a study file without `pruner` gets (search/algorithms.py)."""
    from hpsearch.algorithms import DEFAULT_PRUNER
    from hpsearch.algorithms import PRUNERS

    options = {k: v for k, v in DEFAULT_PRUNER.items() if k != "type"}
    return PRUNERS[DEFAULT_PRUNER["type"]].load()(**options)


def run_one(table, strategy: Strategy, seed: int, budget_epochs: int, task: str = "task"):
    import optuna

    from hpsearch.replay import Budget
    from hpsearch.replay import ReplayObjective

    budget = Budget(budget_epochs)
    objective = ReplayObjective(table, budget, seed_offset=1000 * seed)
    study = optuna.create_study(
        # Named, not a random UUID: Hyperband assigns brackets by the study's name.
        study_name=f"{task}-{strategy.name}-{seed}",
        direction="maximize",
        sampler=strategy.sampler(seed),
        pruner=strategy.pruner(table.epochs),
    )

    def stop(study, trial) -> None:
        if budget.spent:
            study.stop()

    study.optimize(objective, n_trials=100_000, callbacks=[stop], catch=(ArithmeticError,))
    return budget


def epochs_to_reach(anytime: list[tuple[int, float]], target: float, limit: int) -> float:
    for epochs, best in anytime:
        if best >= target:
            return float(epochs)
    return float(limit)  # never: the whole budget


def area(anytime: list[tuple[int, float]], limit: int) -> float:
    """Mean best-so-far accuracy over the budget's epochs (0 before the first finished trial)."""
    total, last_epochs, last_best = 0.0, 0, 0.0
    for epochs, best in anytime:
        e = min(epochs, limit)
        total += last_best * (e - last_epochs)
        last_epochs, last_best = e, best
    total += last_best * (limit - last_epochs)
    return total / limit


def write_html(results: dict, path: Path) -> None:
    """Anytime curves: the median over seeds of the best-so-far accuracy, per task."""
    from plotly.subplots import make_subplots

    tasks = sorted({t for t, _ in results})
    fig = make_subplots(rows=len(tasks), cols=1, subplot_titles=tasks)
    for row, task in enumerate(tasks, start=1):
        for (t, name), (_, runs) in results.items():
            if t != task:
                continue
            limit = max(e for r in runs for e, _ in r) if runs and runs[0] else 1
            grid = np.linspace(0, limit, 200)
            curves = [
                np.interp(grid, [0, *(e for e, _ in r)], [0, *(b for _, b in r)]) for r in runs
            ]
            fig.add_scatter(
                x=grid,
                y=np.median(curves, axis=0),
                name=name,
                row=row,
                col=1,
                legendgroup=name,
                showlegend=row == 1,
            )
    fig.update_layout(height=320 * len(tasks), yaxis_title="best validation accuracy")
    fig.write_html(path, include_plotlyjs="cdn")
    print(f"wrote {path}")


def main() -> None:
    import optuna

    from hpsearch.replay import ReplayTable
    from hpsearch.study_file import load_study_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="20 seeds, without Wilcoxon (about 100 s a study)"
    )
    parser.add_argument("--seeds", type=int, help="seeds per strategy and task (default 50)")
    parser.add_argument("--html", help="write the anytime curves (plotly) to this file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    n_seeds = args.seeds or (20 if args.quick else 50)
    tasks = [t for t in TASKS if (CURVES / f"{t}.npz").exists()]
    start = time.perf_counter()
    results = {}
    for task in tasks:
        spec = load_study_file(ROOT / "studies" / TASKS[task].study)
        table = ReplayTable.load(CURVES / f"{task}.npz", spec.params)
        limit = BUDGET * table.epochs
        target = table.best_mean() - table.standard_error()
        print(
            f"\n{task}: {len(table.configs)} configurations x {table.n_seeds} seeds x "
            f"{table.epochs} epochs; best mean {table.best_mean():.4f}, one standard error "
            f"{table.standard_error():.4f}; budget {limit} epochs; {n_seeds} seeds"
        )
        print(
            f"  {'strategy':<26} {'epochs to target (q1-q3)':>26} {'reached':>8} "
            f"{'area':>7} {'final':>7}"
        )
        for strategy in strategies(table.epochs):
            if strategy.name == "TPE + Wilcoxon" and args.quick:
                continue  # about 100 s a study: the full run only
            runs = [run_one(table, strategy, seed, limit, task) for seed in range(n_seeds)]
            reach = np.array([epochs_to_reach(r.anytime, target, limit) for r in runs])
            reached = np.mean([r.best >= target for r in runs])
            areas = np.array([area(r.anytime, limit) for r in runs])
            finals = np.array([r.best for r in runs])
            q1, med, q3 = np.percentile(reach, [25, 50, 75])
            results[(task, strategy.name)] = (med, [r.anytime for r in runs])
            print(
                f"  {strategy.name:<26} {med:>10.0f} ({q1:>5.0f}-{q3:>5.0f}) {'':>5}"
                f"{reached:>8.0%} {areas.mean():>7.4f} {finals.mean():>7.4f}"
            )
    print(f"\n{len(tasks)} tasks, {n_seeds} seeds, {time.perf_counter() - start:.0f} s")
    if args.html:
        write_html(results, Path(args.html))

    def ratio(peer: str) -> float:
        return float(
            np.median([results[(t, "hpsearch default")][0] / results[(t, peer)][0] for t in tasks])
        )

    print(
        f"hpsearch default: {ratio('TPE + median'):.2f}\u00d7 the epochs of Optuna's TPE + "
        f"median pruner, {ratio('TPE + Hyperband'):.2f}\u00d7 Hyperband's, to come within one "
        f"standard error of each task's best ({len(tasks)} tasks, {n_seeds} seeds)"
    )


if __name__ == "__main__":
    main()
