"""What one trial costs besides its training: the worker's CPU, the database server's CPU and
its committed transactions, for hpsearch's worker and for Optuna's own loop on the same server.

One worker runs N trials of E epochs of a class whose epochs do nothing, on a fresh PostgreSQL
database; a run of 1 trial is subtracted, so start-up (imports, the schema check, the data)
is not counted. The peer is `study.optimize` of Optuna itself on the same server, its objective
doing what hpsearch's trial does to the storage (one parameter, one report per epoch, the
attributes hpsearch records) and nothing else: no training process, no heartbeat, no budget.

- worker CPU: user + system seconds of the command and every process it waited for (its
  training process), from the kernel's rusage;
- server CPU: the PostgreSQL backends' seconds, which the postmaster collects when they exit
  (cutime + cstime of /proc/POSTMASTER/stat, read after the run's connection closed);
- transactions: pg_stat_database.xact_commit.

    python benchmarks/trial_cost.py            # N = 100, E = 3
    python benchmarks/trial_cost.py --trials 200 --epochs 5

Run it on the machine the PostgreSQL server runs on (root, or the server's user, can read the
postmaster's /proc entry).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scale import SLEEPY  # noqa: E402
from benchmarks.scale import STUDY  # noqa: E402
from benchmarks.scale import Database  # noqa: E402

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")
TICKS = os.sysconf("SC_CLK_TCK")

# Optuna's own loop, doing to the storage what an hpsearch trial does.
OPTUNA_LOOP = """
import sys, time, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
url, n, epochs, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def objective(trial):
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    trial.set_user_attr("seed", trial.number)
    trial.set_user_attr("threads", 1)
    for epoch in range(epochs):
        time.sleep(seconds)
        trial.report(0.1, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    trial.set_user_attr("train_metrics", {})
    trial.set_user_attr("curves", {"val_accuracy": [0.1] * epochs})
    trial.set_user_attr("seconds", 0.0)
    return 0.1

study = optuna.create_study(
    study_name="peer", storage=url, direction="maximize", load_if_exists=True,
    sampler=optuna.samplers.TPESampler(seed=0), pruner=optuna.pruners.NopPruner(),
)
study.optimize(objective, n_trials=n - len(study.trials))
"""


def _postmaster(db: Database) -> int:
    """The PostgreSQL server's main process, which collects its backends' CPU."""
    (folder,) = db.query("SHOW data_directory")[0]
    try:
        return int((Path(folder) / "postmaster.pid").read_text().split()[0])
    except OSError as e:
        raise SystemExit(f"trial_cost: run on the database's machine, as root ({e})") from None


def _server_cpu(postmaster: int) -> float:
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime


def _measured(command: list[str], db: Database, postmaster: int) -> tuple[float, float, int]:
    """(worker CPU-s, server CPU-s, commits) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server, commits = _server_cpu(postmaster), db.commits()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"trial_cost: {' '.join(command[:3])} failed: {done.stderr[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.6)  # the backend exits and PostgreSQL publishes its counters
    worker = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return worker, _server_cpu(postmaster) - server, db.commits() - commits


def per_trial(make_command, trials: int, postmaster: int) -> tuple[float, float, float]:
    """Per trial (worker ms, server ms, transactions): N trials minus 1, on a fresh database."""
    db = Database()
    try:
        one = _measured(make_command(db.url, 1), db, postmaster)
        many = _measured(make_command(db.url, 1 + trials), db, postmaster)
    finally:
        db.drop()
    worker, server, commits = (m - o for m, o in zip(many, one, strict=True))
    # (the 1-trial run created the study: the second resumes it, so its start-up is cheaper
    # by that creation; both loops are measured the same way)
    return 1000 * worker / trials, 1000 * server / trials, commits / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.0, help="each epoch sleeps this")
    args = parser.parse_args()
    probe = Database()
    try:
        postmaster = _postmaster(probe)
    finally:
        probe.drop()
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-trial-cost-"))
    (folder / "sleepy.py").write_text(SLEEPY)

    def hpsearch(url: str, n: int) -> list[str]:
        study = folder / "sleepy.toml"
        study.write_text(STUDY.format(n=n, epochs=args.epochs, seconds=args.seconds))
        return [HPSEARCH, "run", str(study), "--storage", url, "--quiet"]

    def optuna(url: str, n: int) -> list[str]:
        return [
            sys.executable,
            "-c",
            OPTUNA_LOOP,
            url,
            str(n),
            str(args.epochs),
            str(args.seconds),
        ]

    ours = per_trial(hpsearch, args.trials, postmaster)
    peer = per_trial(optuna, args.trials, postmaster)
    print(
        f"per trial of {args.epochs} epochs of {args.seconds:g} s, {args.trials} trials of one "
        "worker on PostgreSQL"
    )
    print(f"{'':24}{'hpsearch':>10}{'optuna':>10}{'ratio':>8}")
    names = ("worker CPU (ms)", "server CPU (ms)", "transactions")
    for name, a, b in zip(names, ours, peer, strict=True):
        print(f"{name:24}{a:10.1f}{b:10.1f}{a / b:8.2f}")


if __name__ == "__main__":
    main()
