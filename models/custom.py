"""Your own classifier, by import path (`package.module:ClassName`) or file (`file.py:ClassName`).

The class follows scikit-learn's incremental API: a constructor taking its arguments as
keywords, `partial_fit(X, y, classes=...)` training one epoch, and `predict(X)`. Used when
present: `predict_proba` or `decision_function` (for the validation loss), `evaluate(X, y) ->
(loss, accuracy)` (used as is), `get_weights()` / `set_weights()` (early stopping, and what
`retrain` saves), a `seed` or `random_state` argument (it receives the trial's seed), an
`epochs` argument, `_parameter_constraints` (scikit-learn's form or hpsearch's), and a class
attribute `wants_images = True` for inputs of shape (N, C, H, W).

`CustomEntry` is a `KindEntry` (models/protocol.py) like the built-in kinds' ModelEntry, so
study-file validation, the objective and retraining treat every kind alike;
`CustomClassifier` (models/custom_classifier.py) gives the user's object the model protocol.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.models.constraints import AnyValue
from hpsearch.models.constraints import Interval
from hpsearch.models.constraints import SklearnConstraint
from hpsearch.models.usercode import UserCodeError
from hpsearch.models.usercode import calling

if TYPE_CHECKING:
    from hpsearch.models.custom_classifier import CustomClassifier

DEFAULT_EPOCHS = 20
SEED_ARGUMENTS = ("seed", "random_state")
REQUIRED = ("partial_fit", "predict")
# hpsearch's own arguments, for classes that do not take them: the epoch loop's length and
# early stopping. A class whose constructor takes `epochs` gets it passed on.
LOOP_ARGUMENTS = {
    "epochs": Interval(1, None, integer=True),
    "patience": Interval(0, None, integer=True),
}


# Classes given as objects (the Python API), by `module:QualifiedName`: found here first, so a
# class defined in a notebook or a function trains in the process that registered it.
_REGISTERED: dict[str, type] = {}


def register(cls: type) -> str:
    """The kind naming a class object; this process finds the class itself by that name."""
    name = f"{cls.__module__}:{cls.__qualname__}"
    _REGISTERED[name] = cls
    return name


def importable_elsewhere(kind: str) -> bool:
    """Whether another interpreter finds the class of `kind` by its name: not one defined in
    a function, a notebook or a script run as __main__ and known only to this process."""
    cls = _REGISTERED.get(kind)
    if cls is None:
        return True
    return cls.__module__ != "__main__" and "<locals>" not in cls.__qualname__


class CustomModelError(ValueError):
    """The user's class cannot be used; the message is one line naming the file or module."""


def is_custom(kind: str) -> bool:
    return ":" in kind


def target_problem(target: str) -> str | None:
    """What is wrong with the form of `module:Name` / `file.py:Name`, or None."""
    module, _, name = target.rpartition(":")
    module_ok = module.endswith(".py") or all(p.isidentifier() for p in module.split("."))
    if not module or not module_ok or not all(p.isidentifier() for p in name.split(".")):
        return (
            f'got {target!r}; allowed: "package.module:Name" or "path/to/file.py:Name" '
            "(Name: a class, or for torch.network a function)"
        )
    return None


