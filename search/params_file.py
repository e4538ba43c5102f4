"""A study file's [params] (the search space) and [[enqueue]] (configurations tried first)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import Options
from hpsearch.space import is_active
from hpsearch.space import value_problem
from hpsearch.spec import ModelSpec
from hpsearch.spec import ParamSpec
from hpsearch.tables import TableReader
from hpsearch.tables import did_you_mean
from hpsearch.tables import kind_of

PARAM_TYPES = ("float", "int", "categorical")
_PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "when")


class ParamsReader(TableReader):
    """[params] and [[enqueue]], each value checked against what the model accepts."""

    def params(
        self, value: Any, model: ModelSpec, arguments: Mapping[str, Any]
    ) -> tuple[ParamSpec, ...]:
        """`arguments`: the model's constraint for each argument it takes, by name."""
        if not isinstance(value, dict):
            self.fail("[params]", f"got {kind_of(value)}; allowed: a table")
        if not value:
            self.fail(
                "[params]",
                "no parameter to search; add at least one, e.g. "
                'learning_rate = { type = "float", low = 1e-4, high = 1e-1, log = true }',
            )
        specs: dict[str, ParamSpec] = {}
        for name, entry in value.items():
            key = f"[params].{name}"
            if name not in arguments:
                allowed = sorted(arguments)
                self.fail(
                    key,
                    f"{model.kind} has no argument {name!r}{did_you_mean(name, allowed)}; "
                    f"allowed: {', '.join(allowed)}",
                )
            if name in model.fixed:
                self.fail(key, "also set in [model].fixed; a value is either fixed or searched")
            param = self.param(name, entry, key, specs)
            self.param_fits_model(param, arguments[name], key, model.kind)
            specs[name] = param
        return tuple(specs.values())

    def param(self, name: str, entry: Any, key: str, earlier: dict[str, ParamSpec]) -> ParamSpec:
        entry = self.table(entry, key, _PARAM_KEYS)
        ptype = self.required(entry, "type", f"{key}.type", '"float", "int" or "categorical"')
        self.choice(ptype, PARAM_TYPES, f"{key}.type", "type")
        when = self.when(entry.get("when", {}), key, earlier)
        log = self.boolean(entry.get("log", False), f"{key}.log")
        if ptype == "categorical":
            return self.categorical(name, entry, key, when)
        return self.numeric(name, ptype, entry, key, log, when)

    def categorical(self, name: str, entry: dict[str, Any], key: str, when: tuple) -> ParamSpec:
        for extra in ("low", "high", "log", "step"):
            if extra in entry:
                self.fail(
                    key,
                    f"{extra} does not apply to a categorical parameter; "
                    "list the values in choices",
                )
        choices = self.required(entry, "choices", f"{key}.choices", "[a list of values]")
        if not isinstance(choices, list):
            self.fail(key, f"choices is {kind_of(choices)}; allowed: a list of values")
        if not choices:
            self.fail(key, "choices is empty; list at least one value")
        for c in choices:
            if not isinstance(c, bool | int | float | str):
                self.fail(
                    key, f"choice {c!r} is {kind_of(c)}; allowed: strings, numbers, booleans"
                )
        if len({(type(c), c) for c in choices}) != len(choices):
            self.fail(key, "choices lists a value twice; list each value once")
        return ParamSpec(name=name, type="categorical", choices=tuple(choices), when=when)

    def numeric(
        self, name: str, ptype: str, entry: dict[str, Any], key: str, log: bool, when: tuple
    ) -> ParamSpec:
        if "choices" in entry:
            self.fail(
                key,
                f'choices applies to type = "categorical" only; a {ptype} '
                "parameter takes low and high",
            )
        number = Interval(integer=ptype == "int")
        low = self.required(entry, "low", f"{key}.low", "a number")
        high = self.required(entry, "high", f"{key}.high", "a number")
        self.check(low, number, f"{key}.low")
        self.check(high, number, f"{key}.high")
        if low >= high:
            self.fail(
                key, f"low ({low!r}) must be below high ({high!r}); swap them or widen the range"
            )
        step = entry.get("step")
        if log and step is not None:
            self.fail(key, "log and step cannot be combined; remove one of them")
        if log and low <= 0:
            self.fail(key, f"log = true needs low > 0, got low = {low!r}; raise low or drop log")
        if step is not None:
            self.check(
                step, Interval(0, None, integer=ptype == "int", low_open=True), f"{key}.step"
            )
            if step > high - low:
                self.fail(
                    f"{key}.step",
                    f"step {step!r} is larger than the range {low!r} to {high!r}, so only "
                    f"low would ever be tried; allowed: a step up to {high - low!r}",
                )
        if ptype == "float":
            low, high = float(low), float(high)
            step = float(step) if step is not None else None
        return ParamSpec(name=name, type=ptype, low=low, high=high, log=log, step=step, when=when)

    def when(
        self, value: Any, key: str, earlier: dict[str, ParamSpec]
    ) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        if not isinstance(value, dict):
            self.fail(
                f"{key}.when",
                f'got {kind_of(value)}; allowed: a table such as {{ reg = ["l1", "l2"] }}',
            )
        conditions = []
        for parent, values in value.items():
            if parent not in earlier:
                allowed = ", ".join(earlier) or "none (declare the parent parameter above)"
                self.fail(
                    key,
                    f"when names {parent!r}, which is not a parameter declared "
                    f"before it; allowed: {allowed}",
                )
            if earlier[parent].type != "categorical":
                self.fail(
                    key,
                    f"when names {parent!r}, which is a {earlier[parent].type} "
                    "parameter; allowed: categorical parameters",
                )
            values = values if isinstance(values, list) else [values]
            if not values:
                self.fail(
                    f"{key}.when.{parent}",
                    "lists no value, so the parameter would never be active; list at least one "
                    f"of {parent}'s choices, or drop the condition",
                )
            choices = earlier[parent].choices
            for v in values:
                if not any(type(v) is type(c) and v == c for c in choices):
                    self.fail(
                        key,
                        f"when.{parent} lists {v!r}, which is not among {parent}'s "
                        f"choices; allowed: {', '.join(repr(c) for c in choices)}",
                    )
            conditions.append((parent, tuple(values)))
        return tuple(conditions)

    def param_fits_model(self, param: ParamSpec, constraint: Any, key: str, kind: str) -> None:
        if param.type == "categorical":
            values = param.choices
        else:
            if param.type == "float" and getattr(constraint, "integer", False):
                self.fail(key, f'{kind} takes whole numbers for {param.name}; use type = "int"')
            if isinstance(constraint, Options):
                self.fail(
                    key,
                    f"{kind} takes {constraint.describe()} for {param.name}; "
                    'use type = "categorical"',
                )
            values = (param.low, param.high)
        for v in values:
            problem = constraint.check(v)
            if problem is not None:
                self.fail(
                    key,
                    f"{kind} does not accept {param.name} = {v!r}; "
                    f"allowed: {constraint.describe()}",
                )

    def enqueue(self, value: Any, params: tuple[ParamSpec, ...]) -> tuple[Mapping[str, Any], ...]:
        """[[enqueue]] tables: configurations tried first, exactly as given; each value is
        checked as a value its parameter could take."""
        if not isinstance(value, list):
            self.fail("[[enqueue]]", f"got {kind_of(value)}; allowed: [[enqueue]] tables")
        by_name = {p.name: p for p in params}
        entries = []
        for i, entry in enumerate(value):
            key = f"[[enqueue]][{i}]"
            entry = self.table(entry, key, tuple(by_name))
            for name, v in entry.items():
                problem = value_problem(by_name[name], v)
                if problem is not None:
                    self.fail(f"{key}.{name}", problem)
            chosen = dict(entry)
            for param in params:
                if param.name in chosen and not is_active(param, chosen):
                    parents = ", ".join(f"{p} in {list(v)}" for p, v in param.when)
                    self.fail(
                        f"{key}.{param.name}",
                        f"is only active when {parents}; drop it or set its parent accordingly",
                    )
            entries.append(chosen)
        return tuple(entries)
