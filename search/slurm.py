"""`run --on slurm`: a study's workers as one Slurm job array, followed from the database.

The study is created or resumed here, as by any run; then `sbatch` gets one job array of K
tasks, each running `hpsearch worker STUDY` against the study's storage with the threads Slurm
gave it (`HPSEARCH_THREADS=$SLURM_CPUS_PER_TASK`). The storage URL goes through the job's
environment (Slurm exports the submitting one), not into the script, so a password is never
in a file or on a command line. The job ids are stored with the study (`hpsearch_slurm_jobs`):
`hpsearch show` counts its workers queued, running and done with `squeue`, and `hpsearch
cancel STUDY` cancels them. Only sbatch, squeue and scancel are used: no accounting daemon.

A task Slurm cancels or preempts gets SIGTERM, then SIGKILL after the cluster's KillWait: the
worker stops its trial at the first, and the trial is re-queued with the same parameters and
seed (search/worker.py); a node lost without a signal is recovered by the heartbeat.
"""

from __future__ import annotations

import datetime
import os
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError

if TYPE_CHECKING:
    import optuna

    from hpsearch.storage import StorageURL

JOBS_ATTR = "hpsearch_slurm_jobs"
# A Slurm command that does not answer within this many seconds is reported, not waited on.
COMMAND_TIMEOUT_S = 60


@dataclass(frozen=True)
class SlurmResources:
    """What each worker asks Slurm for (flags `--partition` ... and the study file's
    `[slurm]` table; flags win)."""

    partition: str | None = None
    time: str | None = None  # Slurm's format: "MM", "HH:MM:SS", "D-HH:MM"
    cpus_per_worker: int = 1
    mem: str | None = None  # "4G", "500M"
    gpus: int | None = None
    sbatch: tuple[str, ...] = ()  # extra lines, with or without the "#SBATCH " prefix
    setup: tuple[str, ...] = ()  # lines the job runs first: module load, source venv/bin/activate
    output: str = field(default=".")  # the folder of the tasks' output files


def job_name(study: str) -> str:
    return f"hpsearch-{study}"


def job_script(study: str, workers: int, res: SlurmResources, task_flags: list[str]) -> str:
    """The sbatch script of K workers of `study` (the storage comes from the environment)."""
    out = os.path.join(os.path.abspath(res.output), f"{job_name(study)}-%A_%a.out")
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name(study)}",
        f"#SBATCH --array=0-{workers - 1}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={res.cpus_per_worker}",
        f"#SBATCH --output={out}",
        f"#SBATCH --chdir={os.getcwd()}",
    ]
    if res.partition:
        lines.append(f"#SBATCH --partition={res.partition}")
    if res.time:
        lines.append(f"#SBATCH --time={res.time}")
    if res.mem:
        lines.append(f"#SBATCH --mem={res.mem}")
    if res.gpus:
        lines.append(f"#SBATCH --gpus-per-task={res.gpus}")
    for extra in res.sbatch:
        extra = extra.strip()
        lines.append(extra if extra.startswith("#SBATCH") else f"#SBATCH {extra}")
    lines += ["", *res.setup]
    worker = [sys.executable, "-m", "hpsearch.cli", "worker", study, "--quiet", *task_flags]
    lines += [
        "# the threads Slurm gave this task, for BLAS and torch alike",
        "export HPSEARCH_THREADS=${SLURM_CPUS_PER_TASK:-1}",
        "export OMP_NUM_THREADS=$HPSEARCH_THREADS OPENBLAS_NUM_THREADS=$HPSEARCH_THREADS "
        "MKL_NUM_THREADS=$HPSEARCH_THREADS",
        'echo "hpsearch worker for study ' + study + " on $(hostname), task "
        '${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID}"',
        # exec: the worker is the task's process, so Slurm's signals reach it directly
        "exec " + shlex.join(worker),
        "",
    ]
    return "\n".join(lines)


def check_usable(target: StorageURL) -> None:
    """Before anything is created: the storage must be reachable from other machines, and
    Slurm's commands must be here."""
    refuse_local_file(target, "--on slurm")
    if shutil.which("sbatch") is None:
        raise UsageError(
            "--on slurm: no `sbatch` on PATH; run this on a machine that submits Slurm jobs "
            "(a login node), or load Slurm's module first"
        )


def refuse_local_file(target: StorageURL, flag: str) -> None:
    """An SQLite file lives on this machine's disk, which other machines may not reach (and
    SQLite's locks fail on network file systems)."""
    from hpsearch.grpc_client import is_proxy

    if not is_proxy(target.url) and target.url.startswith("sqlite"):
        raise UsageError(
            f"{flag}: the storage {target.shown} is a file on this machine, which the "
            "cluster's nodes may not reach (and SQLite's locks fail on network file "
            "systems); use PostgreSQL (--storage postgresql://user@host/db) or an "
            "`hpsearch proxy` (--storage grpc://host:port)"
        )


