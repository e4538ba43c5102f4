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

from hpsearch.commands import Command
from hpsearch.commands.cluster import Cancel
from hpsearch.commands.results import Confirm
from hpsearch.commands.results import Dashboard
from hpsearch.commands.results import Export
from hpsearch.commands.results import Report
from hpsearch.commands.results import Retrain
from hpsearch.commands.results import Show
from hpsearch.commands.running import Init
from hpsearch.commands.running import Proxy
from hpsearch.commands.running import Run
from hpsearch.commands.running import Studies
from hpsearch.commands.running import Validate
from hpsearch.commands.running import Worker
from hpsearch.exits import guarded
from hpsearch.version import VERSION as __version__


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


_COMMANDS: dict[str, type[Command]] = {
    "init": Init,
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
    "proxy": Proxy,
    "cancel": Cancel,
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hpsearch",
        description="Hyperparameter search for small image "
        "classifiers: a study file, one command, one database.",
        epilog="Start here: `hpsearch init` writes quickstart.toml into this folder (digits, "
        "offline, under a minute); `hpsearch run quickstart.toml` runs it; `hpsearch show "
        "quickstart` shows the best trial. `hpsearch init --list` lists the other shipped "
        "studies.",
    )
    parser.add_argument("--version", action="version", version=f"hpsearch {__version__}")
    # The commands' flags are also taken before the command (`hpsearch --storage URL studies`).
    parser.add_argument("--debug", dest="debug_first", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", dest="storage_first", metavar="URL", help=argparse.SUPPRESS)
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
    if args.storage_first is not None:
        if not hasattr(args, "storage"):
            parser.error(f"--storage: `hpsearch {args.command}` reads no database")
        if args.storage is None:  # given after the command too: that one wins
            args.storage = args.storage_first
    args.debug = args.debug or args.debug_first
    storage = getattr(args, "storage", None)
    return guarded(lambda: args.handler.run(args), debug=args.debug, storage=storage)


if __name__ == "__main__":
    sys.exit(main())
