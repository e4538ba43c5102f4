"""What deciding a study's thread count by rule costs, against measuring it.

    python benchmarks/thread_rule.py [--repeats 3]

Since 0.4 a study trains on the count decided when it is created, $HPSEARCH_THREADS or every
core (search/creation.py: decide_threads), so that its numbers do not depend on the machine's
load. 0.3 timed a few batches on 1 thread and on every core, once per shape, and trained on the
faster: quicker for small networks, but a busy machine chose differently and got other trials.
For NumPy MLPs of several sizes, one epoch on synthetic data of the digits' and Fashion-MNIST's
shapes: seconds on 1 thread and on every core (the peer: the faster of the two is what 0.3's
measurement would pick on an idle machine), and the rule's cost, every core / the faster.
Minimum of --repeats runs, interleaved.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpsearch.models import MODELS  # noqa: E402
from hpsearch.models.threads import THREADS_ENV  # noqa: E402
from hpsearch.models.threads import cores  # noqa: E402

SHAPES = [  # (rows, inputs, hidden, batch): what the shipped studies train
    ("digits, 64-64-10", 1150, 64, [64], 32),
    ("digits, 64-256-256-10", 1150, 64, [256, 256], 32),
    ("Fashion, 784-64-10", 54000, 784, [64], 64),
    ("Fashion, 784-512-512-10", 54000, 784, [512, 512], 64),
]


def epoch_seconds(n: int, d: int, hidden: list[int], batch: int, threads: int) -> float:
    os.environ[THREADS_ENV] = str(threads)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, 10, n)
    entry = MODELS["numpy.mlp"]
    params = {"hidden": hidden, "batch_size": batch, "epochs": 1, "learning_rate": 0.01}
    model = entry.build(params, seed=0)
    start = time.perf_counter()
    model.partial_fit(X, y, classes=np.arange(10))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    every = cores()
    print(f"| network | 1 thread, s/epoch | {every} threads | rule's cost (every core / faster) |")
    print("|---|---|---|---|")
    costs = []
    for label, n, d, hidden, batch in SHAPES:
        best = {1: float("inf"), every: float("inf")}
        for r in range(args.repeats):
            for threads in (1, every) if r % 2 else (every, 1):
                best[threads] = min(best[threads], epoch_seconds(n, d, hidden, batch, threads))
        cost = best[every] / min(best.values())
        costs.append(cost)
        print(f"| {label} | {best[1]:.3f} | {best[every]:.3f} | {cost:.2f}x |")
    print(
        f"thread rule: every core costs {min(costs):.2f}-{max(costs):.2f}x the faster count "
        f"over {len(costs)} networks (1.00 where every core is the faster)"
    )


if __name__ == "__main__":
    main()
