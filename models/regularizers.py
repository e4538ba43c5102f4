"""Weight penalties. They apply to weight matrices only, never to biases.

    l1: strength * sum |W|       gradient strength * sign(W)
    l2: strength * sum W**2      gradient 2 * strength * W

L2 is written without the factor 1/2 that cs231n and scikit-learn use, because the reference
assignments (assignment 000) define R(W) = sum W**2; the same definition holds for every
model in hpsearch, NumPy and Torch alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

REGULARIZERS = ("none", "l1", "l2")


def penalty(
    reg: str, strength: float, weights: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, np.ndarray]]:
    """Penalty value and its gradient for each weight matrix.

    Args:
        reg: "none", "l1" or "l2".
        strength: The factor lambda in front of the penalty.
        weights: Weight matrices by parameter name (biases must not be passed).

    Returns:
        The penalty and a dict with the gradient for each name in `weights` (empty for "none").
    """
    if reg == "none" or strength == 0.0:
        return 0.0, {}
    if reg == "l1":
        value = sum(float(np.abs(w).sum()) for w in weights.values())
        grads = {name: strength * np.sign(w) for name, w in weights.items()}
    elif reg == "l2":
        value = sum(float(np.vdot(w, w)) for w in weights.values())
        grads = {name: (2.0 * strength) * w for name, w in weights.items()}
    else:
        raise ValueError(f"reg: got {reg!r}; allowed: {', '.join(REGULARIZERS)}")
    return strength * value, grads
