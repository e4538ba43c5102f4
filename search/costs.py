"""The costs a multi-objective study weighs against validation accuracy (`[study].objectives`):
train_seconds  wall time of its training, in seconds
n_weights      trainable weights (Torch: parameters with requires_grad; NumPy and your own
               classes: every array get_weights() returns, else scikit-learn's coef_ and
               intercept_ or coefs_ and intercepts_)
predict_ms     milliseconds to predict 1,000 validation images (the best of 3 timings)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

PREDICT_ROWS = 1000


def count_weights(model: Any) -> int:
    net = getattr(model, "net_", None)
    if net is not None:  # a Torch model
        return int(sum(p.numel() for p in net.parameters() if p.requires_grad))
    try:
        arrays = list(model.get_weights().values())
    except AttributeError:  # a class of the user's without get_weights
        est = getattr(model, "estimator", model)
        arrays = []
        for name in ("coef_", "intercept_", "coefs_", "intercepts_"):
            value = getattr(est, name, None)
            if value is not None:
                arrays.extend(value if isinstance(value, list) else [value])
    return int(sum(np.size(a) for a in arrays))


def predict_ms(model: Any, X: np.ndarray) -> float:
    """Milliseconds to predict 1,000 rows of X (fewer rows are scaled up)."""
    rows = X[:PREDICT_ROWS]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.predict(rows)
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best * PREDICT_ROWS / len(rows)


def measure_costs(names: Sequence[str], model: Any, X_val: np.ndarray, seconds: float) -> list:
    measured = {
        "train_seconds": lambda: seconds,
        "n_weights": lambda: count_weights(model),
        "predict_ms": lambda: predict_ms(model, X_val),
    }
    return [float(f"{measured[name]():.6g}") for name in names]
