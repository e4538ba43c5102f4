"""How many CPU threads training uses: the process policy, shared by the models and the
search (which sets it per worker, so that workers do not oversubscribe the cores).

$HPSEARCH_THREADS, when set (by the user, or by `run --workers` for each worker), is the count.
Otherwise a model measures a few training steps on 1 thread and on every core, once per shape
in a process, and trains on the faster: a Torch model its network (small networks lose more to
threading overhead than they gain, benchmarks/torch_epoch.py), a NumPy model one batch's loss
and gradients with its BLAS limited (threadpoolctl; a 784-64-10 MLP at batch 64 trains 1.24x
slower on 2 BLAS threads than on 1 here, a 784-512-512-10 one 1.5x faster). A training of fewer
than WORTH_MEASURING steps in all is too short to pay for the measurement: it uses every core.
Torch's CPU convolutions and reductions split their sums by thread, so another count gives
other last digits: each trial stores the count it trained on, and `retrain` uses it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from collections.abc import Hashable

THREADS_ENV = "HPSEARCH_THREADS"
_CHOSEN: dict[Hashable, int] = {}  # the measured choice, by network shape, for this process
WORTH_MEASURING = 200  # training steps; shorter trainings take every core unmeasured


def cores() -> int:
    return len(os.sched_getaffinity(0))


def requested_threads() -> int | None:
    """$HPSEARCH_THREADS, when set."""
    value = os.environ.get(THREADS_ENV)
    return int(value) if value else None


def training_threads() -> int:
    """The thread count asked for ($HPSEARCH_THREADS), else every core."""
    return requested_threads() or cores()


def fastest_threads(
    key: Hashable, steps: Callable[[int], float], planned_steps: int | None = None
) -> int:
    """The requested count, else the faster of 1 thread and every core for `key`: `steps(n)`
    returns the seconds of a few training steps on n threads (measured once per key).

    A training of fewer than WORTH_MEASURING `planned_steps` (batches) is not measured: the
    eight measured steps would be a large share of it, more than a wrong choice could cost.
    It trains on every core, PyTorch's own default.
    """
    requested = requested_threads()
    if requested is not None:
        return requested
    if cores() == 1:
        return 1
    if key not in _CHOSEN and planned_steps is not None and planned_steps < WORTH_MEASURING:
        return cores()
    if key not in _CHOSEN:
        timings = {n: steps(n) for n in (1, cores())}
        _CHOSEN[key] = min(timings, key=lambda n: (timings[n], n))
    return _CHOSEN[key]


def limit_blas(threads: int) -> None:
    """NumPy's BLAS uses `threads` from now on in this process (as torch.set_num_threads does
    for Torch): the NumPy kinds' counterpart of the Torch choice."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def time_steps(step: Callable[[], None], repeats: int = 3) -> float:
    """Seconds of the fastest of `repeats` calls of `step`, after one warm-up call."""
    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best
