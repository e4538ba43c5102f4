"""Your own classifier, by import path (`package.module:ClassName`) or file (`file.py:ClassName`).

The class follows scikit-learn's incremental API: a constructor taking its arguments as
keywords, `partial_fit(X, y, classes=...)` training one epoch, and `predict(X)`. Used when
present: `predict_proba` or `decision_function` (for the validation loss), `evaluate(X, y) ->
(loss, accuracy)` (used as is), `get_weights()` / `set_weights()` (early stopping, and what
`retrain` saves), a `seed` or `random_state` argument (it receives the trial's seed), an
`epochs` argument, `_parameter_constraints` (scikit-learn's form or hpsearch's), and a class
attribute `wants_images = True` for inputs of shape (N, C, H, W).

`ForeignEntry` has the shape of the built-in kinds' ModelEntry (arguments, build), so study-file
validation, the objective and retraining treat every kind alike; `ForeignClassifier` gives the
user's object the model protocol (models/protocol.py).
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
from typing import Any
from typing import Self

import numpy as np

from hpsearch.models.constraints import Interval
from hpsearch.models.usercode import UserCodeError
from hpsearch.models.usercode import calling
from hpsearch.models.usercode import check_evaluation
from hpsearch.models.usercode import check_labels
from hpsearch.models.usercode import check_scores

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


class ForeignModelError(ValueError):
    """The user's class cannot be used; the message is one line naming the file or module."""


def is_foreign(kind: str) -> bool:
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


class AnyValue:
    """An argument without declared constraints: any value goes, the class decides."""

    def describe(self) -> str:
        return "any value the class accepts"

    def check(self, value: Any) -> str | None:
        return None


class SklearnConstraint:
    """scikit-learn's `_parameter_constraints` entry for one argument, in hpsearch's shape."""

    def __init__(self, owner: str, name: str, constraints: list[Any]) -> None:
        self.owner, self.name, self.constraints = owner, name, constraints

    def check(self, value: Any) -> str | None:
        from sklearn.utils._param_validation import InvalidParameterError
        from sklearn.utils._param_validation import validate_parameter_constraints

        try:
            validate_parameter_constraints(
                {self.name: self.constraints}, {self.name: value}, caller_name=self.owner
            )
        except InvalidParameterError as e:
            text = str(e)
            allowed = text.split(" must be ", 1)[-1].split(". Got", 1)[0]
            return f"got {value!r}; allowed: {allowed}"
        return None

    def describe(self) -> str:
        return ", ".join(str(c) for c in self.constraints)


