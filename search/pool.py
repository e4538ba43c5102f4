"""`run --workers K`: K worker processes on this machine, one progress bar, signals passed on.

Each worker is `python -P -m hpsearch.spawned` with its task (`WorkerTask`) and the storage
URL in its environment: a function entry point, not the `hpsearch worker` command, so the CLI's
flags can change freely, and the URL (which may hold a password) is not on a command line
where `ps` would show it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.progress import Progress
from hpsearch.storage import ENV_VAR

if TYPE_CHECKING:
    import optuna

    from hpsearch.storage import StorageURL

TASK_ENV = "HPSEARCH_WORKER_TASK"


@dataclass(frozen=True)
class WorkerTask:
    """What a worker process of `run --workers` is asked to do."""

    study: str
    budget: int
    timeout: float | None
    debug: bool  # tracebacks on stderr
    progress: bool  # tell failed trials on the terminal (the parent draws the bar)
    parent: int  # the pid of `run`: the worker stops cleanly once it is gone
    folder: str  # the folder `run` ran in: put last on the worker's sys.path
    trial_timeout: float | None = None  # --trial-timeout, or the study file's

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> WorkerTask:
        return cls(**json.loads(environ[TASK_ENV]))


def run_workers(
    study: optuna.Study,
    target: StorageURL,
    task: WorkerTask,
    workers: int,
) -> tuple[int | None, list[int]]:
    """Start `workers` processes, each with the study's threads / workers, and show one bar
    for the study; each Ctrl-C or SIGTERM is passed on to them (the second stops them at once).

    A worker that stops early is reported (which one, and how) and the others go on.
    Returns the signal received, if any, and the exit codes of workers that stopped early.
    """
    from hpsearch.models.threads import requested_threads
    from hpsearch.models.threads import training_threads
    from hpsearch.records import study_threads

    # The study's count (or $HPSEARCH_THREADS) shared out, so the workers fill the cores it
    # was meant for without oversubscribing them.
    total = requested_threads() or study_threads(study.user_attrs) or training_threads()
    threads = str(max(1, total // workers))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "HPSEARCH_THREADS": threads,
        ENV_VAR: target.url,
        TASK_ENV: task.to_env(),
    }
    # `-P`: the current folder is not put first on the workers' sys.path, so a user's
    # models.py, search.py or optuna.py there cannot shadow hpsearch's packages or Optuna. The
    # worker appends it last instead (task.folder), so a module of the user's there still
    # imports by name.
    argv = [sys.executable, "-P", "-m", "hpsearch.spawned"]
    # Their own session: a Ctrl-C in the terminal reaches this process only, which forwards it
    # once (a second signal would interrupt a worker anywhere, even inside a database write).
    # They watch this process and stop cleanly if it dies (search/worker.py: watch_parent).
    # Their stderr is this terminal's: their messages (storage errors, failed trials) are seen
    # as they come, and a full pipe can never block a worker.
    procs = [
        subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    return _watch(study, task, procs)


def _watch(
    study: optuna.Study, task: WorkerTask, procs: list[subprocess.Popen]
) -> tuple[int | None, list[int]]:
    """Until every worker has ended: the bar, lost workers reported, signals forwarded."""
    progress = Progress(study, task.budget, bar=task.progress, failures=False)
    received: list[int] = []
    lost: dict[int, int] = {}

    def forward(signum: int, frame: Any) -> None:
        # The first asks each worker to stop after interrupting its trial; a second stops
        # them at once, whatever the model's code does with signals (search/trial_process.py).
        if not received:
            name = signal.Signals(signum).name
            os.write(
                2,
                f"\nhpsearch: {name}: stopping the workers after their running trials; press "
                "Ctrl-C again (or send a second SIGTERM) to stop at once\n".encode(),
            )
        received.append(signum)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT if len(received) == 1 else signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while any(proc.poll() is None for proc in procs):
            time.sleep(1.0)
            for index, proc in enumerate(procs):
                code = proc.poll()
                if code not in (None, 0) and index not in lost and not received:
                    lost[index] = code
                    progress.write(describe_exit(index, len(procs), proc))
            progress.refresh(study.get_trials(deepcopy=False))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        progress.refresh(study.get_trials(deepcopy=False))
        progress.close()
    for index, proc in enumerate(procs):  # those that stopped in the last second
        if proc.returncode != 0 and index not in lost and not received:
            lost[index] = proc.returncode
            print(describe_exit(index, len(procs), proc), file=sys.stderr, flush=True)
    return (received[0] if received else None), list(lost.values())


def describe_exit(index: int, workers: int, proc: Any) -> str:
    """Which worker stopped, and how, in one line."""
    who = f"worker {index + 1} of {workers} (pid {proc.pid})"
    code = proc.returncode
    if code < 0:
        name = signal.Signals(-code).name
        return (
            f"{who} was killed by {name}; the other workers go on, and its running trial is "
            "failed and re-queued once its heartbeat is stale"
        )
    if code in (130, 143):
        name = "SIGINT" if code == 130 else "SIGTERM"
        return (
            f"{who} was stopped by {name}; its running trial was marked failed; the others go on"
        )
    if code == 2:
        return f"{who} stopped on bad input (exit 2); its message is above"
    return f"{who} exited with code {code}; its message is above"
