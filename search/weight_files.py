"""What `retrain` saves: the weights (weights.npz), or a user's estimator pickled (model.pkl)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from hpsearch.models import Classifier
from hpsearch.models.custom_classifier import CustomClassifier
from hpsearch.models.usercode import UserCodeError


def weights_file(model: Classifier) -> str:
    """weights.npz, or model.pkl for a class of the user's own that has no get_weights()."""
    if isinstance(model, CustomClassifier) and not callable(
        getattr(model.estimator, "get_weights", None)
    ):
        return "model.pkl"
    return "weights.npz"


def save_model(model: Classifier, path: Path) -> None:
    """The weights (weights.npz), or a user's estimator pickled (model.pkl); a user's object
    that cannot be pickled is a UserCodeError, and no partial file is left."""
    if path.suffix != ".pkl":
        np.savez(path, **model.get_weights())
        return
    estimator = model.estimator  # type: ignore[attr-defined]
    try:
        data = pickle.dumps(estimator)
    except Exception as e:  # pickling runs the user's __reduce__/__getstate__, and may fail
        raise UserCodeError(
            f"{type(estimator).__name__} cannot be pickled into {path.name} "
            f"({type(e).__name__}: {e}); add get_weights() and set_weights() to the class, or "
            "make its attributes picklable (the test split was not evaluated)"
        ) from None
    path.write_bytes(data)
