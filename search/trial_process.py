"""Training runs in a process of its own, which the worker supervises.

The worker (the process of `hpsearch run`, each of `run --workers`, `hpsearch worker`, and the
process of `confirm` and `retrain`) holds the storage, the heartbeat and the budget. It never
runs a model's code itself: a `Trainer` forks a training process that receives jobs (train
this configuration, save the model, evaluate the test split) over a pipe and answers them,
reporting every epoch and waiting for the worker's decision (go on, prune, stop). Whatever
that process does, the worker sees it:

- it ends (`os._exit` with any code, a signal, the out-of-memory killer): the job raises
  `ProcessEnded` at once, saying how and where (the user's file, method and epoch, read from a
  page of memory the process writes as it goes: models/whereabouts.py); the next job gets a
  fresh process;
- it runs past the job's deadline (`trial_timeout`): it is killed, and `ProcessEnded` says so;
- a first Ctrl-C or SIGTERM is passed on to it (its training stops at once, as it always
  has); if it has not answered within GRACE_S, or on a second signal, it is killed;
- the worker dies, even by SIGKILL: the kernel kills the process (PR_SET_PDEATHSIG), and a
  thread of it kills whatever it started (its process group);
- it writes to file descriptor 1: that is the worker's stderr, so machine-readable output on
  the worker's stdout stays whole;
- it leaves threads behind: it ends with os._exit, which ends them too.

The process is forked: it starts in milliseconds with the worker's modules and its dataset
already loaded (memory shared until written), and a class defined in a notebook or a script
trains as it would in the worker. The fork happens between trials, when the worker's own
threads hold no locks the training process could need. One exception: where Torch has run in
the worker's process (a program using hpsearch from Python), a fork would hang at Torch's
first parallel loop, so a model that may use Torch starts in a fresh interpreter instead
(`python -P -c ...`, search/trial_child.py: spawned), sent the dataset through the pipe. The
process's own side lives in search/trial_child.py.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import select
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.connection import Pipe
from multiprocessing.connection import wait
from typing import Any

from hpsearch import trial_child
from hpsearch.models import whereabouts
from hpsearch.models.usercode import Interrupted

GRACE_S = 10.0  # after a first Ctrl-C or SIGTERM, how long a job may take to stop
_POLL_S = 0.25  # how often a waiting worker looks at its signals and deadline


class ProcessEnded(Exception):
    """The training process ended without answering, or was killed past its deadline.

    `how`: "ended its process with exit code 3", "was killed by SIGSEGV", ...; `place`: where
    it was (models/whereabouts.py); `timeout`: the deadline in seconds when it ran past it.
    """

    def __init__(self, how: str, place: whereabouts.Place, timeout: float | None = None) -> None:
        self.how, self.place, self.timeout = how, place, timeout
        super().__init__(f"{how} in {place.describe()}")


def where(ended: ProcessEnded, kind: str) -> str:
    """Where it ended: the user's file, method and epoch, or the built-in kind and epoch."""
    place = ended.place.describe()
    return place if ended.place.file else f"{kind}, {place}"


class TrainerFailed(Exception):
    """hpsearch's own code failed in the training process: a bug; the traceback follows."""


