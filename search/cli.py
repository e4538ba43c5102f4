"""The `hpsearch` command: `main(argv) -> exit code`.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file, key or flag), 1 an
internal error, 128 + signal number when a run was interrupted. `--debug` shows tracebacks.
Heavy modules (optuna, numpy, the models) are imported inside the commands, so `--help` is quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from hpsearch import __version__
from hpsearch.commands import Command
from hpsearch.commands.results import Confirm
from hpsearch.commands.results import Dashboard
from hpsearch.commands.results import Export
from hpsearch.commands.results import Report
from hpsearch.commands.results import Retrain
from hpsearch.commands.results import Show
from hpsearch.commands.running import Run
from hpsearch.commands.running import Studies
from hpsearch.commands.running import Validate
from hpsearch.commands.running import Worker
from hpsearch.exits import guarded


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


_COMMANDS: dict[str, type[Command]] = {
    "run": Run,
    "worker": Worker,
    "validate": Validate,
    "studies": Studies,
    "show": Show,
    "report": Report,
    "export": Export,
    "retrain": Retrain,
    "confirm": Confirm,
    "dashboard": Dashboard,
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
