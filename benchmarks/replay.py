"""Search strategies compared on recorded learning curves: python benchmarks/replay.py [--quick]

Every strategy runs on every task's table (benchmarks/curves/*.npz, search/replay.py) for many
seeds, each with the same budget of epochs (BUDGET full trials' worth). Printed per task and
strategy: the epochs needed to come within one standard error (binomial, of the task's
validation size) of the task's best recorded mean (median and quartiles over seeds; a run that
never gets there counts as the whole budget, and the share that did is shown), the area under
the anytime curve (best-so-far validation accuracy against epochs spent, as a fraction of the
budget), and the final best. `--html FILE` writes the anytime curves (plotly).

DEHB (the `dehb` package) runs as an outside peer where it is installed. DEHB 0.1.2 pins
numpy < 2, so it lives in an environment of its own (docs/benchmarks.md says how); without it
the comparison says that DEHB was left out.
"""

from __future__ import annotations

import argparse
import contextlib
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


def default_label() -> str:
    """The default strategy, named as the benchmarks print it: "TPE + wilcoxon"."""
    from hpsearch.algorithms import DEFAULT_PRUNER

    return f"TPE + {DEFAULT_PRUNER['type']}"


def default_pruner() -> object:
    """The pruner a study file without `pruner` gets (search/algorithms.py)."""
    from hpsearch.algorithms import DEFAULT_PRUNER
    from hpsearch.algorithms import PRUNERS

    options = {k: v for k, v in DEFAULT_PRUNER.items() if k != "type"}
    return PRUNERS[DEFAULT_PRUNER["type"]].load()(**options)


@contextlib.contextmanager
def vectorized_wilcoxon():
    """SciPy's exact Wilcoxon test, which Optuna's WilcoxonPruner calls, as fast as it can be.

    With ties or zeros among at most 13 differences, `scipy.stats.wilcoxon` enumerates all 2**n
    sign flips through `permutation_test`, calling its statistic once per flip (0.1-1 s a test,
    30-100 s a replayed study). The statistic is vectorized along the last axis; saying so
    makes SciPy compute the same null distribution in one call: the same p-values (compared
    in tests/search/test_replay.py), so the same pruning decisions, about 30 times sooner.
    """
    import scipy.stats

    original = scipy.stats.permutation_test

    def permutation_test(data, statistic, *, axis=0, vectorized=None, **kwargs):
        if vectorized is None and axis == -1:
            return original(
                data, lambda *d, axis: statistic(*d), axis=-1, vectorized=True, **kwargs
            )
        return original(data, statistic, axis=axis, vectorized=vectorized, **kwargs)

    scipy.stats.permutation_test = permutation_test
    try:
        yield
    finally:
        scipy.stats.permutation_test = original


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


def dehb_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("dehb") is not None


def run_dehb(table, seed: int, budget_epochs: int, task: str = "task"):
    """DEHB (eta 3, fidelities 1 to the task's epochs) on the replay, through its ask and tell
    interface. DEHB searches the unit cube: each coordinate maps to one parameter of the study
    (log scale where the study says so; a categorical by equal slices), inactive conditional
    parameters dropped. An evaluation at fidelity f trains f epochs from scratch (DEHB does not
    continue a lower fidelity's run) and is charged f epochs; only full-fidelity evaluations
    are complete trials, as in Optuna's studies, whose best is the anytime record."""
    import math
    import tempfile

    from dehb import DEHB

    from hpsearch.replay import Budget
    from hpsearch.replay import active_config

    params = table.params

    def config(vector) -> dict:
        values = {}
        for p, v in zip(params, np.clip(vector, 0.0, 1.0), strict=True):
            if p.type == "categorical":
                values[p.name] = p.choices[min(int(v * len(p.choices)), len(p.choices) - 1)]
                continue
            low, high = float(p.low), float(p.high)
            if p.log:
                x = math.exp(math.log(low) + v * (math.log(high) - math.log(low)))
            else:
                x = low + v * (high - low)
            values[p.name] = int(round(x)) if p.type == "int" else x
        return active_config(params, values)

    budget = Budget(budget_epochs)
    with tempfile.TemporaryDirectory() as logs:
        optimizer = DEHB(
            dimensions=len(params),
            min_fidelity=1,
            max_fidelity=table.epochs,
            eta=3,
            seed=seed,
            n_workers=1,
            output_path=logs,
            log_level="ERROR",
        )
        n = 0
        while not budget.spent:
            job = optimizer.ask()
            fidelity = int(round(job["fidelity"]))
            curve = table.answer(config(job["config"]), 1000 * seed + n)
            n += 1
            epochs = min(fidelity, curve.epochs, budget.limit - budget.epochs)
            budget.epochs += epochs
            accuracy = float(curve.val_accuracy[epochs - 1]) if epochs else 0.0
            full = epochs == fidelity == table.epochs
            budget.finished(accuracy if full else None)
            optimizer.tell(job, {"fitness": -accuracy, "cost": float(epochs)})
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


