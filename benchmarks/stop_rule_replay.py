"""The stop rule on recorded learning curves: python benchmarks/stop_rule_replay.py [--seeds 50]

On every task's table (benchmarks/curves/), hpsearch's default strategy (TPE + Wilcoxon pruner)
runs for the whole budget (benchmarks/replay.py's: 30 full trials' worth of epochs) on the
replay, seed by seed. hpsearch's own stop rule (search/stopping.py `decide`, as a study with
`[study] stop = { patience = P, min_delta = "noise" }` applies it) is then asked where it would
have stopped that same study. Printed per task and patience: the share of seeds whose best at
the stop is within one standard error (binomial, of the task's validation size) of the whole
budget's best, and the median share of the budget's epochs the stop saved. The targets: 90 %
of seeds, 70 % saved.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/, run from a checkout

from benchmarks.replay import BUDGET  # noqa: E402
from benchmarks.replay import default_label  # noqa: E402
from benchmarks.replay import default_study  # noqa: E402
from benchmarks.replay import fan_out  # noqa: E402
from benchmarks.replay import load_table  # noqa: E402
from benchmarks.replay import recorded_tasks  # noqa: E402
from benchmarks.replay import seeds_argument  # noqa: E402

PATIENCES = (10, 20, 30)


def stops(task: str, seed: int) -> list[tuple[int, float, float, float]]:
    """For each patience: (stopped: 1 or 0, epochs at the stop / budget, best at the stop,
    whole budget's best), for one seed of the default strategy on `task`'s replay."""
    from hpsearch.spec import StopSpec
    from hpsearch.stopping import decide

    table = load_table(task)
    limit = BUDGET * table.epochs
    study, budget = default_study(task, seed)
    trials = study.get_trials(deepcopy=False)
    n_val = int(table.meta["n_val"])
    out = []
    for patience in PATIENCES:
        decision = decide(trials, StopSpec(patience, "noise"), n_val, {})
        if decision is None:
            out.append((0, 1.0, budget.best, budget.best))
            continue
        # The anytime record has one entry per trial, in trial order (a sequential study).
        epochs, best = budget.anytime[decision.after - 1]
        out.append((1, epochs / limit, best, budget.best))
    return out


def main() -> None:
    seeds = seeds_argument(__doc__)
    tasks = recorded_tasks()
    start = time.perf_counter()
    done = fan_out(stops, [(t, s) for t in tasks for s in range(seeds)])
    print(f'stop rule min_delta = "noise" on {default_label()}, {seeds} seeds a task')
    print(f"  {'task':<18} {'patience':>8} {'stopped':>8} {'within 1 SE':>12} {'saved':>7}")
    for task in tasks:
        se = load_table(task).standard_error()
        for k, patience in enumerate(PATIENCES):
            rows = [done[(task, s)][k] for s in range(seeds)]
            stopped = np.mean([r[0] for r in rows])
            within = np.mean([r[2] >= r[3] - se for r in rows])
            saved = np.median([1.0 - r[1] for r in rows])
            print(f"  {task:<18} {patience:>8} {stopped:>8.0%} {within:>12.0%} {saved:>7.0%}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
