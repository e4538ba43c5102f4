"""Many workers on one database: what coordination costs, with trials that only sleep.

Each trial of a user class sleeps E epochs of S seconds, so all it measures is hpsearch's own
work (start-up, the database, the budget); the ideal is K workers finishing K / (E * S)
trials a second. For each K, on a fresh PostgreSQL database (and through `hpsearch proxy` for
the proxy rows), as `run --workers K` and as K separate `hpsearch worker` processes:

- steady trials/s against the ideal (trials ended while every worker had one to run: from the
  moment the last worker started its first trial to the moment the last trial started), the
  whole run's time against the ideal's, the budget exact, RUNNING and surplus rows left;
- peak connections to the database (pg_stat_activity, sampled), transactions per trial
  (pg_stat_database.xact_commit), each worker's start-up (launch to its first trial row) and
  resident memory;
- with --kill, a quarter of the workers SIGKILLed mid-run: the seconds until their trials are
  failed and re-queued, and the budget still exact.

    python benchmarks/scale.py --quick          # K = 64 on PostgreSQL, 3 x 1 s trials: one line
    python benchmarks/scale.py                  # the table of docs/workers.md

The peer in each row is the ideal (K sleeping workers with no coordination at all), so the
ratio holds on a busy machine as on an idle one.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")
ADMIN_URL = os.environ.get("HPSEARCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")

SLEEPY = """
import time

import numpy as np


class Sleepy:
    def __init__(self, lr: float = 0.1, seconds: float = 1.0):
        self.lr = lr
        self.seconds = seconds

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        time.sleep(self.seconds)

    def predict(self, X):
        return np.zeros(len(X), dtype=int)
"""
STUDY = """
[study]
name = "sleepy"
n_trials = {n}
seed = 0
sampler = "tpe"
pruner = "none"

[data]
dataset = "digits"
val_fraction = 0.2

[model]
kind = "sleepy.py:Sleepy"
fixed = {{ epochs = {epochs}, seconds = {seconds} }}

