"""`run --workers K --on slurm | dask://HOST:PORT`: the workers go to a cluster, and this
process follows the study from the database with the usual progress bar.

A launcher checks what it needs before the study is created (`check`), places K workers
(`start`), tells how many are still queued or running (`live`) and stops them (`stop`). The
workers are hpsearch's own worker loop, so the budget stays exact and dead workers' trials
are recovered as everywhere; the cluster only places them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError

if TYPE_CHECKING:
    import optuna

    from hpsearch.pool import WorkerTask
    from hpsearch.storage import StorageURL

POLL_S = 1.0  # how often the study is read for the bar
LIVE_S = 5.0  # how often the cluster is asked how many workers are left


def task_flags(task: WorkerTask) -> list[str]:
    """The `hpsearch worker` flags that carry a run's budget and limits."""
    flags = ["--n-trials", str(task.budget)]
    if task.timeout is not None:
        flags += ["--timeout", str(task.timeout)]
    if task.trial_timeout is not None:
        flags += ["--trial-timeout", str(task.trial_timeout)]
    return flags


class _Launcher:
    where = "the cluster"

    def follow(self, study: optuna.Study, task: WorkerTask) -> tuple[int | None, list[int]]:
        try:
            return follow(study, task, self)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of what the launcher opened (a Dask client it made itself)."""


class SlurmLauncher(_Launcher):
    """K workers as one sbatch job array (search/slurm.py)."""

    where = "Slurm"

    def __init__(self, resources: Any, *, detach: bool = False) -> None:
        self.resources = resources
        self.detach = detach
        self.job: str | None = None

    def check(self, target: StorageURL) -> None:
        from hpsearch import slurm

        slurm.check_usable(target)

    def script(self, study: str, task: WorkerTask, workers: int) -> str:
        from hpsearch import slurm

        return slurm.job_script(study, workers, self.resources, task_flags(task))

    def start(self, study: optuna.Study, target: StorageURL, task: WorkerTask, k: int) -> str:
        from hpsearch import slurm

        self.job = slurm.submit(self.script(study.study_name, task, k), target)
        slurm.record(study, self.job, k)
        return f"submitted Slurm job {self.job}: {k} workers (`squeue -j {self.job}`)"

    def live(self) -> int:
        from hpsearch import slurm

        return slurm.live([self.job]) if self.job else 0

    def stop(self) -> None:
        from hpsearch import slurm

        if self.job:
            slurm.cancel([self.job])

    def lost(self) -> str:
        out = os.path.abspath(self.resources.output)
        return f"the Slurm tasks of job {self.job} ended early; their output: {out}/"


class DaskLauncher(_Launcher):
    """K workers as Dask tasks, each running the worker loop inside a Dask worker process,
    so that nothing outlives a Dask worker that dies (its training process dies with it)."""

    where = "Dask"
    detach = False

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster  # "dask://HOST:PORT", a distributed.Client, or a cluster object
        self.client: Any = None
        self.futures: list[Any] = []
        self.stop_event: Any = None

    def check(self, target: StorageURL) -> None:
        try:
            import distributed
        except ImportError:
            raise UsageError(
                "--on dask: the Python package 'distributed' is not installed; "
                "pip install 'hpsearch[dask]'"
            ) from None
        if isinstance(self.cluster, str):
            address = "tcp://" + self.cluster.removeprefix("dask://")
            wait = os.environ.get("HPSEARCH_CLUSTER_CONNECT_TIMEOUT") or "10"
            try:
                self.client = distributed.Client(address, timeout=f"{wait}s")
            except OSError as e:
                raise UsageError(
                    f"--on {self.cluster}: no Dask scheduler answers there ({e}); start one "
                    "with `dask scheduler` and its workers with `dask worker ADDRESS`"
                ) from None
        elif isinstance(self.cluster, distributed.Client):
            self.client = self.cluster
        else:  # LocalCluster, dask-jobqueue's SLURMCluster, dask-kubernetes' clusters, ...
            self.client = distributed.Client(self.cluster)
        if not _all_local(self.client):
            from hpsearch.slurm import refuse_local_file

            refuse_local_file(target, f"--on {self.cluster}")

    def start(self, study: optuna.Study, target: StorageURL, task: WorkerTask, k: int) -> str:
        import distributed

        name = study.study_name
        self.stop_event = distributed.Event(f"hpsearch-stop-{name}-{os.getpid()}", self.client)
        self.stop_event.clear()
        self.futures = [
            self.client.submit(
                dask_worker,
                name,
                target.url,
                task_flags(task),
                self.stop_event.name,
                pure=False,
                key=f"hpsearch-{name}-{os.getpid()}-{i}",
            )
            for i in range(k)
        ]
        return f"started {k} workers on the Dask cluster at {self.client.scheduler.address}"

    def live(self) -> int:
        return sum(not f.done() for f in self.futures)

    def stop(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()

    def lost(self) -> str:
        errors = [f.exception() for f in self.futures if f.done() and f.status == "error"]
        said = f": {errors[0]}" if errors else ""
        return f"the Dask tasks ended early{said}"

    def close(self) -> None:
        if self.client is not None and self.client is not self.cluster:
            self.client.close()


def _all_local(client: Any) -> bool:
    """Whether every Dask worker runs on this machine (an SQLite file is then shared)."""
    import socket

    here = {"127.0.0.1", "localhost", socket.gethostname()}
    workers = client.scheduler_info().get("workers", {})
    return all(addr.split("://")[-1].rsplit(":", 1)[0] in here for addr in workers)


def dask_worker(study: str, url: str, flags: list[str], stop_name: str) -> int:
    """A Dask task: the worker loop of `hpsearch worker STUDY`, in this Dask worker process,
    on the threads this Dask worker has per task; stops when the run's event is set."""
    import distributed

    from hpsearch.runner import join_study
    from hpsearch.storage import StorageURL

    worker = distributed.get_worker()
    threads = max(1, (os.cpu_count() or 1) // max(1, worker.state.nthreads))
    os.environ["HPSEARCH_THREADS"] = str(threads)
    stop = distributed.Event(stop_name, distributed.get_client())
    values = dict(zip(flags[::2], flags[1::2], strict=True))
    interrupted = threading.Event()

    def watch() -> None:  # the run's Ctrl-C reaches this task through the event
        while not interrupted.is_set():
            if stop.wait(timeout=1):
                interrupted.set()

    threading.Thread(target=watch, daemon=True, name="hpsearch-stop").start()
    try:
        outcome = join_study(
            study,
            StorageURL(url, "dask task"),
            n_trials=int(values["--n-trials"]),
            timeout=float(values["--timeout"]) if "--timeout" in values else None,
            bar=False,
            failures=False,
            trial_timeout=float(values["--trial-timeout"])
            if "--trial-timeout" in values
            else None,
            hint=False,
            interrupted=interrupted,
        )
    finally:
        interrupted.set()
    return outcome.ran


def follow(study: optuna.Study, task: WorkerTask, launcher: Any) -> tuple[int | None, list[int]]:
    """The bar, from the database, until the budget is finished or no worker is left. The
    first Ctrl-C or SIGTERM stops the workers (their running trials are re-queued) and waits
    for them to end; a second stops following at once."""
    from hpsearch.progress import Progress
    from hpsearch.records import finished_count

    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) == 1:
            launcher.stop()
            progress.write(
                f"hpsearch: stopping the {launcher.where} workers (their running trials are "
                "re-queued); press Ctrl-C again to stop following at once"
            )
        else:
            raise KeyboardInterrupt

    progress = Progress(study, task.budget, bar=task.progress, failures=False)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    lost: list[int] = []
    try:
        asked = time.monotonic()
        left = launcher.live()
        while True:
            trials = study.get_trials(deepcopy=False)
            progress.refresh(trials)
            if finished_count(trials) >= task.budget and not received:
                break
            if time.monotonic() - asked >= LIVE_S:
                asked, left = time.monotonic(), launcher.live()
            if left == 0:
                if not received and finished_count(trials) < task.budget:
                    progress.write(launcher.lost())
                    lost = [1]
                break
            time.sleep(POLL_S if not received else 0.2)
            if received:
                asked, left = time.monotonic(), launcher.live()
        _until_ended(launcher)  # the workers see the budget done and end: wait for them
    except KeyboardInterrupt:
        pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        progress.close()
    return (received[0] if received else None), lost


def _until_ended(launcher: Any, seconds: float = 60.0) -> None:
    """Wait (a bounded while) for the workers to end, so that none outlives the run."""
    deadline = time.monotonic() + seconds
    while launcher.live() and time.monotonic() < deadline:
        time.sleep(0.5)