def _slurm(argv: list[str], stdin: str | None = None, env: dict | None = None) -> str:
    """Run a Slurm command; its own message, in one line, if it fails."""
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            env=env,
        )
    except FileNotFoundError:
        raise UsageError(f"--on slurm: no `{argv[0]}` on PATH") from None
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"--on slurm: `{argv[0]}` did not answer within {COMMAND_TIMEOUT_S} s; is "
            "slurmctld up (`scontrol ping`)?"
        ) from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        what = "refused the job" if argv[0] == "sbatch" else "refused"
        raise UsageError(f"--on slurm: {argv[0]} {what}: {said}")
    return done.stdout


def submit(script: str, target: StorageURL) -> str:
    """sbatch the script with the storage URL in the job's environment; the job id."""
    from hpsearch.storage import ENV_VAR

    env = {**os.environ, ENV_VAR: target.url}
    out = _slurm(["sbatch", "--parsable", "--export=ALL"], stdin=script, env=env)
    return out.strip().split(";")[0]


def record(study: optuna.Study, job_id: str, workers: int) -> None:
    jobs = list(study.user_attrs.get(JOBS_ATTR, []))
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    jobs.append({"job": job_id, "workers": workers, "submitted": now})
    study.set_user_attr(JOBS_ATTR, jobs)


def states(job_ids: list[str]) -> Counter:
    """Tasks of these jobs by state: PENDING, RUNNING, ... as squeue says; finished tasks
    are no longer listed (counted by the caller from the number submitted)."""
    if not job_ids:
        return Counter()
    out = _slurm(["squeue", "-h", "-r", "-j", ",".join(job_ids), "-o", "%T"])
    return Counter(line.strip() for line in out.splitlines() if line.strip())


def summary(name: str, user_attrs: dict[str, Any]) -> str | None:
    """`hpsearch show`'s line: the study's Slurm workers queued, running and done."""
    jobs = user_attrs.get(JOBS_ATTR)
    if not jobs:
        return None
    ids = [j["job"] for j in jobs]
    total = sum(j["workers"] for j in jobs)
    try:
        counts = states(ids)
    except UsageError as e:
        return f"Slurm jobs {', '.join(ids)} ({total} workers): cannot ask Slurm ({e})"
    queued = counts["PENDING"] + counts["CONFIGURING"]
    running = counts["RUNNING"] + counts["COMPLETING"]
    done = max(0, total - sum(counts.values()))
    return (
        f"Slurm jobs {', '.join(ids)}: {queued} workers queued, {running} running, "
        f"{done} done (`hpsearch cancel {name}` cancels them)"
    )


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        _slurm(["scancel", *job_ids])


def live(job_ids: list[str]) -> int:
    """How many tasks of these jobs are still queued or running."""
    return sum(states(job_ids).values())


def args_of(args: Any, table: dict[str, Any] | None) -> SlurmResources:
    """Flags over the study file's [slurm] table over the defaults."""
    table = table or {}

    def pick(name: str, default: Any = None) -> Any:
        flag = getattr(args, name, None)
        return flag if flag not in (None, []) else table.get(name, default)

    return SlurmResources(
        partition=pick("partition"),
        time=pick("time"),
        cpus_per_worker=pick("cpus_per_worker", 1),
        mem=pick("mem"),
        gpus=pick("gpus"),
        sbatch=tuple(pick("sbatch", ())),
        setup=tuple(pick("setup", ())),
        output=pick("output", "."),
    )


_TABLE = {
    "partition": str,
    "time": str,
    "cpus_per_worker": int,
    "mem": str,
    "gpus": int,
    "sbatch": list,
    "setup": list,
    "output": str,
}


def table_of(study_file: Any) -> dict[str, Any]:
    """The study file's [slurm] table, checked: one line naming the key if it is wrong."""
    import tomllib

    with open(study_file, "rb") as f:
        table = tomllib.load(f).get("slurm", {})
    for key, value in table.items():
        where = f"{study_file}: [slurm].{key}"
        kind = _TABLE.get(key)
        if kind is None:
            raise UsageError(f"{where}: unknown key; allowed: {', '.join(_TABLE)}")
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is list:
            ok = ok and all(isinstance(v, str) for v in value)
        if kind is int:
            ok = ok and value >= 1
        if not ok:
            wanted = {str: "a string", int: "a whole number >= 1", list: "a list of strings"}
            raise UsageError(f"{where}: got {value!r}; allowed: {wanted[kind]}")
    return table