[params]
lr = {{ type = "float", low = 1e-3, high = 1e-1, log = true }}
"""


class Database:
    """A fresh database on the server, dropped afterwards."""

    def __init__(self) -> None:
        self.admin = sqlalchemy.create_engine(
            ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool
        )
        self.name = f"hpsearch_scale_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{self.name}"'))
        self.url = sqlalchemy.engine.make_url(ADMIN_URL).set(database=self.name)
        self.url = self.url.render_as_string(hide_password=False)

    def query(self, sql: str, **params) -> list[tuple]:
        with self.admin.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql), params)]

    def connections(self) -> int:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = :d"
        return self.query(sql, d=self.name)[0][0]

    def commits(self) -> int:
        sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = :d"
        return self.query(sql, d=self.name)[0][0]

    def trials(self) -> list[tuple]:
        """(number, state, start, complete, fail reason) of every trial."""
        engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
        sql = """
            SELECT t.number, t.state, t.datetime_start, t.datetime_complete,
                   (SELECT value_json FROM trial_user_attributes a
                    WHERE a.trial_id = t.trial_id AND a.key = 'fail_reason')
            FROM trials t ORDER BY t.number"""
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sqlalchemy.text(sql))]
        except sqlalchemy.exc.ProgrammingError:
            return []
        finally:
            engine.dispose()

    def drop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def _rss_mb(pids: list[int]) -> float:
    """Mean resident memory of these processes and their children, in MB."""
    sizes = []
    for pid in pids:
        total = 0
        for p in [pid, *_children(pid)]:
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        if total:
            sizes.append(total / 1024)
    return sum(sizes) / len(sizes) if sizes else 0.0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def measure(
    k: int,
    *,
    proxy: bool,
    separate: bool,
    epochs: int,
    seconds: float,
    per_worker: int,
    kill: bool,
) -> dict:
    """One row of the table."""
    db = Database()
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-scale-"))
    n = k * per_worker
    (folder / "sleepy.py").write_text(SLEEPY)
    study = folder / "study.toml"
    study.write_text(STUDY.format(n=n, epochs=epochs, seconds=seconds))
    env = dict(os.environ)
    if kill:  # dead workers' trials found within seconds (a heartbeat costs each worker CPU:
        # the throughput rows keep the default interval of 10 s)
        env["HPSEARCH_HEARTBEAT_INTERVAL"] = "2"
    procs: list[subprocess.Popen] = []
    proxy_proc = None
    try:
        url = db.url
        if proxy:
            port = 20000 + os.getpid() % 20000
            proxy_proc = subprocess.Popen(
                [HPSEARCH, "proxy", "--storage", db.url, "--port", str(port), "--threads", "8"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            proxy_proc.stdout.readline()  # "hpsearch proxy for ... at ..."
            url = f"grpc://127.0.0.1:{port}"
        created = subprocess.run(
            [HPSEARCH, "run", str(study), "--storage", url, "--n-trials", "1", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            cwd=folder,
        )
        assert created.returncode == 0, created.stderr
        commits_before = db.commits()
        launched = time.time()
        if separate:
            procs = [
                subprocess.Popen(
                    [HPSEARCH, "worker", "sleepy", "--storage", url, "--quiet"],
                    env=env,
                    cwd=folder,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(k)
            ]
        else:
            procs = [
                subprocess.Popen(
                    [
                        HPSEARCH,
                        "run",
                        str(study),
                        "--storage",
                        url,
                        "--workers",
                        str(k),
                        "--quiet",
                    ],
                    env=env,
                    cwd=folder,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            ]
        peak, rss, killed_at = 0, 0.0, None
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                try:
                    peak = max(peak, db.connections())
                except sqlalchemy.exc.OperationalError:  # the server is full: that is the peak
                    peak = max(peak, -1)
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        while any(p.poll() is None for p in procs):
            rows = db.trials()
            started = sum(1 for r in rows if r[0] >= 1)
            if not rss and started >= k:
                pids = [p.pid for p in procs] if separate else _children(procs[0].pid)
                rss = _rss_mb([p for p in pids if "hpsearch" in _cmd(p)])
            if kill and killed_at is None and started >= k + k // 2:
                pids = [p.pid for p in procs] if separate else _children(procs[0].pid)
                victims = [p for p in pids if "hpsearch" in _cmd(p)][: max(1, k // 4)]
                for pid in victims:
                    os.kill(pid, signal.SIGKILL)
                killed_at = time.time()
            time.sleep(0.5)
        stop.set()
        sampler.join()
        wall = time.time() - launched
        rows = db.trials()
        commits = db.commits() - commits_before
    finally:
        for p in procs:
            p.kill()
        if proxy_proc is not None:
            proxy_proc.send_signal(signal.SIGTERM)
            proxy_proc.wait(timeout=30)
        db.drop()
    mine = [r for r in rows if r[0] >= 1]
    finished = [r for r in rows if r[1] in ("COMPLETE", "PRUNED")]
    starts = sorted(r[2].timestamp() for r in mine if r[2] is not None)
    ends = sorted(r[3].timestamp() for r in mine if r[3] is not None)
    # Steady: while every worker has a trial to run, from the k-th trial's start (the last
    # worker at work) to the last trial's start (from then on, workers run out of budget).
    steady_from, steady_to = starts[min(k, len(starts)) - 1], starts[-1]
    in_window = [e for e in ends if steady_from < e <= steady_to]
    rate = len(in_window) / max(1e-9, steady_to - steady_from)
    ideal = k / (epochs * seconds)
    first_starts = starts[:k]
    startup = sorted(s - launched for s in first_starts)
    stale = [r for r in rows if r[4] and "stale" in r[4]]
    recovered = None
    if killed_at is not None and stale:
        recovered = max(r[3].timestamp() for r in stale) - killed_at
    return {
        "k": k,
        "how": ("proxy, " if proxy else "")
        + ("separate workers" if separate else "run --workers"),
        "rate": rate,
        "of_ideal": rate / ideal,
        # the whole run, from the first trial's start to the last end: the ideal's time / its
        "whole": (len(mine) / ideal) / max(1e-9, ends[-1] - starts[0]),
        "exact": len(finished) == n,
        "running": sum(r[1] == "RUNNING" for r in rows),
        "surplus": sum(bool(r[4] and "surplus" in r[4]) for r in rows),
        "peak_connections": peak,
        "tx_per_trial": commits / max(1, len(mine)),
        "startup_median": startup[len(startup) // 2] if startup else float("nan"),
        "rss_mb": rss,
        "recovered_s": recovered,
        "wall": wall,
        "n": n,
    }


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K = 64 on PostgreSQL only")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--per-worker", type=int, default=10, help="trials per worker")
    parser.add_argument("--kill", action="store_true", help="SIGKILL a quarter mid-run")
    args = parser.parse_args()
    if args.quick:
        settings = [(64, False, False)]
    else:
        settings = [
            (1, False, False),
            (8, False, False),
            (32, False, False),
            (32, False, True),
            (64, False, False),
            (64, True, False),
            (128, True, False),
        ]
    rows = []
    for k, proxy, separate in settings:
        row = measure(
            k,
            proxy=proxy,
            separate=separate,
            epochs=args.epochs,
            seconds=args.seconds,
            per_worker=args.per_worker,
            kill=args.kill,
        )
        rows.append(row)
        print(
            f"K={row['k']:>3} {row['how']:<26} {row['rate']:6.2f} trials/s = "
            f"{row['of_ideal']:.2f} of ideal (whole run {row['whole']:.2f}); "
            f"exact {row['exact']}, {row['running']} running, "
            f"{row['surplus']} surplus; peak {row['peak_connections']} connections; "
            f"{row['tx_per_trial']:.1f} tx/trial; start-up {row['startup_median']:.1f} s "
            f"(median); {row['rss_mb']:.0f} MB a worker"
            + (
                f"; killed quarter recovered in {row['recovered_s']:.0f} s"
                if row["recovered_s"] is not None
                else ""
            ),
            flush=True,
        )
    if args.quick:
        r = rows[0]
        print(
            f"scale: 64 workers on PostgreSQL, {r['n']} trials of {args.epochs} x "
            f"{args.seconds:g} s: {r['of_ideal']:.2f} of ideal, {r['peak_connections']} "
            f"connections, {r['tx_per_trial']:.1f} transactions per trial, {r['running']} "
            f"running, {r['surplus']} surplus"
        )


if __name__ == "__main__":
    main()
