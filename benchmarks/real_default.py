"""The default pruner against the old one, for real: python benchmarks/real_default.py

    python benchmarks/real_default.py [--seeds 3] [--studies digits_mlp fashion_mlp]

Each study file (studies/NAME.toml) runs for real with its own budget of trials, under each of
two pruners with TPE: hpsearch's default (the Wilcoxon test on learning curves) and the median
pruner that was the default until 0.2 (5 start-up trials, 3 warm-up epochs), seeds 0..S-1, the
two strategies alternating so that the machine's drift falls on both. Per run: the wall time of
the search, the epochs trained, the best validation accuracy, and the test accuracy after
`retrain` of the best configuration. Beside it, the replay's prediction: the same strategy and
seed on the task's recorded curves (benchmarks/curves/), the same number of trials. The Fashion
tables were recorded on 12,000 training images, so their accuracies are lower than the real
study's (54,000); the epochs are comparable.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay import load_table  # noqa: E402

STRATEGIES = {
    "default (Wilcoxon)": None,  # the study file without a pruner gets the default
    "median (0.2's default)": {"type": "median", "n_startup_trials": 5, "n_warmup_steps": 3},
}


def real(name: str, strategy: str, seed: int, folder: Path) -> dict:
    import optuna

    import hpsearch as hp

    doc = tomllib.loads((ROOT / "studies" / f"{name}.toml").read_text())
    doc["study"].pop("pruner", None)
    if STRATEGIES[strategy] is not None:
        doc["study"]["pruner"] = STRATEGIES[strategy]
    doc["study"]["seed"] = seed
    doc["study"]["name"] = f"{name}-{strategy.split()[0]}-{seed}"
    storage = f"sqlite:///{folder / (doc['study']['name'] + '.db')}"
    start = time.perf_counter()
    study = hp.run(doc, storage=storage, progress=False)
    seconds = time.perf_counter() - start
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    result = hp.retrain(hp.export(study), out=folder / f"{doc['study']['name']}-retrained")
    return {
        "seconds": seconds,
        "epochs": sum(len(t.intermediate_values) for t in study.trials),
        "best": study.best_value,
        "test": result.test_accuracy,
        "trials": len(study.trials),
    }


def replay(name: str, strategy: str, seed: int, n_trials: int) -> dict:
    import optuna

    from hpsearch.algorithms import DEFAULT_PRUNER
    from hpsearch.algorithms import PRUNERS
    from hpsearch.algorithms import build
    from hpsearch.replay import Budget
    from hpsearch.replay import ReplayObjective

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = load_table(name)
    options = dict(STRATEGIES[strategy] or DEFAULT_PRUNER)
    pruner = build(PRUNERS[options.pop("type")], options)
    budget = Budget(10**9)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner,
    )
    objective = ReplayObjective(table, budget, seed_offset=1000 * seed)
    study.optimize(objective, n_trials=n_trials, catch=(ArithmeticError,))
    return {"epochs": budget.epochs, "best": budget.best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--studies", nargs="+", default=["digits_mlp", "fashion_mlp"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.studies:
            rows = {s: [] for s in STRATEGIES}
            for seed in range(args.seeds):
                order = list(STRATEGIES)[:: 1 if seed % 2 == 0 else -1]
                for strategy in order:
                    r = real(name, strategy, seed, Path(tmp))
                    r["replay"] = replay(name, strategy, seed, r["trials"])
                    rows[strategy].append(r)
                    print(
                        f"{name} seed {seed} {strategy}: {r['seconds']:.1f} s, "
                        f"{r['epochs']} epochs, best {r['best']:.4f}, test {r['test']:.4f}; "
                        f"replay {r['replay']['epochs']} epochs, best "
                        f"{r['replay']['best']:.4f}",
                        flush=True,
                    )
            print(f"\n{name}, {args.seeds} seeds (mean):")
            print(
                "| strategy | seconds | epochs | best validation | test | replay: epochs | "
                "replay: best |\n|---|---|---|---|---|---|---|"
            )
            for strategy, runs in rows.items():
                mean = {k: np.mean([r[k] for r in runs]) for k in ("seconds", "epochs", "best")}
                test = np.mean([r["test"] for r in runs])
                replayed = [r["replay"] for r in runs]
                print(
                    f"| {strategy} | {mean['seconds']:.1f} | {mean['epochs']:.0f} | "
                    f"{mean['best']:.4f} | {test:.4f} | "
                    f"{np.mean([r['epochs'] for r in replayed]):.0f} | "
                    f"{np.mean([r['best'] for r in replayed]):.4f} |"
                )
            d, m = (rows[s] for s in STRATEGIES)
            ratio = np.mean([r["seconds"] for r in d]) / np.mean([r["seconds"] for r in m])
            epochs = np.mean([r["epochs"] for r in d]) / np.mean([r["epochs"] for r in m])
            predicted = np.mean([r["replay"]["epochs"] for r in d]) / np.mean(
                [r["replay"]["epochs"] for r in m]
            )
            print(
                f"default / median: {ratio:.2f}x the seconds, {epochs:.2f}x the epochs "
                f"(the replay predicted {predicted:.2f}x the epochs)\n"
            )


if __name__ == "__main__":
    main()
