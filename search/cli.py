"""The `hpsearch` command: `main(argv) -> exit code`.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file, key or flag), 1 an
internal error, 128 + signal number when a run was interrupted. `--debug` shows tracebacks.
Heavy modules (optuna, numpy, the models) are imported inside the commands, so `--help` is quick.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import NoReturn

from search import __version__
from search.errors import UsageError


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


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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
        from search.study_file import load_study_file

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
        parser.add_argument("--workers", type=_positive_int, default=1, metavar="K",
                            help="worker processes on this machine, each with cores/K threads "
                                 "(default 1)")  # fmt: skip

    def run(self, args: argparse.Namespace) -> int:
        import dataclasses

        from search.runner import run_study
        from search.storage import resolve_url
        from search.study_file import load_study_file

        spec = load_study_file(args.study_file)
        if args.seed is not None:
            spec = dataclasses.replace(spec, seed=args.seed)
        return run_study(
            spec,
            resolve_url(args.storage),
            n_trials=args.n_trials,
            timeout=args.timeout,
            quiet=args.quiet,
            workers=args.workers,
            debug=args.debug,
        )


class _Worker(_Command):
    """Join a stored study from this machine and run its trials until its budget is done."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name; the study file stored with it is enough")
        _add_budget_arguments(parser, "default: as stored")
        # Set by `run --workers`: stop cleanly once that process is gone.
        parser.add_argument("--parent", type=_positive_int, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        from search.runner import join_study
        from search.storage import resolve_url

        return join_study(
            args.study,
            resolve_url(args.storage),
            n_trials=args.n_trials,
            timeout=args.timeout,
            quiet=args.quiet,
            parent=args.parent,
        )


class _Studies(_Command):
    """List the studies in the database: model, dataset, trials by state, best value."""

    storage = True

    def run(self, args: argparse.Namespace) -> int:
        import optuna

        from search.records import SPEC_ATTR
        from search.records import last_update
        from search.records import state_counts
        from search.storage import open_storage
        from search.storage import resolve_url

        target = resolve_url(args.storage)
        storage = open_storage(target, create=False)
        rows = []
        for summary in optuna.get_all_study_summaries(storage=storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            trials = study.get_trials(deepcopy=False)
            counts = state_counts(trials)
            spec = summary.user_attrs.get(SPEC_ATTR, {})
            last = last_update(trials)
            best = summary.best_trial.value if summary.best_trial else None
            rows.append(
                [
                    summary.study_name,
                    spec.get("model", {}).get("kind", "-"),
                    spec.get("data", {}).get("dataset", "-"),
                    counts["COMPLETE"],
                    counts["PRUNED"],
                    counts["FAIL"],
                    counts["RUNNING"],
                    "-" if best is None else f"{best:.4f}",
                    last or "-",
                ]
            )
        if not rows:
            print(f"no studies in {target.shown} yet; start one with `hpsearch run STUDY.toml`")
            return 0
        print(
            format_table(
                [
                    "study",
                    "model",
                    "dataset",
                    "complete",
                    "pruned",
                    "failed",
                    "running",
                    "best",
                    "last update",
                ],
                rows,
            )
        )
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

    def run(self, args: argparse.Namespace) -> int:
        from search.records import best_epoch
        from search.records import finished_count
        from search.records import load_study
        from search.records import state_counts
        from search.storage import open_storage
        from search.storage import resolve_url

        target = resolve_url(args.storage)
        study, spec = load_study(open_storage(target, create=False), args.study, target.shown)
        trials = study.get_trials(deepcopy=False)
        counts = state_counts(trials)
        print(
            f"study {spec.name!r}: {spec.model.kind} on {spec.data.dataset}, "
            f"{finished_count(trials)} of {spec.n_trials} trials finished "
            f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
            f"{counts['FAIL']} failed, {counts['RUNNING']} running)"
        )
        complete = sorted(
            (t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value, reverse=True
        )
        if not complete:
            print("no complete trial yet")
            return 0
        best = complete[0]
        print(f"\nbest trial {best.number}: validation accuracy {best.value:.4f}")
        for name, value in {**spec.model.fixed, **best.params}.items():
            print(f"  {name:<16} {_value(value)}")
        curves = best.user_attrs.get("curves", {})
        if curves.get("val_accuracy"):

            def span(key: str) -> str:
                return f"{curves[key][0]:.4g} -> {curves[key][-1]:.4g}"

            print(
                f"  seed {best.user_attrs.get('seed')}, {len(curves['val_accuracy'])} epochs "
                f"in {best.user_attrs.get('seconds', 0):.2f} s, best epoch "
                f"{best_epoch(best)}"
            )
            print(
                f"  train accuracy {span('train_accuracy')}, validation accuracy "
                f"{span('val_accuracy')}"
            )
            print(f"  train loss {span('train_loss')}, validation loss {span('val_loss')}")
        names = [p.name for p in spec.params]
        rows = [
            [t.number, f"{t.value:.4f}", f"{t.user_attrs.get('seconds', 0):.2f}"]
            + [_value(t.params[n]) if n in t.params else "-" for n in names]
            for t in complete[: args.top]
        ]
        print(f"\ntop {len(rows)} of {len(complete)} complete trials")
        print(format_table(["trial", "val acc", "seconds", *names], rows))
        return 0


def _load(args: argparse.Namespace, name: str):
    """(study, spec, storage URL) of an existing hpsearch study, or UsageError."""
    from search.records import load_study
    from search.storage import open_storage
    from search.storage import resolve_url

    target = resolve_url(args.storage)
    study, spec = load_study(open_storage(target, create=False), name, target.shown)
    return study, spec, target.shown


class _Report(_Command):
    """Write one self-contained HTML report of one or more studies."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
        parser.add_argument("-o", "--output", type=Path, default=Path("report.html"),
                            help="the HTML file to write (default report.html)")  # fmt: skip

    def run(self, args: argparse.Namespace) -> int:
        import time

        from search.report import build_report

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
        parser.add_argument("-o", "--output", type=Path, default=Path("best.json"),
                            help="the JSON file to write (default best.json)")  # fmt: skip
        parser.add_argument("--top", type=_positive_int, default=1, metavar="K",
                            help="how many of the best configurations (default 1)")  # fmt: skip

    def run(self, args: argparse.Namespace) -> int:
        import json

        from search.export import export_document
        from search.records import CONFIRM_ATTR

        study, spec, url = _load(args, args.study)
        doc = export_document(study, spec, url, args.top, str(args.output))
        try:
            args.output.write_text(json.dumps(doc, indent=2) + "\n")
        except OSError as e:
            raise UsageError(f"-o {args.output}: cannot write: {e.strerror}") from None
        best = doc["configs"][0]
        if doc["ranked_by"] == "confirm":
            c = best["confirm"]
            how = (f"mean validation accuracy {c['mean']:.4f} ± {c['std']:.4f} over "
                   f"{len(c['seeds'])} seeds in `hpsearch confirm`")  # fmt: skip
        else:
            how = f"validation accuracy {best['val_accuracy']:.4f}"
            if study.user_attrs.get(CONFIRM_ATTR):
                how += ("; the stored confirm predates trials now in the top, so it is not "
                        f"used: run `hpsearch confirm {args.study}` again")  # fmt: skip
        print(
            f"wrote {args.output}: {len(doc['configs'])} configuration(s) of {args.study!r}, "
            f"best trial {best['trial_number']} ({how}); retrain with: {doc['retrain_command']}"
        )
        return 0


class _Retrain(_Command):
    """Retrain an exported configuration, then measure test accuracy once."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("export_file", type=Path, help="a JSON file from `hpsearch export`")
        parser.add_argument("--out", type=Path, metavar="DIR",
                            help="where to write the weights and the JSON with the test accuracy"
                                 " (default retrained/STUDY-trialN)")  # fmt: skip
        parser.add_argument(
            "--rank",
            type=_positive_int,
            default=1,
            help="which configuration of the file (default 1, the best)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(self, args: argparse.Namespace) -> int:
        from search.retrain import retrain

        return retrain(args.export_file, args.out, args.rank, args.quiet)


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

    def run(self, args: argparse.Namespace) -> int:
        from search.retrain import confirm

        study, spec, _ = _load(args, args.study)
        return confirm(study, spec, args.top, args.repeats, args.quiet)


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

        from search.storage import open_storage
        from search.storage import resolve_url

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
    try:
        return args.handler.run(args)
    except BrokenPipeError:
        # `hpsearch show x | head`: the reader has gone; stop quietly, as other CLIs do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # SIGPIPE
    except UsageError as e:
        if args.debug:
            traceback.print_exc()
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in hpsearch, not bad input
        from search.storage import read_only_error
        from search.storage import read_only_problem
        from search.storage import resolve_url

        if args.debug:
            traceback.print_exc()
        problem = read_only_problem(e)
        if problem is not None:  # a write refused by a read-only database file or folder
            shown = resolve_url(getattr(args, "storage", None)).shown
            print(read_only_error(shown, problem), file=sys.stderr)
            return 2
        if not args.debug:
            print(
                f"hpsearch: internal error: {type(e).__name__}: {e} (run again with --debug "
                "for the traceback, and please report it)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