def describe_status(status: int) -> str:
    """How a process ended, from its wait status, in words a user can act on."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"ended its process with exit code {code} (os._exit({code}) or exit() in C code)"
    name = signal.Signals(-code).name
    if -code == signal.SIGKILL:
        return "had its process killed by SIGKILL (out of memory?)"
    return f"had its process killed by {name}"


Job = Callable[..., Any]  # job(state, channel, *args): runs in the training process


class Trainer:
    """The training process of one worker, started on first use and after it dies.

    `state`: what its jobs find (the dataset, the model last trained), inherited by the fork
    (or sent to a fresh interpreter, see `start`). `kind`: the model kind it trains, which
    decides how it starts (None: any).
    Use as a context manager: on leaving, the process and anything it started are ended.
    """

    def __init__(self, state: dict[str, Any], kind: str | None = None) -> None:
        from hpsearch.models import may_use_torch
        from hpsearch.models.custom import importable_elsewhere

        self.state = state
        # False when the model can only be found in this process (a class defined in a
        # notebook, a function or __main__).
        self.spawnable = kind is None or importable_elsewhere(kind)
        self.torch = kind is None or may_use_torch(kind)
        self.page_fd = _page_file()
        self.page = mmap.mmap(self.page_fd, whereabouts.SIZE)
        self.pid: int | None = None
        self.conn: Connection | None = None
        self.pidfd: int | None = None
        self.lifeline: int | None = None
        self.busy = False  # a job is running
        self.one_thread = False  # forked after Torch ran here: it trains on one thread
        self.timeout: float | None = None  # the running job's limit in seconds
        self.stop_asked: float | None = None  # when a first signal asked the job to stop
        self.at_once = False  # a second signal: kill the job now

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The worker's side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the training process, unless it is running: forked, or in a fresh
        interpreter when this process has imported Torch (below)."""
        if self.pid is not None:
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        whereabouts.clear(self.page)
        # Torch's OpenMP threads do not survive a fork: a process forked after Torch has run
        # in this one hangs at its first parallel loop. hpsearch's own commands never run
        # Torch in the worker; a program that uses hpsearch from Python may have. Then a
        # model that may use Torch trains in a fresh interpreter, sent the state (the dataset)
        # through the pipe, or, for a class it could not import by name, in a fork that trains
        # on one thread. The NumPy kinds never touch Torch: they are forked.
        torch_risk = self.torch and "torch" in sys.modules
        self.one_thread = torch_risk and not self.spawnable
        if torch_risk and self.spawnable:
            self._spawn()
        else:
            self._fork(one_thread=self.one_thread)
        try:
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: watched by waitpid instead
            self.pidfd = None
        self.stop_asked, self.at_once = None, False

    def _fork(self, one_thread: bool) -> None:
        ours, theirs = Pipe()
        life_read, life_write = os.pipe()
        parent = os.getpid()
        with warnings.catch_warnings():  # Python 3.12+ warns of forking with threads running
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the training process; it never returns from here
            try:
                ours.close()
                os.close(life_write)
                trial_child.serve(theirs, life_read, self.page, self.state, parent, one_thread)
            finally:
                os._exit(70)
        theirs.close()
        os.close(life_read)
        self.pid, self.conn, self.lifeline = pid, ours, life_write

    def _spawn(self) -> None:
        ours, theirs = Pipe()
        life_read, life_write = os.pipe()
        passed = (theirs.fileno(), life_read, self.page_fd)
        argv = [sys.executable, "-P", "-c", trial_child.SPAWNED, *map(str, passed)]
        for fd in passed:
            os.set_inheritable(fd, True)
        try:
            pid = os.posix_spawn(sys.executable, argv, os.environ, setpgroup=0)
        finally:
            for fd in passed:
                os.set_inheritable(fd, False)
        theirs.close()
        os.close(life_read)
        self.pid, self.conn, self.lifeline = pid, ours, life_write
        ours.send((os.getpid(), list(sys.path), self.state))

    def call(
        self,
        job: Job,
        *args: Any,
        on_epoch: Callable[[Any], str] | None = None,
        timeout: float | None = None,
        after_epoch: Callable[[], None] | None = None,
    ) -> Any:
        """Run `job(state, channel, *args)` in the training process; its return value.

        `on_epoch(payload)` answers each epoch it reports; `after_epoch()` runs once the answer
        is sent, while the next epoch trains (the epoch's report goes to the database then,
        off the training's path). Raises what the job raised (the
        expected errors as themselves, anything else as TrainerFailed), Interrupted when a
        signal stopped it, ProcessEnded when its process ended or ran past `timeout` seconds.
        """
        self.start()
        self.timeout = timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        self.busy = True
        answered = False  # the process answered, and waits for its next job
        try:
            self.conn.send((job, args))
            while True:
                message = self._next(deadline)
                if message is None:
                    continue
                if message[0] == "epoch":
                    self.conn.send(on_epoch(message[1]) if on_epoch else "go")
                    if after_epoch is not None:
                        after_epoch()
                    continue
                answered = True
                if message[0] == "result":
                    return message[1]
                raise _rebuilt(*message[1:])
        except BaseException:
            if not answered:  # mid-job: whatever stopped the worker's side ends the job
                self.kill()
            raise
        finally:
            self.busy = False

    def _next(self, deadline: float | None) -> tuple | None:
        """The next message, or None after a poll with nothing to read; raises when the
        process ended, ran past the deadline, or a signal stops the job."""
        watched: list[Any] = [self.conn]
        if self.pidfd is not None:
            watched.append(self.pidfd)
        wait(watched, _POLL_S)
        if self.conn.poll():
            with contextlib.suppress(EOFError, OSError):
                return self.conn.recv()
        status = self._exited()
        now = time.monotonic()
        stopping = self.at_once or (
            self.stop_asked is not None and now - self.stop_asked > GRACE_S
        )
        if status is not None or stopping:
            place = whereabouts.read(self.page)
            self.kill(status)
            if self.stop_asked is not None or self.at_once:
                raise Interrupted
            raise ProcessEnded(describe_status(status), place)
        if deadline is not None and now > deadline:
            place = whereabouts.read(self.page)
            self.kill()
            raise ProcessEnded("was stopped", place, timeout=self.timeout)
        return None

    def _exited(self) -> int | None:
        """The wait status if the process has ended (reaped), else None."""
        if self.pidfd is not None:
            ready, _, _ = select.select([self.pidfd], [], [], 0)
            if not ready:
                return None
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return status if pid == self.pid else None

    def interrupt(self) -> None:
        """A first Ctrl-C or SIGTERM: ask the running job to stop (safe in a signal handler)."""
        if self.stop_asked is None:
            self.stop_asked = time.monotonic()
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)

    def stop_at_once(self) -> None:
        """A second signal: kill the running job now (safe in a signal handler; the waiting
        loop reaps the process and raises Interrupted)."""
        self.at_once = True
        if self.pid is not None:
            _kill_group(self.pid)

    def kill(self, status: int | None = None) -> None:
        """End the process and everything it started; reap it."""
        if self.pid is None:
            return
        _kill_group(self.pid)
        if status is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self._forget()

    def close(self) -> None:
        """Ask the process to exit; kill it (and what it started) if it does not at once."""
        if self.page_fd is not None:
            self.page.close()
            os.close(self.page_fd)
            self.page_fd = None
        if self.pid is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        if self.pidfd is not None:
            select.select([self.pidfd], [], [], 1.0)
        self.kill()

    def _forget(self) -> None:
        for close in (
            self.conn.close if self.conn else None,
            (lambda: os.close(self.pidfd)) if self.pidfd is not None else None,
            (lambda: os.close(self.lifeline)) if self.lifeline is not None else None,
        ):
            if close is not None:
                with contextlib.suppress(OSError):
                    close()
        self.pid = self.conn = self.pidfd = self.lifeline = None


def _page_file() -> int:
    """A file for the page the training process reports its whereabouts in: in memory where
    the system can (Linux's memfd), else an unlinked temporary file (macOS)."""
    try:
        fd = os.memfd_create("hpsearch-whereabouts")
    except (AttributeError, OSError):
        fd, path = tempfile.mkstemp(prefix="hpsearch-whereabouts-")
        os.unlink(path)
    os.ftruncate(fd, whereabouts.SIZE)
    return fd


def _kill_group(pid: int) -> None:
    """SIGKILL the training process's group (it and what it started), or the process alone
    if it has not made its group yet."""
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(target, signal.SIGKILL)


def _rebuilt(error: bytes | None, name: str, message: str, trace: str) -> BaseException:
    """The job's exception, as itself when it is one hpsearch expects."""
    if error is not None:
        with contextlib.suppress(Exception):
            return pickle.loads(error)
    return TrainerFailed(f"{name}: {message}\n{trace}")
