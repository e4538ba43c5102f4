"""Many workers and the search: K asynchronous workers replayed on the recorded curves.

    python benchmarks/replay.py --workers 1,8,32 [--seeds N]

Each of K simulated workers asks Optuna's study for a trial, trains it on the recorded curve
of the nearest recorded configuration (search/replay.py), each epoch landing after its
recorded seconds, and tells the outcome; the sampler sees the other workers' trials RUNNING,
as in a real study, and the pruner decides as each epoch lands, against the trials finished
by then. The study ends when the budget of epochs (replay.BUDGET full trials' worth) is spent.
Printed per task, strategy and K: the wall time (in units of one full trial's recorded
seconds) and the epochs spent until the best finished trial comes within one standard error of
the task's best recorded mean. One full trial's time is the limit no number of workers beats.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np


def run_async(
    table: Any, strategy: Any, seed: int, budget_epochs: int, workers: int, task: str = "task"
) -> list[tuple[float, int, float]]:
    """One study with `workers` asynchronous workers: [(seconds, epochs, best so far)] after
    each finished trial."""
    import optuna

    from hpsearch.records import DIVERGED_ATTR
    from hpsearch.space import suggest

    study = optuna.create_study(
        study_name=f"{task}-{strategy.name}-{seed}-{workers}",
        direction="maximize",
        sampler=strategy.sampler(seed),
        pruner=strategy.pruner(table.epochs),
    )
    events: list[tuple[float, int]] = []  # (when the worker's next epoch lands, worker)
    running: dict[int, tuple[Any, Any, int]] = {}  # worker -> (trial, curve, next epoch)
    spent, best, record = 0, 0.0, []

    def start(worker: int, now: float) -> None:
        trial = study.ask()
        params = suggest(trial, table.params)
        curve = table.answer(params, 1000 * seed + trial.number)
        running[worker] = (trial, curve, 0)
        heapq.heappush(events, (now + float(curve.seconds[0]), worker))

    for worker in range(workers):
        start(worker, 0.0)
    while events and spent < budget_epochs:
        now, worker = heapq.heappop(events)
        trial, curve, epoch = running[worker]
        spent += 1
        trial.report(float(curve.val_accuracy[epoch]), epoch)
        state, value = None, None
        if trial.should_prune():
            state = optuna.trial.TrialState.PRUNED
        elif epoch + 1 < curve.epochs:
            running[worker] = (trial, curve, epoch + 1)
            heapq.heappush(events, (now + float(curve.seconds[epoch + 1]), worker))
            continue
        elif curve.epochs < table.epochs:  # it diverged: a failed trial
            trial.set_user_attr(DIVERGED_ATTR, True)
            state = optuna.trial.TrialState.FAIL
        else:
            state, value = optuna.trial.TrialState.COMPLETE, float(curve.val_accuracy[-1])
            best = max(best, value)
        study.tell(trial, value, state=state)
        record.append((now, spent, best))
        if spent < budget_epochs:
            start(worker, now)
    return record


def study_with_workers(task: str, name: str, seed: int, workers: int):
    """For replay.fan_out: the record of one study."""
    import warnings

    import optuna

    from benchmarks.replay import BUDGET
    from benchmarks.replay import load_table
    from benchmarks.replay import strategies
    from benchmarks.replay import vectorized_wilcoxon

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    table = load_table(task)
    strategy = next(s for s in strategies(table.epochs) if s.name == name)
    with vectorized_wilcoxon():
        return run_async(table, strategy, seed, BUDGET * table.epochs, workers, task)


STRATEGIES = ("hpsearch default", "TPE + median", "TPE + successive halving", "random")


def main(workers: list[int], n_seeds: int) -> None:
    from benchmarks.replay import BUDGET
    from benchmarks.replay import fan_out
    from benchmarks.replay import load_table
    from benchmarks.replay import recorded_tasks

    tasks = recorded_tasks()
    keys = [
        (t, n, s, k) for t in tasks for n in STRATEGIES for s in range(n_seeds) for k in workers
    ]
    done = fan_out(study_with_workers, keys)
    print(
        f"wall time (full trials) and epochs to come within one standard error of the best; "
        f"median over {n_seeds} seeds; budget {BUDGET} full trials of epochs"
    )
    wins: dict[tuple[str, int], list[float]] = {}
    for task in tasks:
        table = load_table(task)
        target = table.best_mean() - table.standard_error()
        trial_s = float(np.nanmean(np.nansum(table.seconds, axis=2)))
        limit = BUDGET * table.epochs
        print(f"\n{task}: one full trial {trial_s:.1f} s; target {target:.4f}")
        print(f"  {'strategy':<26}" + "".join(f"{'K=' + str(k):>22}" for k in workers))
        for name in STRATEGIES:
            cells = []
            for k in workers:
                times, epochs, hit = [], [], 0
                for seed in range(n_seeds):
                    reach = [(t, e) for t, e, b in done[(task, name, seed, k)] if b >= target]
                    if reach:
                        hit += 1
                        times.append(reach[0][0] / trial_s)
                        epochs.append(reach[0][1])
                    else:
                        times.append(float("inf"))
                        epochs.append(limit)
                t_med = float(np.median(times))
                wins.setdefault((name, k), []).append(t_med)
                cells.append(f"{t_med:6.1f} T {np.median(epochs):5.0f} ep {hit / n_seeds:4.0%}")
            print(f"  {name:<26}" + "".join(f"{c:>22}" for c in cells))
    print("\nmedian over tasks of the wall time to the target, in full trials:")
    for name in STRATEGIES:
        row = "".join(f"{'K=' + str(k)}: {np.median(wins[(name, k)]):5.1f}  " for k in workers)
        print(f"  {name:<26} {row}")
