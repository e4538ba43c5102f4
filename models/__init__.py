"""Classifiers that hpsearch trains, by the `[model].kind` a study file names.

Every model follows one protocol (scikit-learn's estimator API, one epoch per partial_fit):
`__init__` stores its arguments, `partial_fit(X, y, classes)` trains one epoch, `evaluate(X, y)`
returns (data loss, accuracy), `score`, `predict`. Models never import optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from hpsearch.models.constraints import Constraint
from hpsearch.models.constraints import Options
from hpsearch.models.custom import CustomEntry
from hpsearch.models.custom import CustomModelError
from hpsearch.models.custom import is_custom
from hpsearch.models.lazy import import_object
from hpsearch.models.network import NetworkEntry
from hpsearch.models.protocol import Classifier
from hpsearch.models.protocol import KindEntry


@dataclass(frozen=True)
class ModelEntry:
    """Where a model kind's class lives and how the kind narrows its constructor.

    preset: arguments the kind fixes (a study file cannot set them).
    restrict: narrower constraints for some arguments (e.g. the SVM's losses).
    defaults: the kind's own defaults, applied before the study file's values.
    """

    target: str  # "module:Class", imported on first use so torch loads only for Torch models
    user_code = False  # a KindEntry (models/protocol.py)
    preset: dict[str, Any] = field(default_factory=dict)
    restrict: dict[str, Constraint] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def load(self) -> type:
        return import_object(self.target)

    def arguments(self) -> dict[str, Constraint]:
        """Constructor arguments a study file may set (fixed or searched), with constraints."""
        constraints = {**self.load()._parameter_constraints, **self.restrict}
        return {k: v for k, v in constraints.items() if k not in self.preset and k != "seed"}

    def build(self, params: dict[str, Any], seed: int) -> Classifier:
        return self.load()(**{**self.defaults, **params}, **self.preset, seed=seed)

    def needs_torch(self) -> bool:
        return self.target.startswith("hpsearch.models.torch_models:")

    def can_keep_weights(self) -> bool:
        return True

    def check(self) -> None:
        self.load()

    def file(self) -> None:
        return None

    def source_sha256(self) -> None:
        return None


_LINEAR = "hpsearch.models.linear:LinearClassifier"
NETWORK = "torch.network"  # a network function of the user's: models.network.NetworkEntry

MODELS: dict[str, ModelEntry] = {
    "numpy.softmax": ModelEntry(_LINEAR, preset={"loss": "softmax"}),
    "numpy.linear_svm": ModelEntry(
        _LINEAR,
        restrict={"loss": Options(("hinge", "weston_watkins"))},
        defaults={"loss": "hinge"},
    ),
    "numpy.perceptron": ModelEntry(_LINEAR, preset={"loss": "perceptron"}),
    "numpy.mlp": ModelEntry("hpsearch.models.mlp:MLP"),
    "torch.logistic": ModelEntry("hpsearch.models.torch_models:TorchLogistic"),
    "torch.mlp": ModelEntry("hpsearch.models.torch_models:TorchMLP"),
    "torch.cnn": ModelEntry("hpsearch.models.torch_models:TorchCNN"),
}


def is_user_code(kind: str) -> bool:
    """Whether a kind runs the user's code: a class of theirs, or torch.network."""
    return is_custom(kind) or kind == NETWORK


def may_use_torch(kind: str) -> bool:
    """Whether training `kind` may run Torch: its Torch kinds, and a user's code (which may)."""
    return is_user_code(kind) or kind not in MODELS or MODELS[kind].needs_torch()


def resolve(kind: str, fixed: dict[str, Any] | None = None) -> KindEntry:
    """The entry of a built-in kind, of a user's class (`module:Class`, `/path/file.py:Class`),
    or of `torch.network` with the function that `fixed["network"]` names.

    Raises:
        CustomModelError: the user's module or class cannot be used (one line naming it).
        KeyError: an unknown built-in kind.
    """
    if is_custom(kind):
        return CustomEntry(kind)
    if kind == NETWORK:
        network = (fixed or {}).get("network")
        if not isinstance(network, str) or not is_custom(network):
            raise CustomModelError(
                'torch.network needs [model].fixed.network = "module:function" or '
                '"file.py:function"'
            )
        return NetworkEntry(network)
    return MODELS[kind]


__all__ = [
    "MODELS",
    "NETWORK",
    "Classifier",
    "CustomModelError",
    "KindEntry",
    "ModelEntry",
    "is_user_code",
    "may_use_torch",
    "resolve",
]
