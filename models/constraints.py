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