def best_so_far(anytime: list[tuple[int, float]], grid: np.ndarray) -> np.ndarray:
    """The anytime record as a step function of epochs spent (0 before the first trial)."""
    epochs = np.array([e for e, _ in anytime])
    best = np.array([0.0, *(b for _, b in anytime)])
    return best[np.searchsorted(epochs, grid, side="right")]


def write_html(results: dict, targets: dict, path: Path, *, plotlyjs: str | bool = "cdn") -> None:
    """Anytime curves: the median over seeds of the best-so-far accuracy, per task, with the
    target (one standard error below the best recorded mean) dashed. Each panel shows the
    epochs up to twice the latest strategy's median epochs to target."""
    from plotly.subplots import make_subplots

    tasks = sorted({t for t, _ in results})
    cols = 2
    rows = -(-len(tasks) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=tasks, vertical_spacing=0.08)
    for k, task in enumerate(tasks):
        row, col = k // cols + 1, k % cols + 1
        target, best_mean, limit = targets[task]
        shown = min(limit, 2 * max(med for (t, _), (med, _) in results.items() if t == task))
        grid = np.linspace(0, shown, 300)
        for (t, name), (_, runs) in results.items():
            if t != task:
                continue
            curve = np.median([best_so_far(r, grid) for r in runs], axis=0)
            fig.add_scatter(x=grid, y=curve, name=name, row=row, col=col, line_shape="hv")
            fig.data[-1].update(legendgroup=name, showlegend=k == 0)
        fig.add_hline(y=target, line_dash="dash", line_color="grey", row=row, col=col)
        span = best_mean - target
        fig.update_yaxes(range=[target - 6 * span, best_mean + span], row=row, col=col)
        fig.update_xaxes(title_text="epochs spent", row=row, col=col)
    fig.update_layout(
        height=330 * rows,
        width=1100,
        title="Best validation accuracy so far (median over seeds); dashed: the target",
        legend={"orientation": "h", "y": -0.06},
    )
    fig.write_html(path, include_plotlyjs=plotlyjs)
    print(f"wrote {path}")


def fan_out(fn: Callable, keys: list[tuple]) -> dict[tuple, object]:
    """`fn(*key)` for every key, one process per core, with a progress bar on stderr (studies
    done, and the time left at the pace so far). Every study is seeded, so the results are
    those of running them one after another."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures import as_completed

    from tqdm import tqdm

    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        futures = {pool.submit(fn, *key): key for key in keys}
        with tqdm(total=len(keys), desc="studies", unit="study", file=sys.stderr) as bar:
            for future in as_completed(futures):
                future.result()  # a failed study stops the benchmark here, with its error
                bar.update(1)
        return {key: future.result() for future, key in futures.items()}


def recorded_tasks() -> list[str]:
    return [t for t in TASKS if (CURVES / f"{t}.npz").exists()]


def seeds_argument(doc: str) -> int:
    """The --seeds of a benchmark whose usage is `doc`'s first line (default 50)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeds per task (default 50)")
    return parser.parse_args().seeds


def default_study(task: str, seed: int, before: Callable | None = None):
    """hpsearch's default strategy on `task`'s replay for the whole budget (`before(study)`
    first, when given): (study, budget)."""
    import optuna

    from hpsearch.replay import Budget
    from hpsearch.replay import ReplayObjective

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = load_table(task)
    strategy = next(s for s in strategies(table.epochs) if s.name == "hpsearch default")
    budget = Budget(BUDGET * table.epochs)
    study = optuna.create_study(
        direction="maximize", sampler=strategy.sampler(seed), pruner=strategy.pruner(table.epochs)
    )
    if before is not None:
        before(study)

    def stop(study, trial) -> None:
        if budget.spent:
            study.stop()

    objective = ReplayObjective(table, budget, seed_offset=1000 * seed)
    study.optimize(objective, n_trials=100_000, callbacks=[stop], catch=(ArithmeticError,))
    return study, budget


