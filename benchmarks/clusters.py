"""`run --on slurm` and `--on dask://...` on the local clusters the tests start: the time from
the command to the first trial, and trials per second with 4 workers against the ideal.

Trials of a class whose one epoch sleeps 1 s, 40 of them, on a fresh PostgreSQL database each
time; the peer is the ideal (4 sleeping workers with no coordination): 4 trials a second.

    python benchmarks/clusters.py        # needs root, Slurm and munge, Dask (see .ci/run)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scale import SLEEPY  # noqa: E402
from benchmarks.scale import STUDY  # noqa: E402
from benchmarks.scale import Database  # noqa: E402
from tests.clusters import dask_cluster  # noqa: E402
from tests.clusters import slurm_cluster  # noqa: E402

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")
N, WORKERS = 40, 4


def once(on: str, env: dict[str, str]) -> str:
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-clusters-"))
    (folder / "sleepy.py").write_text(SLEEPY)
    (folder / "study.toml").write_text(STUDY.format(n=N, epochs=1, seconds=1.0))
    db = Database()
    try:
        start = time.time()
        done = subprocess.run(
            [HPSEARCH, "run", "study.toml", "--workers", str(WORKERS), "--on", on]
            + ["--storage", db.url, "--quiet"],
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
        )
        wall = time.time() - start
        assert done.returncode == 0, done.stderr
        rows = db.trials()
    finally:
        db.drop()
    # The columns hold naive local time; this machine runs in UTC, as time.time() counts.
    starts = sorted(r[2].timestamp() for r in rows)
    ends = sorted(r[3].timestamp() for r in rows)
    rate = (len(ends) - WORKERS) / (ends[-1] - starts[WORKERS - 1])
    return (
        f"{on.split(':')[0]}: first trial {starts[0] - start:.1f} s after the command; "
        f"{rate:.2f} trials/s with {WORKERS} workers = {rate / WORKERS:.2f} of the ideal "
        f"{WORKERS:.2f}; {wall:.1f} s for {N} trials"
    )


def main() -> None:
    with slurm_cluster() as slurm:
        for _ in range(2):
            print(once("slurm", slurm.env), flush=True)
    with dask_cluster(WORKERS) as dask:
        for _ in range(2):
            print(once(dask.address.replace("tcp", "dask"), dict(os.environ)), flush=True)


if __name__ == "__main__":
    main()
