"""The training process's side of search/trial_process.py: answering jobs, reporting where it
is, dying with its worker; and the signal handling both sides share (`Interrupts`).

Nothing here may take the worker with it: this module runs in the process that runs a
model's code, forked from the worker or started as a fresh interpreter (`spawned`).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.models import whereabouts
from hpsearch.models.usercode import Interrupted

if TYPE_CHECKING:
    from hpsearch.trial_process import Trainer

_PR_SET_PDEATHSIG = 1

# Exceptions that cross from the training process to the worker as themselves: the errors
# hpsearch expects from training (anything else is a bug, shown with its traceback).
_EXPECTED = (
    "hpsearch.models.training:TrainingDiverged",
    "hpsearch.models.usercode:UserCodeError",
    "hpsearch.models.usercode:Interrupted",
    "hpsearch.models.torch_training:TorchMissing",
    "hpsearch.models.custom:CustomModelError",
    "hpsearch.models.data.errors:DataError",
    "hpsearch.errors:UsageError",
)


class Interrupts:
    """Ctrl-C and SIGTERM stop the study cleanly, whatever the model's code does with signals.

    In a worker, the first signal is passed on to the training process (`trainer`), whose own
    Interrupts stop its training at once; the trial is then marked failed ("interrupted") and
    the worker stops. A second signal, or the training process not answering within
    trial_process.GRACE_S, kills it. `hint`: say on stderr that a second signal stops at once.

    In the training process (no trainer), the handler raises KeyboardInterrupt at once only
    while in `training()`; otherwise it records the signal and the next `check()` raises. An
    interrupt that lands inside Optuna's storage calls could leave a trial RUNNING forever,
    so a worker never raises from the handler while a job runs: its waiting loop does.
    """

    def __init__(self, hint: bool = False) -> None:
        self.signal: int | None = None
        self.trainer: Trainer | None = None
        self.hint = hint
        self._interruptible = False

    def _handler(self, signum: int, frame: Any) -> None:
        first = self.signal is None
        self.signal = signum
        busy = self.trainer is not None and self.trainer.busy
        if first:
            if busy:
                self.trainer.interrupt()
            if self.hint:
                name = signal.Signals(signum).name
                os.write(
                    2,
                    f"\nhpsearch: {name}: stopping after the running trial; press Ctrl-C again "
                    "(or send a second SIGTERM) to stop at once\n".encode(),
                )
            if self._interruptible:
                raise Interrupted
            return
        if busy:
            self.trainer.stop_at_once()  # the worker's waiting loop raises, at a safe point
            return
        raise Interrupted

    def check(self) -> None:
        if self.signal is not None:
            raise Interrupted

    def deliver(self, signum: int) -> None:
        """A signal that came another way (a Dask task's stop event), handled as one."""
        self._handler(signum, None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # a Dask task: its stop comes through deliver()
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        self.check()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


class Channel:
    """The training process's side of the pipe, as a job sees it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def epoch(self, payload: Any) -> str:
        """Report an epoch; the worker's answer: "go", "prune" or "stop"."""
        self.conn.send(("epoch", payload))
        return self.conn.recv()


def _die_with(parent: int) -> None:
    """The kernel kills this process when the worker dies (Linux); a worker already gone
    means exit now."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def _watch_lifeline(fd: int) -> None:
    """The worker holds the other end: end of file means it is gone; end this process and
    everything it started (its process group)."""
    with contextlib.suppress(OSError):
        while os.read(fd, 1):
            pass
    os.killpg(0, signal.SIGKILL)


def _portable(error: BaseException) -> tuple[bytes | None, str, str, str]:
    """An exception as it crosses the pipe: itself (pickled) when expected, else its name,
    message and traceback."""
    kind = f"{type(error).__module__}:{type(error).__qualname__}"
    pickled = None
    if kind in _EXPECTED:
        with contextlib.suppress(Exception):
            pickled = pickle.dumps(error)
            pickle.loads(pickled)
    return pickled, type(error).__name__, str(error), traceback.format_exc()


def _one_thread() -> None:
    """In a process forked after Torch ran: one thread, the only count its OpenMP survives."""
    from hpsearch.models.threads import THREADS_ENV

    os.environ[THREADS_ENV] = "1"
    import torch

    torch.set_num_threads(1)


SPAWNED = "from hpsearch.trial_child import spawned; spawned()"


def spawned() -> None:
    """A training process started as a fresh interpreter: its pipe, lifeline and page come as
    file descriptors; the worker's pid, sys.path and the state as the first message."""
    try:
        conn_fd, lifeline, page_fd = (int(a) for a in sys.argv[1:4])
        conn = Connection(conn_fd)
        page = mmap.mmap(page_fd, whereabouts.SIZE)
        parent, path, state = conn.recv()
        sys.path[:] = path  # a user's module imports as it does in the worker
        serve(conn, lifeline, page, state, parent)
    except BaseException:  # noqa: B036 (a bug of hpsearch's: said, then the worker sees exit 70)
        traceback.print_exc()
    finally:
        os._exit(70)


def serve(
    conn: Connection,
    lifeline: int,
    page: Any,
    state: dict[str, Any],
    parent: int,
    one_thread: bool = False,
) -> None:
    """The training process: answer jobs until told to exit or the worker is gone."""
    with contextlib.suppress(PermissionError):  # (a spawned one is already its group's leader)
        os.setpgid(0, 0)  # its own group: a Ctrl-C at the terminal reaches the worker only
    interrupts = Interrupts()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, interrupts._handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _die_with(parent)
    threading.Thread(target=_watch_lifeline, args=(lifeline,), daemon=True).start()
    # What it writes to file descriptor 1 goes to the worker's stderr.
    os.dup2(2, 1)
    stream = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.stdout = sys.stderr = stream
    whereabouts.attach(page)
    state["interrupts"] = interrupts
    if state.get("threads"):  # the study's count: the models read it, never measure one
        from hpsearch.models.threads import THREADS_ENV

        os.environ[THREADS_ENV] = str(state["threads"])
    if one_thread:
        _one_thread()
    channel = Channel(conn)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        if job is None:
            os._exit(0)
        # A signal recorded since the last job is kept: the worker forwards one only while a
        # job of its runs, so one that lands as this job is picked up still stops it.
        function, args = job
        try:
            answer = ("result", function(state, channel, *args))
        except BaseException as e:  # noqa: B036 (whatever the job raised goes to the worker)
            answer = ("error", *_portable(e))
        with contextlib.suppress(Exception):
            stream.flush()
        try:
            conn.send(answer)
        except (EOFError, OSError):
            os._exit(0)
        except Exception as e:  # an answer that cannot be pickled: a bug, said as one
            conn.send(("error", *_portable(e)))