@dataclass(frozen=True)
class ForeignEntry:
    """A user's classifier: `target` is `module:Class` or `/absolute/path/file.py:Class`."""

    target: str

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
        module = sys.modules.get(self.module_part) or self._import()
        origin = getattr(module, "__file__", None)
        return Path(origin) if origin else None

    def source_sha256(self) -> str | None:
        path = self.file()
        return hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else None

    def _import(self) -> Any:
        part = self.module_part
        if part.endswith(".py"):
            path = Path(part)
            if not path.is_file():
                raise ForeignModelError(f"{path}: no such file")
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
                raise ForeignModelError(str(e)) from None
            return module
        try:
            with calling(""):
                return importlib.import_module(part)
        except UserCodeError as e:
            cause = e.__cause__
            missing = isinstance(cause, ModuleNotFoundError) and cause.name
            if missing and part.startswith(cause.name):
                raise ForeignModelError(
                    f"no module named {cause.name!r}; install it, or name a file: "
                    "path/to/file.py:Class"
                ) from None
            raise ForeignModelError(str(e)) from None

    def load(self) -> type:
        if self.target in _REGISTERED:
            return self._checked(_REGISTERED[self.target])
        problem = target_problem(self.target)
        if problem is not None:
            raise ForeignModelError(problem)
        module = self._import()
        cls = getattr(module, self.class_name, None)
        if cls is None:
            names = [n for n, v in vars(module).items() if inspect.isclass(v)]
            hint = difflib.get_close_matches(self.class_name, names, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ForeignModelError(
                f"{self.module_part} has no class {self.class_name!r}{did_you_mean}"
            )
        return self._checked(cls)

    def _checked(self, cls: type) -> type:
        missing = [m for m in REQUIRED if not callable(getattr(cls, m, None))]
        if missing:
            raise ForeignModelError(
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

    def can_keep_weights(self) -> bool:
        cls = self.load()
        return callable(getattr(cls, "get_weights", None)) and callable(
            getattr(cls, "set_weights", None)
        )

    def build(self, params: dict[str, Any], seed: int) -> ForeignClassifier:
        signature = self._signature()
        kwargs = {k: v for k, v in params.items() if k in signature}
        for name in SEED_ARGUMENTS:
            if name in signature:
                kwargs[name] = seed
        cls = self.load()
        with calling(f"{self.class_name}(...)", self.file()):
            estimator = cls(**kwargs)
        return ForeignClassifier(
            estimator,
            epochs=int(params.get("epochs", DEFAULT_EPOCHS)),
            patience=int(params.get("patience", 0)),
            path=self.file(),
        )


class ForeignClassifier:
    """The model protocol around a user's incremental classifier.

    Every call into the user's object goes through models.usercode.calling (its prints go to
    stderr, whatever it raises fails the trial with its file and line) and every answer is
    checked, so that an impossible value fails the trial instead of being stored."""

    def __init__(
        self, estimator: Any, *, epochs: int, patience: int, path: Path | None = None
    ) -> None:
        self.estimator = estimator
        self.epochs = epochs
        self.patience = patience
        self.path = path
        self.name = type(estimator).__name__
        self.wants_images = bool(getattr(estimator, "wants_images", False))
        self.classes_: np.ndarray | None = None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with calling(f"{self.name}.{method}", self.path):
            return getattr(self.estimator, method)(*args, **kwargs)

    def _has(self, method: str) -> bool:
        return callable(getattr(self.estimator, method, None))

    def partial_fit(self, X: np.ndarray, y: np.ndarray, classes: Any = None) -> Self:
        if self.classes_ is None:
            self.classes_ = np.asarray(np.unique(y) if classes is None else classes)
        self._call("partial_fit", X, y, classes=self.classes_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        labels = self._call("predict", X)
        return check_labels(labels, len(X), self.classes_, f"{self.name}.predict")

    def _scores(self, method: str, X: np.ndarray) -> np.ndarray:
        scores = self._call(method, X)
        return check_scores(scores, len(X), len(self.classes_), f"{self.name}.{method}")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores (N, C): decision_function, else predict_proba, else one-hot predictions."""
        for method in ("decision_function", "predict_proba"):
            if self._has(method):
                scores = self._scores(method, X)
                return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores
        predicted = np.searchsorted(self.classes_, self.predict(X))
        return np.eye(len(self.classes_))[predicted]

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """The class's own evaluate, else (validation loss, accuracy): log loss of
        predict_proba, or of the softmax of decision_function, or 1 - accuracy without either."""
        if self._has("evaluate"):
            return check_evaluation(self._call("evaluate", X, y), f"{self.name}.evaluate")
        accuracy = float(np.mean(self.predict(X) == y))
        target = np.searchsorted(self.classes_, y)
        if self._has("predict_proba"):
            p = self._scores("predict_proba", X)
            if p.ndim == 1:
                p = np.stack([1.0 - p, p], axis=1)
            picked = np.clip(p[np.arange(len(y)), target], 1e-12, 1.0)
            return float(-np.mean(np.log(picked))), accuracy
        if self._has("decision_function"):
            scores = self.decision_function(X)
            scores = scores - scores.max(axis=1, keepdims=True)
            log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
            return float(-np.mean(log_p[np.arange(len(y)), target])), accuracy
        return 1.0 - accuracy, accuracy

    def weight_norm(self) -> float:
        """sqrt(sum W**2) over the weight matrices: from weight_norm(), get_weights(), or
        scikit-learn's coef_ / coefs_; 0 when the class shows none."""
        est = self.estimator
        with calling(f"{self.name}.weight_norm", self.path):
            if self._has("weight_norm"):
                return float(est.weight_norm())
            if self._has("get_weights"):
                arrays = list(est.get_weights().values())
            else:
                arrays = list(getattr(est, "coefs_", None) or [getattr(est, "coef_", np.zeros(0))])
            return float(
                np.sqrt(sum(float(np.sum(np.square(a))) for a in arrays if np.ndim(a) >= 2))
            )

    def get_weights(self) -> dict[str, np.ndarray]:
        weights = self._call("get_weights")
        if not isinstance(weights, dict):
            raise UserCodeError(
                f"{self.name}.get_weights returned {type(weights).__name__}; expected a dict "
                "of name -> array"
            )
        return weights

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self._call("set_weights", weights)


@dataclass(frozen=True)
class NetworkEntry:
    """`kind = "torch.network"`: a network function of the user's, `function(input_shape,
    n_classes, **its_arguments) -> torch.nn.Module`, named by `network` (`module:function` or
    `/absolute/path/file.py:function`) and trained by hpsearch's Torch trainer. The function's
    own arguments are fixed or searched like any other."""

    network: str

    @property
    def source(self) -> ForeignEntry:
        """The function's module and file: the same loading as a class of the user's."""
        return ForeignEntry(self.network)

    def function(self) -> Any:
        entry = self.source
        problem = target_problem(self.network)
        if problem is not None:
            raise ForeignModelError(problem)
        module = entry._import()
        fn = getattr(module, entry.class_name, None)
        if not callable(fn):
            raise ForeignModelError(f"{entry.module_part} has no function {entry.class_name!r}")
        params = list(inspect.signature(fn).parameters)
        if params[:2] != ["input_shape", "n_classes"]:
            raise ForeignModelError(
                f"{entry.class_name} takes ({', '.join(params)}); a network function takes "
                "(input_shape, n_classes, **its_arguments) and returns a torch.nn.Module"
            )
        # The trainer's arguments go to the trainer: a function argument of the same name would
        # silently take the searched value away from the optimizer or the epoch loop.
        clash = [name for name in params[2:] if name in self.trainer_arguments()]
        if clash:
            raise ForeignModelError(
                f"{entry.class_name}'s argument {clash[0]!r} has the name of torch.network's "
                f"trainer argument {clash[0]!r}, which hpsearch's trainer uses; rename it in "
                f"{entry.module_part} (trainer arguments: "
                f"{', '.join(sorted(self.trainer_arguments()))})"
            )
        return fn

    def trainer_arguments(self) -> dict[str, Any]:
        return {k: v for k, v in self.load()._parameter_constraints.items() if k != "seed"}

    def own_arguments(self) -> list[str]:
        return list(inspect.signature(self.function()).parameters)[2:]

    def load(self) -> type:
        from hpsearch.models.torch_models import TorchNetwork

        return TorchNetwork

    def arguments(self) -> dict[str, Any]:
        own = {k: AnyValue() for k in self.own_arguments()}
        return {**self.trainer_arguments(), "network": AnyValue(), **own}

    def needs_torch(self) -> bool:
        return True

    def can_keep_weights(self) -> bool:
        return True

    def file(self) -> Path | None:
        return self.source.file()

    def source_sha256(self) -> str | None:
        return self.source.source_sha256()

    def build(self, params: dict[str, Any], seed: int) -> Any:
        own = set(self.own_arguments())
        training = {k: v for k, v in params.items() if k not in own and k != "network"}
        network_args = {k: v for k, v in params.items() if k in own}
        return self.load()(
            network_fn=self.function(),
            network_args=network_args,
            **training,
            seed=seed,
            network_file=self.file(),
        )
