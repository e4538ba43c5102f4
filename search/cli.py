"""The `hpsearch` command: `main(argv) -> exit code`.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file, key or flag), 1 an
internal error, 128 + signal number when a run was interrupted. `--debug` shows tracebacks.
Heavy modules (optuna, numpy, the models) are imported inside the commands, so `--help` is quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import NoReturn

from hpsearch import __version__
from hpsearch.errors import UsageError
from hpsearch.exits import guarded


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a whole number >= {minimum}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _port(text: str) -> int:
    value = _int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a whole number from 1 to 65535")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a number of seconds > 0")
    return value


def _add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for scripts",
    )


def _print_json(value: Any) -> None:
    import dataclasses
    import json

    def plain(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot write {type(o).__name__} as JSON")

    print(json.dumps(value, indent=2, default=plain))


def _add_budget_arguments(parser: argparse.ArgumentParser, n_trials_default: str) -> None:
    """The flags of the commands that run trials: run and worker."""
    parser.add_argument(
        "--n-trials",
        type=_positive_int,
        metavar="N",
        help=f"the study's total of finished trials ({n_trials_default})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="start no new trial after this many seconds",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class _Command:
    """Base: the docstring's first line is the command's help."""

    storage = False  # whether the command takes --storage

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


class _Validate(_Command):
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


class _Run(_Command):
    """Run the trials of a study file, creating the study or resuming it."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study_file", type=Path, help="path of the study .toml file")
        _add_budget_arguments(parser, "overrides [study].n_trials")
        parser.add_argument(
            "--seed",
            type=_non_negative_int,
            metavar="S",
            help="overrides [study].seed (a stored study keeps its own seed)",
        )
        parser.add_argument(
            "--workers",
            type=_positive_int,
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

    def run(self, args: argparse.Namespace) -> int:
        import dataclasses

        from hpsearch.runner import run_study
        from hpsearch.storage import resolve_url
        from hpsearch.study_file import load_study_file
        from hpsearch.warm import warm_source

        spec = load_study_file(args.study_file)
        if args.seed is not None:
            spec = dataclasses.replace(spec, seed=args.seed)
        outcome = run_study(
            spec,
            resolve_url(args.storage),
            n_trials=args.n_trials,
            timeout=args.timeout,
            progress=not args.quiet,
            workers=args.workers,
            debug=args.debug,
            warm_start=warm_source(args.warm_start, "--warm-start"),
        )
        return _report_outcome(outcome)


def _report_outcome(outcome: Any) -> int:
    """The lines that end `run` and `worker`, and their exit code."""
    from hpsearch.records import accuracy
    from hpsearch.records import complete_best_first
    from hpsearch.records import state_counts
    from hpsearch.records import surplus_note
    from hpsearch.text import format_params

    study, budget = outcome.study, outcome.budget
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    name = study.study_name
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
        return 0
    if outcome.warm is not None:
        print(outcome.warm.describe())
    stopped = outcome.stopped
    if stopped is not None and outcome.finished < budget:
        print(f"stopped after {outcome.finished} of {budget} trials: {stopped['reason']}")
    if outcome.signal is not None:
        print(
            f"interrupted after {outcome.seconds:.1f} s; the running trial was marked failed, "
            "finished trials are kept; run the same command again to resume"
        )
    else:
        print(
            f"this run took {outcome.seconds:.1f} s; results are in {outcome.storage} (study "
            f"{name!r}); see `hpsearch show {name}` or `optuna-dashboard {outcome.storage}`"
        )
    if outcome.exit_code and outcome.signal is None:
        print(
            f"{len(outcome.lost)} workers stopped early (see above) and the others finished "
            f"without them, with {outcome.finished} of {budget} trials; run the same command "
            "again to finish the study",
            file=sys.stderr,
        )
    return outcome.exit_code


class _Worker(_Command):
    """Join a stored study from this machine and run its trials until its budget is done."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name; the study file stored with it is enough")
        _add_budget_arguments(parser, "default: as stored")

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
        )
        return _report_outcome(outcome)


class _Studies(_Command):
    """List the studies in the database: model, dataset, trials by state, best value."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_format_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.storage import open_storage
        from hpsearch.storage import resolve_url
        from hpsearch.summary import list_studies
        from hpsearch.text import format_table

        target = resolve_url(args.storage)
        rows = list_studies(open_storage(target, create=False))
        if args.format == "json":
            _print_json(rows)
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


class _Show(_Command):
    """Show a study's best trial (parameters, curves) and its top trials."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name (see `hpsearch studies`)")
        parser.add_argument(
            "--top",
            type=_positive_int,
            default=10,
            metavar="K",
            help="how many of the best trials to list (default 10)",
        )
        _add_format_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from collections import Counter

        from hpsearch.records import load_study
        from hpsearch.records import surplus_note
        from hpsearch.storage import open_storage
        from hpsearch.storage import resolve_url
        from hpsearch.summary import describe_study
        from hpsearch.text import format_table
        from hpsearch.text import format_value

        target = resolve_url(args.storage)
        study, spec = load_study(open_storage(target, create=False), args.study, target.shown)
        detail = describe_study(study, spec, args.top)
        if args.format == "json":
            _print_json(detail)
            return 0
        states = detail.states
        print(
            f"study {detail.study!r}: {detail.model} on {detail.dataset}, {detail.finished} of "
            f"{detail.budget} trials finished ({states['COMPLETE']} complete, "
            f"{states['PRUNED']} pruned, {states['FAIL']} failed, {states['RUNNING']} running"
            f"{surplus_note(Counter(states))})"
        )
        if detail.stopped:
            print(f"stopped after {detail.stopped['after']} trials: {detail.stopped['reason']}")
        if detail.warm:
            w = detail.warm
            print(
                f"started warm from {w['source']}: {w['added']} trials added ({w['skipped']} "
                "skipped); they inform the sampler and are not counted or ranked here"
            )
            if w.get("differs"):
                print(f"note on that warm start: {w['differs']}")
        best = detail.best
        if best is None:
            print("no complete trial yet")
            return 0
        print(f"\nbest trial {best.trial_number}: validation accuracy {best.val_accuracy:.4f}")
        for name, value in best.params.items():
            print(f"  {name:<16} {format_value(value)}")
        curves = best.curves
        if best.epochs:

            def span(key: str) -> str:
                return f"{format_value(curves[key][0])} -> {format_value(curves[key][-1])}"

            print(
                f"  seed {best.seed}, {best.epochs} epochs in {best.seconds:.2f} s, best epoch "
                f"{best.best_epoch}"
            )
            print(
                f"  train accuracy {span('train_accuracy')}, validation accuracy "
                f"{span('val_accuracy')}"
            )
            print(f"  train loss {span('train_loss')}, validation loss {span('val_loss')}")
        rows = [
            [t.trial_number, f"{t.val_accuracy:.4f}", f"{t.seconds:.2f}"]
            + [format_value(t.params[n]) if n in t.params else "-" for n in detail.searched]
            for t in detail.top
        ]
        print(f"\ntop {len(rows)} of {detail.n_complete} complete trials")
        print(format_table(["trial", "val acc", "seconds", *detail.searched], rows))
        if detail.front:
            costs = detail.objectives[1:]
            print(
                f"\nPareto front, validation accuracy against {', '.join(costs)}: "
                f"{len(detail.front)} trials; recommended (*): {detail.recommended_because}"
            )
            rows = [
                [f"{t.trial_number}{' *' if t.recommended else ''}"]
                + [format_value(t.values[n]) for n in detail.objectives]
                + [format_value(t.params[n]) if n in t.params else "-" for n in detail.searched]
                for t in detail.front
            ]
            print(format_table(["trial", *detail.objectives, *detail.searched], rows))
        return 0


def _load(args: argparse.Namespace, name: str):
    """(study, spec, storage URL) of an existing hpsearch study, or UsageError."""
    from hpsearch.records import load_study
    from hpsearch.storage import open_storage
    from hpsearch.storage import resolve_url

    target = resolve_url(args.storage)
    study, spec = load_study(open_storage(target, create=False), name, target.shown)
    return study, spec, target.shown


class _Report(_Command):
    """Write one self-contained HTML report of one or more studies."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
        parser.add_argument(
            "-o",
            "--output",
            type=Path,
            default=Path("report.html"),
            help="the HTML file to write (default report.html)",
        )

    def run(self, args: argparse.Namespace) -> int:
        import time

        from hpsearch.reports import build_report

        start = time.perf_counter()
        loaded = [_load(args, name) for name in args.studies]
        page = build_report([(study, spec) for study, spec, _ in loaded], loaded[0][2])
        try:
            args.output.write_text(page)
        except OSError as e:
            raise UsageError(f"-o {args.output}: cannot write: {e.strerror}") from None
        print(
            f"wrote {args.output} ({len(page) / 1e6:.1f} MB, {', '.join(args.studies)}) in "
            f"{time.perf_counter() - start:.1f} s; open it in a browser, no network needed"
        )
        return 0


class _Export(_Command):
    """Write a study's best configurations as JSON, for `hpsearch retrain`."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name (see `hpsearch studies`)")
        parser.add_argument(
            "-o",
            "--output",
            type=Path,
            default=Path("best.json"),
            help="the JSON file to write (default best.json)",
        )
        parser.add_argument(
            "--top",
            type=_positive_int,
            metavar="K",
            help="how many of the best configurations (default 1; for a multi-objective "
            "study, the whole Pareto front, the recommended one first)",
        )

    def run(self, args: argparse.Namespace) -> int:

        from hpsearch.exports import export_document
        from hpsearch.exports import export_json
        from hpsearch.records import CONFIRM_ATTR

        study, spec, url = _load(args, args.study)
        doc = export_document(study, spec, url, args.top, str(args.output))
        try:
            args.output.write_text(export_json(doc))
        except OSError as e:
            raise UsageError(f"-o {args.output}: cannot write: {e.strerror}") from None
        best = doc["configs"][0]
        if doc["ranked_by"] == "pareto-1se":
            how = (
                f"the recommended one of a Pareto front of {len(doc['configs'])}, validation "
                f"accuracy {best['val_accuracy']:.4f}"
            )
        elif doc["ranked_by"] == "confirm":
            c = best["confirm"]
            how = (
                f"mean validation accuracy {c['mean']:.4f} ± {c['std']:.4f} over "
                f"{len(c['seeds'])} seeds in `hpsearch confirm`"
            )
        else:
            how = f"validation accuracy {best['val_accuracy']:.4f}"
            if study.user_attrs.get(CONFIRM_ATTR):
                how += (
                    "; the stored confirm predates trials now in the top, so it is not "
                    f"used: run `hpsearch confirm {args.study}` again"
                )
        print(
            f"wrote {args.output}: {len(doc['configs'])} configuration(s) of {args.study!r}, "
            f"best trial {best['trial_number']} ({how}); retrain with: {doc['retrain_command']}"
        )
        return 0


class _Retrain(_Command):
    """Retrain an exported configuration, then measure test accuracy once."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("export_file", type=Path, help="a JSON file from `hpsearch export`")
        parser.add_argument(
            "--out",
            type=Path,
            metavar="DIR",
            help="where to write the weights and the JSON with the test accuracy"
            " (default retrained/STUDY-trialN)",
        )
        parser.add_argument(
            "--rank",
            type=_positive_int,
            default=1,
            help="which configuration of the file (default 1, the best)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.retraining import retrain
        from hpsearch.text import format_params

        r = retrain(args.export_file, args.out, args.rank, args.quiet)
        verdict = "reproduced"
        if not r.reproduced:
            verdict = (
                f"differs from the study's {r.search_val_accuracy:.6g} (bit-for-bit "
                "reproduction holds for NumPy models and for Torch on the CPU, on the trial's "
                "number of threads, which exports record)"
            )
        print(
            f"retrained trial {r.trial_number} of {r.study!r} ({r.model_kind}, "
            f"{format_params(r.params)}) in {r.seconds:.1f} s"
        )
        print(f"validation accuracy {r.val_accuracy:.4f}: {verdict}")
        print(
            f"test accuracy {r.test_accuracy:.4f} on {r.n_test} held-out samples (evaluated once)"
        )
        print(f"wrote {r.weights} and {r.document}")
        return 0


class _Confirm(_Command):
    """Retrain a study's top configurations with new seeds; rank them by mean accuracy."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name (see `hpsearch studies`)")
        parser.add_argument(
            "--top",
            type=_positive_int,
            default=3,
            metavar="K",
            help="how many of the best configurations (default 3)",
        )
        parser.add_argument(
            "--repeats",
            type=_positive_int,
            default=5,
            metavar="R",
            help="seeds per configuration (default 5)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        _add_format_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.records import CONFIRM_ATTR
        from hpsearch.retraining import confirm
        from hpsearch.text import format_params
        from hpsearch.text import format_table

        study, spec, _ = _load(args, args.study)
        results = confirm(study, spec, args.top, args.repeats, args.quiet)
        if args.format == "json":
            _print_json([r.to_dict() for r in results])
            return 0
        rows = [
            [
                rank,
                r.trial_number,
                f"{r.search_val_accuracy:.4f}",
                f"{r.mean:.4f} ± {r.std:.4f}",
                f"{min(r.val_accuracy):.4f}",
                f"{max(r.val_accuracy):.4f}",
                format_params(r.params),
            ]
            for rank, r in enumerate(results, start=1)
        ]
        print(
            f"study {study.study_name!r}: the top {len(results)} configurations, each trained "
            f"{args.repeats} times with new seeds; validation accuracy mean ± sample std"
        )
        headers = ["rank", "trial", "search", "mean ± std", "min", "max", "parameters"]
        print(format_table(headers, rows))
        print(f"stored with the study as user attr {CONFIRM_ATTR!r}")
        return 0


class _Dashboard(_Command):
    """Serve optuna-dashboard on the study database (127.0.0.1 unless --host says otherwise)."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default 127.0.0.1: this machine only)",
        )
        parser.add_argument(
            "--port", type=_port, default=8080, metavar="P", help="port (default 8080)"
        )

    def run(self, args: argparse.Namespace) -> int:
        import optuna_dashboard

        from hpsearch.storage import open_storage
        from hpsearch.storage import resolve_url

        target = resolve_url(args.storage)
        storage = open_storage(target, create=False)
        print(
            f"optuna-dashboard on {target.shown}: http://{args.host}:{args.port}/ "
            "(Ctrl-C stops it)",
            flush=True,
        )
        try:
            optuna_dashboard.run_server(storage, host=args.host, port=args.port)
        except OSError as e:
            raise UsageError(
                f"--port {args.port}: cannot listen on {args.host}: {e.strerror}"
            ) from None
        except KeyboardInterrupt:
            pass
        return 0


_COMMANDS: dict[str, type[_Command]] = {
    "run": _Run,
    "worker": _Worker,
    "validate": _Validate,
    "studies": _Studies,
    "show": _Show,
    "report": _Report,
    "export": _Export,
    "retrain": _Retrain,
    "confirm": _Confirm,
    "dashboard": _Dashboard,
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hpsearch",
        description="Hyperparameter search for small image "
        "classifiers: a study file, one command, one database.",
    )
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    with_storage = argparse.ArgumentParser(add_help=False)
    with_storage.add_argument(
        "--storage",
        metavar="URL",
        help="database URL (default: $HPSEARCH_STORAGE, else sqlite:///hpsearch.db)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command_class in _COMMANDS.items():
        command = command_class()
        parents = [common, with_storage] if command.storage else [common]
        doc = (command_class.__doc__ or "").strip().splitlines()[0]
        sub = commands.add_parser(name, help=doc, description=doc, parents=parents)
        command.add_arguments(sub)
        sub.set_defaults(handler=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(f"choose a command: {', '.join(_COMMANDS)}")
    storage = getattr(args, "storage", None)
    return guarded(lambda: args.handler.run(args), debug=args.debug, storage=storage)


if __name__ == "__main__":
    sys.exit(main())