_TABLES: dict = {}  # a process's tables, loaded once


def load_table(task: str):
    from hpsearch.replay import ReplayTable
    from hpsearch.study_file import load_study_file

    if task not in _TABLES:
        spec = load_study_file(ROOT / "studies" / TASKS[task].study)
        _TABLES[task] = ReplayTable.load(CURVES / f"{task}.npz", spec.params)
    return _TABLES[task]


def study(task: str, name: str, seed: int) -> tuple[list[tuple[int, float]], float]:
    """One strategy's study on one task's replay: its anytime record and final best."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    table = load_table(task)
    limit = BUDGET * table.epochs
    if name == "DEHB":
        budget = run_dehb(table, seed, limit, task)
    else:
        strategy = next(s for s in strategies(table.epochs) if s.name == name)
        with vectorized_wilcoxon():
            budget = run_one(table, strategy, seed, limit, task)
    return budget.anytime, budget.best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20 seeds (default 50), without Optuna's Wilcoxon pruner (the default's twin)",
    )
    parser.add_argument("--seeds", type=int, help="seeds per strategy and task (default 50)")
    parser.add_argument("--html", help="write the anytime curves (plotly) to this file")
    parser.add_argument(
        "--offline", action="store_true", help="put plotly.js in the HTML file (5 MB), not a link"
    )
    parser.add_argument(
        "--skip", action="append", default=[], metavar="STRATEGY", help="leave a strategy out"
    )
    parser.add_argument(
        "--workers",
        metavar="K,K,...",
        help="replay K asynchronous workers instead (benchmarks/replay_workers.py), e.g. 1,8,32",
    )
    args = parser.parse_args()
    n_seeds = args.seeds or (20 if args.quick else 50)
    if args.workers:
        from benchmarks.replay_workers import main as with_workers

        with_workers([int(k) for k in args.workers.split(",")], args.seeds or 10)
        return
    tasks = recorded_tasks()
    names = [s.name for s in strategies(1)]
    names = [*names[:-1], *(["DEHB"] if dehb_installed() else []), names[-1]]
    if args.quick:  # the default decides as Optuna's Wilcoxon pruner: the full run shows both
        args.skip.append("TPE + Wilcoxon")
    unknown = [n for n in args.skip if n not in names]
    if unknown:
        parser.error(f"--skip {unknown[0]!r}: allowed: {', '.join(names[:-1])}")
    names = [n for n in names if n not in args.skip]
    start = time.perf_counter()
    done = fan_out(study, [(t, n, seed) for t in tasks for n in names for seed in range(n_seeds)])
    results, targets = {}, {}
    for task in tasks:
        table = load_table(task)
        limit = BUDGET * table.epochs
        target = table.best_mean() - table.standard_error()
        targets[task] = (target, table.best_mean(), limit)
        print(
            f"\n{task}: {len(table.configs)} configurations x {table.n_seeds} seeds x "
            f"{table.epochs} epochs; best mean {table.best_mean():.4f}, one standard error "
            f"{table.standard_error():.4f}; budget {limit} epochs; {n_seeds} seeds"
        )
        print(
            f"  {'strategy':<26} {'epochs to target (q1-q3)':>26} {'reached':>8} "
            f"{'area':>7} {'final':>7}"
        )
        for name in names:
            runs = [done[(task, name, seed)] for seed in range(n_seeds)]
            reach = np.array([epochs_to_reach(anytime, target, limit) for anytime, _ in runs])
            reached = np.mean([best >= target for _, best in runs])
            areas = np.array([area(anytime, limit) for anytime, _ in runs])
            finals = np.array([best for _, best in runs])
            q1, med, q3 = np.percentile(reach, [25, 50, 75])
            results[(task, name)] = (med, [anytime for anytime, _ in runs])
            print(
                f"  {name:<26} {med:>10.0f} ({q1:>5.0f}-{q3:>5.0f}) {'':>5}"
                f"{reached:>8.0%} {areas.mean():>7.4f} {finals.mean():>7.4f}"
            )
    print(f"\n{len(tasks)} tasks, {n_seeds} seeds, {time.perf_counter() - start:.0f} s")
    if not dehb_installed():
        print("DEHB left out: the dehb package is not installed here (docs/benchmarks.md)")
    if args.html:
        write_html(results, targets, Path(args.html), plotlyjs=True if args.offline else "cdn")

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
