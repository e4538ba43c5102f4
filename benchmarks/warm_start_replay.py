"""The warm start on recorded learning curves: python benchmarks/warm_start_replay.py [--seeds 50]

On every task's table (benchmarks/curves/), per seed: a source study (hpsearch's default, TPE
+ Wilcoxon pruner, the whole budget of benchmarks/replay.py) runs on the replay; then a new study
with another seed runs twice, cold and warm-started from the source's complete trials by
hpsearch's own warm start (search/warm.py `add`, as `[study] warm_start` does). Printed per
task: the trials each needs until one of its own ends within one standard error (binomial, of
the task's validation size) of the source's best (median over seeds; a study that never gets
there counts all the trials it ran), and the median over seeds of warm / cold. The target:
0.5 or less.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks/, run from a checkout

from benchmarks.curves.record import TASKS  # noqa: E402
from benchmarks.replay import default_label  # noqa: E402
from benchmarks.replay import default_study  # noqa: E402
from benchmarks.replay import fan_out  # noqa: E402
from benchmarks.replay import load_table  # noqa: E402
from benchmarks.replay import recorded_tasks  # noqa: E402
from benchmarks.replay import seeds_argument  # noqa: E402

NEW_SEED = 10_000  # the new study's seed: the source's plus this


def _study(task: str, seed: int, known=None):
    """The default strategy's whole-budget study, warm-started from `known` (the source's
    trials) by hpsearch's own warm start when given: (study, budget)."""
    from hpsearch.study_file import load_study_file
    from hpsearch.warm import WarmStart
    from hpsearch.warm import add

    def warm(study) -> None:
        spec = load_study_file(ROOT / "studies" / TASKS[task].study)
        add(study, spec, WarmStart(source=f"replay seed {seed}", known=tuple(known)))

    return default_study(task, seed, warm if known is not None else None)


def trials_to_reach(study, target: float) -> int:
    """The own trials (warm copies left out) run until one ends at or above `target`."""
    from hpsearch.records import own_trials

    own = sorted(own_trials(study.get_trials(deepcopy=False)), key=lambda t: t.number)
    for position, t in enumerate(own, start=1):
        if t.state.name == "COMPLETE" and t.value >= target:
            return position
    return len(own)


def warm_and_cold(task: str, seed: int) -> tuple[int, int]:
    import optuna

    from hpsearch.warm import Known

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = load_table(task)
    source, budget = _study(task, seed)
    known = [
        Known(f"trial {t.number}", t.params, {"val_accuracy": t.value})
        for t in source.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ]
    target = budget.best - table.standard_error()
    cold, _ = _study(task, seed + NEW_SEED)
    warm, _ = _study(task, seed + NEW_SEED, known)
    return trials_to_reach(warm, target), trials_to_reach(cold, target)


def main() -> None:
    seeds = seeds_argument(__doc__)
    tasks = recorded_tasks()
    start = time.perf_counter()
    done = fan_out(warm_and_cold, [(t, s) for t in tasks for s in range(seeds)])
    print(f"warm start on {default_label()}, {seeds} seeds: trials to the source's best")
    print(f"  {'task':<18} {'cold':>6} {'warm':>6} {'warm / cold':>12}")
    ratios = []
    for task in tasks:
        warm = [done[(task, s)][0] for s in range(seeds)]
        cold = [done[(task, s)][1] for s in range(seeds)]
        ratio = float(np.median(np.array(warm) / np.array(cold)))
        ratios.append(ratio)
        print(f"  {task:<18} {np.median(cold):>6.0f} {np.median(warm):>6.0f} {ratio:>12.2f}")
    print(f"median over tasks of warm / cold: {np.median(ratios):.2f}")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
