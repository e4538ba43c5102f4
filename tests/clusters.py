"""Real clusters for the tests, started on 127.0.0.1 and stopped afterwards: a single-node
Slurm (munged, slurmctld and slurmd from Debian's packages, as root, everything in a temporary
folder, on free ports) and a Dask scheduler with two workers.

`.ci/run` installs Slurm and Dask, and sets HPSEARCH_REQUIRE_CLUSTERS=1: a missing one then
fails the tests instead of skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ENV = "HPSEARCH_REQUIRE_CLUSTERS"


def _missing(what: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{what}, and {REQUIRE_ENV} is set (.ci/run installs it)")
    pytest.skip(f"{what} (.ci/run installs it)")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up within {seconds} s")
        time.sleep(0.2)


class Slurm:
    """A running single-node Slurm; `env` is what its commands (and jobs) need."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.conf = folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> str:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, done.stderr
        return done.stdout

    def tasks(self, job: str) -> list[tuple[str, str]]:
        """(task id, state) of a job's tasks still queued or running."""
        out = self.run("squeue", "-h", "-r", "-j", job, "-o", "%i %T", check=False)
        return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def _config(folder: Path, ctld_port: int, slurmd_port: int) -> str:
    host = socket.gethostname().split(".")[0]
    return f"""\
ClusterName=hpsearch-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.socket
CredType=cred/munge
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobCompType=jobcomp/filetxt
JobCompLoc={folder}/jobcomp.txt
ReturnToService=2
MpiDefault=none
KillWait=5
InactiveLimit=0
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def slurm_cluster() -> Iterator[Slurm]:
    """munged, slurmctld and slurmd, as root, with their own key, socket, state and logs in a
    temporary folder (every folder above the socket reachable by all, the key's 0700)."""
    if os.geteuid() != 0:
        _missing("a single-node Slurm is started as root")
    for daemon in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch"):
        if shutil.which(daemon) is None and not Path(f"/usr/sbin/{daemon}").exists():
            _missing(f"no {daemon} (Debian: slurmctld slurmd slurm-client munge)")
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-slurm-", dir="/tmp"))
    folder.chmod(0o755)
    for sub in ("munge", "key", "state", "spool"):
        (folder / sub).mkdir()
    (folder / "munge").chmod(0o755)
    (folder / "key").chmod(0o700)
    key = folder / "key" / "munge.key"
    sbin = "/usr/sbin"
    subprocess.run([f"{sbin}/mungekey", "--create", f"--keyfile={key}"], check=True)
    munge = [
        f"{sbin}/munged",
        f"--socket={folder}/munge/munge.socket",
        f"--key-file={key}",
        f"--log-file={folder}/munged.log",
        f"--pid-file={folder}/munge/munged.pid",
        f"--seed-file={folder}/munge/seed",
    ]
    subprocess.run(munge, check=True)
    cluster = Slurm(folder)
    cluster.conf.write_text(_config(folder, *_free_ports(2)))
    pids = [folder / "munge" / "munged.pid", folder / "slurmctld.pid", folder / "slurmd.pid"]
    try:
        subprocess.run([f"{sbin}/slurmctld", "-f", str(cluster.conf)], check=True, env=cluster.env)
        subprocess.run([f"{sbin}/slurmd", "-f", str(cluster.conf)], check=True, env=cluster.env)

        def idle() -> bool:
            out = cluster.run("sinfo", "-h", "-o", "%t", check=False).strip()
            return out == "idle"

        _wait(idle, 60, "slurmctld and slurmd")
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.run("scancel", "--user=root", check=False)
        for pid_file in reversed(pids):
            _stop(pid_file)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(pid_file: Path) -> None:
    """Stop a daemon by its pid file, SIGKILL after 10 s."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


class Dask:
    def __init__(self, address: str, workers: subprocess.Popen) -> None:
        self.address = address  # tcp://127.0.0.1:PORT
        self.workers = workers

    def worker_pids(self) -> list[int]:
        """The Dask worker processes (the nanny's children)."""
        import distributed

        with distributed.Client(self.address, timeout="10s") as client:
            return list(client.run(os.getpid).values())


@contextlib.contextmanager
def dask_cluster(n_workers: int = 2, env: dict[str, str] | None = None) -> Iterator[Dask]:
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1` on 127.0.0.1 (the
    workers with `env` added to this environment)."""
    try:
        import distributed
    except ImportError:
        _missing("no Dask distributed (pip install 'hpsearch[dask]')")
    port, dashboard = _free_ports(2)
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    scheduler = subprocess.Popen(
        [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
        + ["--dashboard-address", f"127.0.0.1:{dashboard}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = open(os.path.join(tempfile.gettempdir(), f"hpsearch-dask-{port}.log"), "w")  # noqa: SIM115
    workers = subprocess.Popen(
        [str(bin_dir / "dask"), "worker", address, "--nworkers", str(n_workers)]
        + ["--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
        stdout=log,
        stderr=log,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    try:

        def ready() -> bool:
            try:
                with distributed.Client(address, timeout="2s") as client:
                    return len(client.scheduler_info()["workers"]) == n_workers
            except OSError:
                return False

        _wait(ready, 120, "the Dask scheduler and its workers")
        yield Dask(address, workers)
    finally:
        for proc in (workers, scheduler):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (workers, scheduler):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
