"""show, report, export, retrain, confirm, dashboard: the commands that read a study's
results and use them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hpsearch.commands import Command
from hpsearch.commands import add_format_argument
from hpsearch.commands import port
from hpsearch.commands import positive_int
from hpsearch.commands import print_json
from hpsearch.errors import UsageError

if TYPE_CHECKING:
    from hpsearch.summary import BestTrial
    from hpsearch.summary import StudyDetail


class Show(Command):
    """Show a study's best trial (parameters, curves) and its top trials."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name (see `hpsearch studies`)")
        parser.add_argument(
            "--top",
            type=positive_int,
            default=10,
            metavar="K",
            help="how many of the best trials to list (default 10)",
        )
        add_format_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.records import load_study
        from hpsearch.slurm import JOBS_ATTR
        from hpsearch.storage import open_storage
        from hpsearch.storage import resolve_url
        from hpsearch.summary import describe_study

        target = resolve_url(args.storage)
        study, spec = load_study(open_storage(target, create=False), args.study, target.shown)
        detail = describe_study(study, spec, args.top)
        if args.format == "json":
            print_json(detail)
            return 0
        _print_summary(detail)
        if JOBS_ATTR in study.user_attrs:  # its workers as Slurm jobs: where they are
            from hpsearch.slurm import summary

            print(summary(study.study_name, study.user_attrs))
        if detail.best is None:
            print("no complete trial yet")
            return 0
        _print_best(detail.best)
        _print_top(detail)
        if detail.front:
            _print_front(detail)
        return 0


def _print_summary(detail: StudyDetail) -> None:
    from collections import Counter

    from hpsearch.records import surplus_note

    states = detail.states
    print(
        f"study {detail.study!r}: {detail.model} on {detail.dataset}, {detail.finished} of "
        f"{detail.budget} trials finished ({states['COMPLETE']} complete, "
        f"{states['PRUNED']} pruned, {states['FAIL']} failed, {states['RUNNING']} running"
        f"{surplus_note(Counter(states))})"
    )
    if detail.threads:
        print(
            f"trains on {detail.threads} CPU threads, decided when the study was created "
            "($HPSEARCH_THREADS overrides; run --workers K shares them out)"
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


def _print_best(best: BestTrial) -> None:
    from hpsearch.text import format_value

    print(f"\nbest trial {best.trial_number}: validation accuracy {best.val_accuracy:.4f}")
    for name, value in best.params.items():
        print(f"  {name:<16} {format_value(value)}")
    curves = best.curves
    if not best.epochs:
        return

    def span(key: str) -> str:
        return f"{format_value(curves[key][0])} -> {format_value(curves[key][-1])}"

    print(
        f"  seed {best.seed}, {best.epochs} epochs in {best.seconds:.2f} s, best epoch "
        f"{best.best_epoch}"
    )
    print(f"  train accuracy {span('train_accuracy')}, validation accuracy {span('val_accuracy')}")
    print(f"  train loss {span('train_loss')}, validation loss {span('val_loss')}")


def _print_top(detail: StudyDetail) -> None:
    from hpsearch.text import format_table
    from hpsearch.text import format_value

    rows = [
        [t.trial_number, f"{t.val_accuracy:.4f}", f"{t.seconds:.2f}"]
        + [format_value(t.params[n]) if n in t.params else "-" for n in detail.searched]
        for t in detail.top
    ]
    print(f"\ntop {len(rows)} of {detail.n_complete} complete trials")
    print(format_table(["trial", "val acc", "seconds", *detail.searched], rows))


def _print_front(detail: StudyDetail) -> None:
    from hpsearch.text import format_table
    from hpsearch.text import format_value

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


def _load(args: argparse.Namespace, name: str):
    """(study, spec, storage URL) of an existing hpsearch study, or UsageError."""
    from hpsearch.records import load_study
    from hpsearch.storage import open_storage
    from hpsearch.storage import resolve_url

    target = resolve_url(args.storage)
    study, spec = load_study(open_storage(target, create=False), name, target.shown)
    return study, spec, target.shown


class Report(Command):
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


class Export(Command):
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
            type=positive_int,
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


class Retrain(Command):
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
            type=positive_int,
            default=1,
            help="which configuration of the file (default 1, the best)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.retraining import retrain
        from hpsearch.text import format_params

        r = retrain(args.export_file, args.out, args.rank, not args.quiet)
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
        if r.threads and r.trial_threads and r.threads != r.trial_threads:
            print(
                f"trained on {r.threads} threads as HPSEARCH_THREADS asks; the trial trained on "
                f"{r.trial_threads}: a Torch model's sums may then differ in the last digits"
            )
        print(
            f"test accuracy {r.test_accuracy:.4f} on {r.n_test} held-out samples (evaluated once)"
        )
        print(f"wrote {r.weights} and {r.document}")
        return 0


class Confirm(Command):
    """Retrain a study's top configurations with new seeds; rank them by mean accuracy."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", help="study name (see `hpsearch studies`)")
        parser.add_argument(
            "--top",
            type=positive_int,
            default=3,
            metavar="K",
            help="how many of the best configurations (default 3)",
        )
        parser.add_argument(
            "--repeats",
            type=positive_int,
            default=5,
            metavar="R",
            help="seeds per configuration (default 5)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
        add_format_argument(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.confirming import confirm
        from hpsearch.records import CONFIRM_ATTR
        from hpsearch.text import format_params
        from hpsearch.text import format_table

        study, spec, _ = _load(args, args.study)
        results = confirm(study, spec, args.top, args.repeats, not args.quiet)
        if args.format == "json":
            print_json([r.to_dict() for r in results])
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


class Dashboard(Command):
    """Serve optuna-dashboard on the study database (127.0.0.1 unless --host says otherwise)."""

    storage = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default 127.0.0.1: this machine only)",
        )
        parser.add_argument(
            "--port", type=port, default=8080, metavar="P", help="port (default 8080)"
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
