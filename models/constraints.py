"""Declared argument constraints, shared by model validation and study-file validation.

Each model class carries `_parameter_constraints = {argument: constraint}` (the idea of
scikit-learn's `_parameter_constraints`). The model checks its arguments in `fit`, and the study
file is checked against the same table before anything touches storage, so a value the model
would reject is reported with the study file's key instead of failing inside a trial.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Interval:
    """A number between `low` and `high` (None = unbounded); `integer` asks for whole numbers."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False  # True: low itself is not allowed
    high_open: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return kind + (" " + " and ".join(parts) if parts else "")

    def check(self, value: Any) -> str | None:
        """Return why `value` is not allowed, or None when it is."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"got {value!r}; allowed: {self.describe()}"
        if self.integer and not isinstance(value, numbers.Integral):
            return f"got {value!r}; allowed: {self.describe()}"
        if not math.isfinite(value):
            return f"got {value!r}; allowed: {self.describe()}"
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return f"got {value!r}; allowed: {self.describe()}"
        if self.high is not None and (
            value > self.high or (self.high_open and value == self.high)
        ):
            return f"got {value!r}; allowed: {self.describe()}"
        return None


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value: Any) -> str | None:
        # `True == 1` in Python; a bool is only accepted where a bool is listed.
        for allowed in self.values:
            if type(allowed) is type(value) and allowed == value:
                return None
        return f"got {value!r}; allowed: {self.describe()}"


Constraint = Interval | Options


def validate_arguments(constraints: dict[str, Constraint], arguments: dict[str, Any]) -> None:
    """Raise ValueError naming the first argument that breaks its constraint."""
    for name, constraint in constraints.items():
        if name in arguments:
            problem = constraint.check(arguments[name])
            if problem is not None:
                raise ValueError(f"{name}: {problem}")


class AnyValue:
    """An argument without declared constraints: any value goes, the class decides."""

    def describe(self) -> str:
        return "any value the class accepts"

    def check(self, value: Any) -> str | None:
        return None


class SklearnConstraint:
    """A scikit-learn-style `_parameter_constraints` entry for one argument (a list of
    constraints, any of which may hold), in hpsearch's shape.

    Read with scikit-learn's own rules but without its private validation module: None, a type,
    "boolean", or a constraint object with `is_satisfied_by` (its `Interval`, `StrOptions`, ...).
    A string form this does not know ("array-like", ...) accepts any value: the class decides.
    """

    def __init__(self, owner: str, name: str, constraints: list[Any]) -> None:
        self.owner, self.name, self.constraints = owner, name, constraints

    def check(self, value: Any) -> str | None:
        if any(_satisfies(c, value) for c in self.constraints):
            return None
        return f"got {value!r}; allowed: {self.describe()}"

    def describe(self) -> str:
        return " or ".join(_describe(c) for c in self.constraints)


def _satisfies(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, bool)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    if callable(getattr(constraint, "is_satisfied_by", None)):
        return bool(constraint.is_satisfied_by(value))
    return isinstance(constraint, str)  # a form this does not know: the class decides


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__!r}"
    if constraint == "boolean":
        return "a boolean"
    return str(constraint)
