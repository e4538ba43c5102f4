"""Memory a second worker adds on CIFAR-10-sized data: memory-mapped cache against private copies.

    python benchmarks/shared_memory.py [--n 50000]

Writes a CIFAR-10-sized .npz (N x 32 x 32 x 3 uint8 + 10,000 test images), prepares it once
through hpsearch's cache, then starts worker processes that each load the dataset, read every
training and validation value, and train one epoch of softmax regression. For each worker it
reads /proc/PID/smaps_rollup: RSS, PSS (shared pages divided among the processes mapping them)
and USS (pages only this process holds). The figure: how much the total PSS grows when a second
worker starts. The peer, in the same run: the same workers, each holding a private copy of the
arrays, as `np.load` without memory mapping would give.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from hpsearch.models import MODELS
from hpsearch.models.data import load_dataset
data = load_dataset({path!r}, seed=0)
X, X_val = data.X_train, data.X_val
if {copy}:
    X, X_val = np.array(X), np.array(X_val)  # the peer: a private copy per worker
total = float(X.sum(dtype=np.float64)) + float(X_val.sum(dtype=np.float64))
model = MODELS["numpy.softmax"].build({{"batch_size": 256, "learning_rate": 1e-4}}, seed=0)
model.partial_fit(X, data.y_train, classes=data.classes)
model.evaluate(X_val, data.y_val)
print("ready", flush=True)
sys.stdin.readline()
"""


def smaps(pid: int) -> dict[str, int]:
    """Memory figures of a process in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, amount = line.split(":")
        values[key] = int(amount.split()[0]) / 1024
    return {
        "rss": values["Rss"],
        "pss": values["Pss"],
        "uss": values["Private_Clean"] + values["Private_Dirty"],
    }


def start(path: str, env: dict[str, str], copy: bool) -> subprocess.Popen:
    code = WORKER.format(root=str(ROOT), path=path, copy=copy)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def measure(path: str, env: dict[str, str], copy: bool) -> tuple[dict, dict, dict]:
    first = start(path, env, copy)
    alone = smaps(first.pid)
    second = start(path, env, copy)
    both = (smaps(first.pid), smaps(second.pid))
    for proc in (first, second):
        proc.communicate("\n", timeout=60)
    return alone, both[0], both[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HPSEARCH_DATA_DIR": str(Path(tmp) / "cache")}
        rng = np.random.default_rng(0)
        path = str(Path(tmp) / "cifar_sized.npz")
        np.savez(
            path,
            X_train=rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8),
            y_train=rng.integers(0, 10, args.n),
            X_test=rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8),
            y_test=rng.integers(0, 10, 10_000),
        )
        prepare = "from hpsearch.models.data import load_dataset; load_dataset({!r}, seed=0)"
        subprocess.run([sys.executable, "-c", prepare.format(path)], env=env, check=True)
        data_mib = sum(f.stat().st_size for f in (Path(tmp) / "cache").rglob("X_*.npy")) / 2**20
        print(
            f"# {args.n} x 3072 float32 training images + validation + 10,000 test: "
            f"{data_mib:.0f} MiB prepared on disk\n"
        )
        print(
            "| workers hold | worker 1 alone: RSS / PSS / USS (MiB) | with worker 2: "
            "worker 1 PSS, worker 2 RSS / PSS / USS | total PSS added by worker 2 |"
        )
        print("|---|---|---|---|")
        added = {}
        for copy, label in ((False, "memory-mapped cache (hpsearch)"), (True, "private copies")):
            alone, first, second = measure(path, env, copy)
            added[copy] = first["pss"] + second["pss"] - alone["pss"]
            print(
                f"| {label} | {alone['rss']:.0f} / {alone['pss']:.0f} / {alone['uss']:.0f} | "
                f"{first['pss']:.0f}; {second['rss']:.0f} / {second['pss']:.0f} / "
                f"{second['uss']:.0f} | {added[copy]:.0f} |"
            )
        print(
            f"\nA second worker adds {added[False]:.0f} MiB with the shared cache and "
            f"{added[True]:.0f} MiB with private copies: ratio {added[False] / added[True]:.2f}"
        )


if __name__ == "__main__":
    main()
