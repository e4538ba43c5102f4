"""Per-trial overhead against raw Optuna, trials per minute with 1 and 2 workers, start-up.

    python benchmarks/workers.py [--trials 300] [--postgres URL]

1. Overhead: an objective that returns at once, N trials, on the same storage.
   Peer: raw Optuna, `study.optimize` on an RDBStorage with the same engine settings.
   Ours: hpsearch's worker loop (its own ask/tell loop: budget check before and inside every
   trial, heartbeat thread, stale-trial check, storage calls retried through outages) with the
   same objective; and, to show what hpsearch's own records cost, the loop plus the per-trial
   records its objective writes (seed, curves, seconds, one report). SQLite, and PostgreSQL
   with --postgres.
2. Throughput: the quickstart study (digits, softmax) for 60 trials with --workers 1 and 2.
3. Start-up: `hpsearch --help` beside `optuna --help`, best of 10.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpsearch.storage import StorageURL  # noqa: E402
from hpsearch.storage import open_storage  # noqa: E402
from hpsearch.worker import BudgetGuard  # noqa: E402
from hpsearch.worker import run_trials  # noqa: E402


def instant(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def raw_optuna(url: str, n: int, heartbeat: bool = False) -> float:
    extra = {"heartbeat_interval": 10, "grace_period": 30} if heartbeat else {}
    storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url), **extra)
    study = optuna.create_study(
        storage=storage,
        study_name=f"raw-{uuid.uuid4().hex[:8]}",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    start = time.perf_counter()
    study.optimize(instant, n_trials=n)
    return time.perf_counter() - start


def _engine_kwargs(url: str) -> dict:
    key = "timeout" if url.startswith("sqlite") else "connect_timeout"
    return {"connect_args": {key: 60 if key == "timeout" else 10}}


def hpsearch_loop(url: str, n: int, records: bool) -> float:
    storage = open_storage(StorageURL(url, "benchmark"), heartbeat=True)
    study = optuna.create_study(
        storage=storage,
        study_name=f"ours-{uuid.uuid4().hex[:8]}",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )

    guard = BudgetGuard(n)

    def objective(trial: optuna.Trial) -> float:
        guard.check(trial)
        value = instant(trial)
        if records:  # what hpsearch's Objective stores for a one-epoch trial
            trial.set_user_attr("seed", 1)
            trial.report(value, step=0)
            trial.set_user_attr("curves", {"val_accuracy": [value]})
            trial.set_user_attr("seconds", 0.0)
        return value

    start = time.perf_counter()
    run_trials(
        study,
        objective,
        guard,
        timeout=None,
        callbacks=[],
        catch=(),
        stop=lambda: False,
        log=print,
    )
    return time.perf_counter() - start


def overhead(label: str, url_for: Callable[[str], str], n: int) -> None:
    """Best of 3 rounds; in each round every variant runs once, on a fresh SQLite file (or a
    fresh study), so no variant pays for a database the others have filled."""
    variants = {
        "raw": lambda url: raw_optuna(url, n),
        "raw_hb": lambda url: raw_optuna(url, n, heartbeat=True),
        "loop": lambda url: hpsearch_loop(url, n, records=False),
        "full": lambda url: hpsearch_loop(url, n, records=True),
    }
    best = {k: float("inf") for k in variants}
    for round_ in range(3):
        for name, run in variants.items():
            best[name] = min(best[name], run(url_for(f"{name}-{round_}")))
    ms = {k: 1000 * v / n for k, v in best.items()}
    print(
        f"| {label} | {ms['raw']:.1f} | {ms['raw_hb']:.1f} | {ms['loop']:.1f} | "
        f"{best['loop'] / best['raw_hb']:.2f} | {best['loop'] / best['raw']:.2f} | "
        f"{ms['full']:.1f} | {best['full'] / best['raw']:.2f} |"
    )


def throughput(tmp: Path) -> None:
    for study, n in (("quickstart", 60), ("digits_mlp", 30)):
        for workers in (1, 2):
            url = f"sqlite:///{tmp / f'{study}-{workers}.db'}"
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hpsearch.cli",
                    "run",
                    str(ROOT / "studies" / f"{study}.toml"),
                    "--storage",
                    url,
                    "--n-trials",
                    str(n),
                    "--workers",
                    str(workers),
                    "--quiet",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
            seconds = time.perf_counter() - start
            print(f"| {study} | {n} | {workers} | {seconds:.1f} | {n / seconds * 60:.0f} |")


def startup() -> None:
    bin_dir = Path(sys.executable).parent
    for name in ("hpsearch", "optuna"):
        best = min(_timed([str(bin_dir / name), "--help"]) for _ in range(10))
        print(f"| `{name} --help` | {1000 * best:.0f} |")


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure on as well")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"## Per-trial overhead, {args.trials} trials of an instant objective (ms/trial)\n")
        print(
            "| storage | raw Optuna | raw Optuna + heartbeat | hpsearch loop (heartbeat on) | "
            "ratio to raw + heartbeat | ratio to raw | hpsearch loop + records | ratio to raw |"
        )
        print("|---|---|---|---|---|---|---|---|")
        overhead("SQLite", lambda key: f"sqlite:///{Path(tmp) / f'{key}.db'}", args.trials)
        if args.postgres:
            overhead("PostgreSQL", lambda key: args.postgres, args.trials)
        print(f"\n## Throughput on digits, {os.cpu_count()} cores, SQLite\n")
        print("| study | trials | workers | seconds | trials per minute |")
        print("|---|---|---|---|---|")
        throughput(Path(tmp))
        print("\n## Start-up\n")
        print("| command | ms (best of 10) |")
        print("|---|---|")
        startup()


if __name__ == "__main__":
    main()
