"""run's flags for a cluster (--on slurm, --on dask://HOST:PORT, --dry-run, --detach) and
`hpsearch cancel`."""

from __future__ import annotations

import argparse
from typing import Any

from hpsearch.commands import Command
from hpsearch.commands import positive_int
from hpsearch.errors import UsageError


class Cancel(Command):
    """Cancel the Slurm jobs of a study (its workers' running trials are re-queued)."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name")

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.records import load_study
        from hpsearch.slurm import JOBS_ATTR
        from hpsearch.slurm import cancel
        from hpsearch.slurm import live
        from hpsearch.storage import open_storage
        from hpsearch.storage import resolve_url

        target = resolve_url(args.storage)
        study = load_study(open_storage(target, create=False), args.study, target.shown)[0]
        jobs = [j["job"] for j in study.user_attrs.get(JOBS_ATTR, [])]
        if not jobs:
            print(f"study {args.study!r} has no Slurm jobs; nothing to cancel")
            return 0
        left = live(jobs)
        cancel(jobs)
        print(f"cancelled Slurm jobs {', '.join(jobs)} of study {args.study!r} ({left} workers)")
        return 0


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """run's flags for placing its workers on a cluster (docs/workers.md)."""
    group = parser.add_argument_group("on a cluster (--on slurm, or --on dask://HOST:PORT)")
    group.add_argument(
        "--on",
        metavar="CLUSTER",
        help="place the --workers on a cluster: `slurm` (one sbatch job array) or "
        "dask://HOST:PORT (tasks on that Dask scheduler's workers)",
    )
    group.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    group.add_argument("--time", help="Slurm time limit per worker, e.g. 2:00:00")
    group.add_argument(
        "--cpus-per-worker", type=positive_int, metavar="C", help="cores per worker (default 1)"
    )
    group.add_argument("--mem", help="Slurm memory per worker, e.g. 4G")
    group.add_argument("--gpus", type=positive_int, metavar="G", help="GPUs per worker")
    group.add_argument(
        "--sbatch",
        action="append",
        default=[],
        metavar="LINE",
        help="an extra #SBATCH line, e.g. --sbatch '--account=ml' (repeatable)",
    )
    group.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="LINE",
        help="a line each job runs first, e.g. --setup 'module load python' (repeatable)",
    )
    group.add_argument(
        "--dry-run", action="store_true", help="print the job script; submit nothing"
    )
    group.add_argument(
        "--detach", action="store_true", help="return once the workers are submitted"
    )


def launcher_of(args: argparse.Namespace) -> Any:
    """The launcher --on names (None: this machine), its flags checked."""
    slurm_only = ("partition", "time", "mem", "gpus", "sbatch", "setup")
    if args.on is None:
        for flag in (*slurm_only, "cpus_per_worker", "dry_run", "detach"):
            if getattr(args, flag) not in (None, [], False):
                name = "--" + flag.replace("_", "-")
                raise UsageError(f"{name}: only with --on slurm or --on dask://HOST:PORT")
        return None
    if args.on == "slurm":
        from hpsearch.launchers import SlurmLauncher
        from hpsearch.slurm import args_of
        from hpsearch.slurm import table_of

        return SlurmLauncher(args_of(args, table_of(args.study_file)), detach=args.detach)
    if args.on.startswith("dask://"):
        for flag in (*slurm_only, "detach"):
            if getattr(args, flag) not in (None, [], False):
                name = "--" + flag.replace("_", "-")
                raise UsageError(f"{name}: a Slurm flag; --on {args.on} takes none")
        from hpsearch.launchers import DaskLauncher

        return DaskLauncher(args.on)
    raise UsageError(f"--on: got {args.on!r}; allowed: slurm, or dask://HOST:PORT")


def dry_run(args: argparse.Namespace, spec: Any, on: Any) -> int:
    """`--dry-run`: the job script the workers would run; nothing submitted or created."""
    from hpsearch.launchers import SlurmLauncher
    from hpsearch.pool import WorkerTask

    if not isinstance(on, SlurmLauncher):
        raise UsageError("--dry-run: only with --on slurm (it prints the job script)")
    budget = args.n_trials or spec.n_trials
    timeout = args.timeout if args.timeout is not None else spec.timeout
    task = WorkerTask(spec.name, budget, timeout, False, False, 0, ".", args.trial_timeout)
    print(on.script(spec.name, task, args.workers), end="")
    print(f"# dry run: nothing submitted; {args.workers} workers for study {spec.name!r}")
    return 0
