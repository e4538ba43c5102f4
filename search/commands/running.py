"""validate, run, worker, studies: the commands that check and run studies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hpsearch.commands import Command
from hpsearch.commands import add_budget_arguments
from hpsearch.commands import add_format_argument
from hpsearch.commands import non_negative_int
from hpsearch.commands import positive_int
from hpsearch.commands import print_json


class Init(Command):
    """Write a study to start from into this folder (quickstart.toml, or a shipped example)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "example",
            nargs="?",
            default="quickstart",
            help="which shipped study (default quickstart: digits, offline, under a minute)",
        )
        parser.add_argument(
            "--list", action="store_true", help="list the shipped studies and exit"
        )

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.examples import examples
        from hpsearch.examples import init

        if args.list:
            for example in examples().values():
                print(example.describe())
            return 0
        written = init(args.example, Path.cwd())
        names = ", ".join(p.name for p in written)
        print(f"wrote {names}; now: hpsearch run {written[0].name}")
        return 0


class Validate(Command):
    """Check a study file without running it; exit 0 when it is valid."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study_file", type=Path, help="path of the study .toml file")

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.study_file import load_study_file

        spec = load_study_file(args.study_file)
        print(
            f"{args.study_file}: valid; study {spec.name!r}, {spec.model.kind} on "
            f"{spec.data.dataset}, {len(spec.params)} searched parameters, "
            f"{spec.n_trials} trials"
        )
        return 0


class Run(Command):
    """Run the trials of a study file, creating the study or resuming it."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study_file", type=Path, help="path of the study .toml file")
        add_budget_arguments(parser, "overrides [study].n_trials")
        parser.add_argument(
            "--seed",
            type=non_negative_int,
            metavar="S",
            help="overrides [study].seed (a stored study keeps its own seed)",
        )
        parser.add_argument(
            "--workers",
            type=positive_int,
            default=1,
            metavar="K",
            help="worker processes on this machine, each with cores/K threads (default 1)",
        )
        parser.add_argument(
            "--warm-start",
            metavar="SOURCE",
            help="a new study starts from the finished trials of study SOURCE (same storage) "
            "or from an export file SOURCE.json; overrides [study].warm_start",
        )
        from hpsearch.commands.cluster import add_cluster_arguments

        add_cluster_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        import dataclasses

        from hpsearch.runner import run_study
        from hpsearch.storage import resolve_url
        from hpsearch.study_file import load_study_file
        from hpsearch.warm import warm_source

        spec = load_study_file(args.study_file)
        if args.seed is not None:
            spec = dataclasses.replace(spec, seed=args.seed)
        from hpsearch.commands.cluster import dry_run
        from hpsearch.commands.cluster import launcher_of

        on = launcher_of(args)
        if args.dry_run:
            return dry_run(args, spec, on)
        outcome = run_study(
            spec,
            resolve_url(args.storage),
            n_trials=args.n_trials,
            timeout=args.timeout,
            progress=not args.quiet,
            workers=args.workers,
            debug=args.debug,
            warm_start=warm_source(args.warm_start, "--warm-start"),
            trial_timeout=args.trial_timeout,
            on=on,
        )
        return report_outcome(outcome)


def _detached(outcome: Any) -> int:
    name = outcome.study.study_name
    print(
        f"study {name!r}: {outcome.finished} of {outcome.budget} trials finished; its workers "
        f"are submitted: `hpsearch show {name}` follows them, `hpsearch cancel {name}` "
        "cancels them"
    )
    return 0


def report_outcome(outcome: Any, worker: bool = False) -> int:
    """The lines that end `run` and `worker` (`worker`), and their exit code."""
    from hpsearch.records import accuracy
    from hpsearch.records import complete_best_first
    from hpsearch.records import state_counts
    from hpsearch.records import surplus_note
    from hpsearch.text import format_params

    study, budget = outcome.study, outcome.budget
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    name = study.study_name
    if outcome.detached:
        return _detached(outcome)
    if outcome.nothing_to_run:
        print(
            f"study {name!r} already has {outcome.finished} finished trials (budget "
            f"{budget}); nothing to run"
        )
    print(
        f"study {name!r}: {outcome.finished} of {budget} trials finished "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed"
        f"{surplus_note(counts)})"
    )
    if counts["COMPLETE"]:
        best = complete_best_first(trials)[0]
        print(
            f"best validation accuracy {accuracy(best):.4f} (trial {best.number}): "
            f"{format_params(best.params)}"
        )
    if outcome.nothing_to_run:
        return _say_why_not_zero(outcome, trials)
    if outcome.warm is not None:
        print(outcome.warm.describe())
    stopped = outcome.stopped
    if stopped is not None and outcome.finished < budget:
        print(f"stopped after {outcome.finished} of {budget} trials: {stopped['reason']}")
    who = "this worker" if worker else "this run"
    trained = f"{outcome.ran} trial{'s' if outcome.ran != 1 else ''}"
    if outcome.signal is not None:
        print(
            f"interrupted after {outcome.seconds:.1f} s and {trained} trained by {who}; the "
            "running trial was marked failed, finished trials are kept; run the same command "
            "again to resume"
        )
    else:
        from hpsearch.grpc_client import is_proxy

        dashboard = (  # optuna-dashboard's own command takes no proxy
            f"hpsearch dashboard --storage {outcome.storage}"
            if is_proxy(outcome.storage)
            else f"optuna-dashboard {outcome.storage}"
        )
        print(
            f"{who} took {outcome.seconds:.1f} s and trained {trained}; it stopped because "
            f"{_WHY.get(outcome.why, outcome.why).format(budget=budget)}; results are in "
            f"{outcome.storage} (study {name!r}); see `hpsearch show {name}` or "
            f"`{dashboard}`"
        )
    return _say_why_not_zero(outcome, trials)


