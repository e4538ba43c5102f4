"""Reading TOML tables with one-line errors that name the file and the key.

`TableReader` is the base of the study file's readers (search/study_file.py,
search/params_file.py): every message is `<file>: <key>: <what is wrong>; <what is allowed>`.
"""

from __future__ import annotations

import difflib
from typing import Any
from typing import NoReturn

from hpsearch.errors import UsageError
from hpsearch.models.constraints import Interval


def kind_of(value: Any) -> str:
    names = {bool: "a boolean", int: "a whole number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "a table"})
    return names.get(type(value), type(value).__name__)


def did_you_mean(got: Any, allowed: tuple[str, ...] | list[str]) -> str:
    hint = difflib.get_close_matches(str(got), [str(a) for a in allowed], n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


class TableReader:
    """Validation helpers that know the file name, so every message starts with it."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> NoReturn:
        raise UsageError(f"{self.source}: {key}: {message}")

    def table(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"got {kind_of(value)}; allowed: a table")
        for name in value:
            if name not in allowed:
                self.fail(f"{key}.{name}", self.unknown("key", name, allowed))
        return value

    def unknown(self, what: str, got: Any, allowed: tuple[str, ...] | list[str]) -> str:
        return f"unknown {what} {got!r}{did_you_mean(got, allowed)}; allowed: {', '.join(allowed)}"

    def required(self, table: dict[str, Any], name: str, key: str, what: str) -> Any:
        if name not in table:
            self.fail(key, f"missing; add {name} = {what}")
        return table[name]

    def check(self, value: Any, constraint: Interval, key: str) -> Any:
        problem = constraint.check(value)
        if problem is not None:
            self.fail(key, problem)
        return value

    def choice(self, value: Any, allowed: tuple[str, ...] | list[str], key: str, what: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            self.fail(key, self.unknown(what, value, allowed))
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"got {value!r}; allowed: true or false")
        return value
