"""The commands of `hpsearch`, one class each (search/cli.py builds the parser from them),
and the argument types and helpers they share. Each command parses its flags, calls the
package, and formats what it returns: only commands print."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def int_at_least(minimum: int):
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


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def port(text: str) -> int:
    value = int_at_least(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a whole number from 1 to 65535")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a number of seconds > 0")
    return value


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default), json for scripts",
    )


def print_json(value: Any) -> None:
    import dataclasses
    import json

    def plain(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot write {type(o).__name__} as JSON")

    print(json.dumps(value, indent=2, default=plain))


def add_budget_arguments(parser: argparse.ArgumentParser, n_trials_default: str) -> None:
    """The flags of the commands that run trials: run and worker."""
    parser.add_argument(
        "--n-trials",
        type=positive_int,
        metavar="N",
        help=f"the study's total of finished trials ({n_trials_default})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="start no new trial after this many seconds",
    )
    parser.add_argument(
        "--trial-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="stop and fail a trial that runs longer than this (overrides [study].trial_timeout)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class Command:
    """Base: the docstring's first line is the command's help."""

    storage = False  # whether the command takes --storage

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError
