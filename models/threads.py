"""How many CPU threads training uses: the process policy, shared by the models and the
search (which sets it per worker, so that workers do not oversubscribe the cores)."""

from __future__ import annotations

import os

THREADS_ENV = "HPSEARCH_THREADS"


def training_threads() -> int:
    """The CPU threads Torch trains with: $HPSEARCH_THREADS (what `run --workers` gives each
    worker), else every core this process may use. Torch's CPU convolutions and reductions
    split their sums by thread, so the same seed on another count gives other last digits."""
    return int(os.environ.get(THREADS_ENV) or len(os.sched_getaffinity(0)))