_WHY = {
    "budget": "the study has its {budget} finished trials",
    "timeout": "its --timeout ([study].timeout) was up",
    "stop rule": "the stop rule decided the search has converged",
    "workers lost": "its workers stopped early (see above)",
}


def _say_why_not_zero(outcome: Any, trials: list[Any]) -> int:
    """The exit code; when it says no trial is complete or workers were lost, a last line on
    stderr says why."""
    from hpsearch.records import fail_reason
    from hpsearch.runner import NO_COMPLETE_TRIAL

    code, name = outcome.exit_code, outcome.study.study_name
    if code == NO_COMPLETE_TRIAL:
        failed = [
            t
            for t in trials
            if t.state.name == "FAIL" and not fail_reason(t).startswith("surplus")
        ]
        why = f"; the first failure: {fail_reason(failed[0])}" if failed else ""
        print(
            f"no trial of study {name!r} is complete, so there is no best configuration "
            f"(exit code {code}){why}",
            file=sys.stderr,
        )
    elif code and outcome.signal is None:
        print(
            f"{len(outcome.lost)} workers stopped early (see above) and the others finished "
            f"without them, with {outcome.finished} of {outcome.budget} trials; run the same "
            "command again to finish the study",
            file=sys.stderr,
        )
    return code


class Worker(Command):
    """Join a stored study from this machine and run its trials until its budget is done."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name; the study file stored with it is enough")
        add_budget_arguments(parser, "default: as stored")

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.runner import join_study
        from hpsearch.storage import resolve_url

        outcome = join_study(
            args.study,
            resolve_url(args.storage),
            n_trials=args.n_trials,
            timeout=args.timeout,
            bar=not args.quiet,
            failures=not args.quiet,
            trial_timeout=args.trial_timeout,
        )
        return report_outcome(outcome, worker=True)


class Proxy(Command):
    """Serve a database to many workers through Optuna's gRPC proxy (workers: --storage grpc://HOST:PORT)."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from hpsearch.commands import port
        from hpsearch.grpc_client import DEFAULT_PORT
        from hpsearch.grpc_client import DEFAULT_THREADS

        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default 127.0.0.1; 0.0.0.0 for other machines)",
        )
        parser.add_argument(
            "--port", type=port, default=DEFAULT_PORT, metavar="P", help="port (default 13000)"
        )
        parser.add_argument(
            "--threads",
            type=positive_int,
            default=DEFAULT_THREADS,
            metavar="N",
            help="requests served at once, and database connections held (default 8)",
        )

    def run(self, args: argparse.Namespace) -> int:
        import signal

        from hpsearch.proxy import serve
        from hpsearch.storage import resolve_url

        def interrupted(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupted)
        target = resolve_url(args.storage)

        def ready() -> None:
            print(
                f"hpsearch proxy for {target.shown} at grpc://{args.host}:{args.port} "
                f"({args.threads} connections); workers: --storage grpc://{args.host}:"
                f"{args.port}; Ctrl-C stops it",
                flush=True,
            )

        def log(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        try:
            serve(
                target, host=args.host, port=args.port, threads=args.threads, log=log, ready=ready
            )
        except KeyboardInterrupt:
            print("proxy stopped", file=sys.stderr, flush=True)
        return 0


class Studies(Command):
    """List the studies in the database: model, dataset, trials by state, best value."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_format_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.storage import open_storage
        from hpsearch.storage import resolve_url
        from hpsearch.summary import list_studies
        from hpsearch.text import format_table

        target = resolve_url(args.storage)
        rows = list_studies(open_storage(target, create=False))
        if args.format == "json":
            print_json(rows)
            return 0
        if not rows:
            print(f"no studies in {target.shown} yet; start one with `hpsearch run STUDY.toml`")
            return 0
        headers = ["study", "model", "dataset", "complete", "pruned", "failed", "running"]
        table = [
            [
                r.study,
                r.model or "-",
                r.dataset or "-",
                r.complete,
                r.pruned,
                r.failed,
                r.running,
                "-" if r.best is None else f"{r.best:.4f}",
                r.last_update or "-",
            ]
            for r in rows
        ]
        print(format_table([*headers, "best", "last update"], table))
        return 0