@dataclass(frozen=True)
class CustomEntry:
    """A user's classifier: `target` is `module:Class` or `/absolute/path/file.py:Class`."""

    target: str
    user_code = True  # a KindEntry (models/protocol.py) whose code is the user's

    @property
    def module_part(self) -> str:
        return self.target.rsplit(":", 1)[0]

    @property
    def class_name(self) -> str:
        return self.target.rsplit(":", 1)[1]

    def file(self) -> Path | None:
        """The source file: the .py named, or the module's file (None for a class defined in a
        notebook or at an interactive prompt)."""
        if self.module_part.endswith(".py"):
            return Path(self.module_part)
        if self.target in _REGISTERED:
            try:
                return Path(inspect.getfile(_REGISTERED[self.target]))
            except (TypeError, OSError):
                return None
        module = sys.modules.get(self.module_part) or self.import_module()
        origin = getattr(module, "__file__", None)
        return Path(origin) if origin else None

    def source_sha256(self) -> str | None:
        path = self.file()
        return hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else None

    def import_module(self) -> Any:
        part = self.module_part
        if part.endswith(".py"):
            path = Path(part)
            if not path.is_file():
                raise CustomModelError(f"{path}: no such file")
            name = "hpsearch_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            # As `python file.py` would: modules beside the file import (`from helpers
            # import ...`).
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            try:
                with calling("", path):
                    spec.loader.exec_module(module)
            except UserCodeError as e:
                del sys.modules[name]
                raise CustomModelError(str(e)) from None
            return module
        try:
            with calling(""):
                return importlib.import_module(part)
        except UserCodeError as e:
            cause = e.__cause__
            missing = isinstance(cause, ModuleNotFoundError) and cause.name
            if missing and part.startswith(cause.name):
                raise CustomModelError(
                    f"no module named {cause.name!r}; install it, or name a file: "
                    "path/to/file.py:Class"
                ) from None
            raise CustomModelError(str(e)) from None

    def load(self) -> type:
        if self.target in _REGISTERED:
            return self._checked(_REGISTERED[self.target])
        problem = target_problem(self.target)
        if problem is not None:
            raise CustomModelError(problem)
        module = self.import_module()
        cls = getattr(module, self.class_name, None)
        if cls is None:
            names = [n for n, v in vars(module).items() if inspect.isclass(v)]
            hint = difflib.get_close_matches(self.class_name, names, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise CustomModelError(
                f"{self.module_part} has no class {self.class_name!r}{did_you_mean}"
            )
        return self._checked(cls)

    def _checked(self, cls: type) -> type:
        missing = [m for m in REQUIRED if not callable(getattr(cls, m, None))]
        if missing:
            raise CustomModelError(
                f"{self.class_name} has no {' or '.join(missing)}; a class hpsearch trains needs "
                "partial_fit(X, y, classes=...) (one epoch) and predict(X)"
            )
        return cls

    def _signature(self) -> dict[str, inspect.Parameter]:
        params = inspect.signature(self.load()).parameters
        return {
            k: p
            for k, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "self"
        }

    def arguments(self) -> dict[str, Any]:
        """Arguments a study file may set, with their constraints where the class declares
        them (scikit-learn's `_parameter_constraints` or hpsearch's form)."""
        cls = self.load()
        declared = getattr(cls, "_parameter_constraints", {}) or {}
        out: dict[str, Any] = {}
        for name in self._signature():
            if name in SEED_ARGUMENTS:
                continue
            constraint = declared.get(name)
            if constraint is None:
                out[name] = LOOP_ARGUMENTS.get(name, AnyValue())
            elif hasattr(constraint, "check"):
                out[name] = constraint
            else:
                out[name] = SklearnConstraint(cls.__name__, name, list(constraint))
        for name, constraint in LOOP_ARGUMENTS.items():
            out.setdefault(name, constraint)
        return out

    def needs_torch(self) -> bool:
        return False

    def check(self) -> None:
        """Import the user's class and check it has what training needs."""
        self.load()

    def can_keep_weights(self) -> bool:
        cls = self.load()
        return callable(getattr(cls, "get_weights", None)) and callable(
            getattr(cls, "set_weights", None)
        )

    def build(self, params: dict[str, Any], seed: int) -> CustomClassifier:
        signature = self._signature()
        kwargs = {k: v for k, v in params.items() if k in signature}
        for name in SEED_ARGUMENTS:
            if name in signature:
                kwargs[name] = seed
        from hpsearch.models.custom_classifier import CustomClassifier

        cls = self.load()
        with calling(f"{self.class_name}(...)", self.file()):
            estimator = cls(**kwargs)
        return CustomClassifier(
            estimator,
            epochs=int(params.get("epochs", DEFAULT_EPOCHS)),
            patience=int(params.get("patience", 0)),
            path=self.file(),
        )
