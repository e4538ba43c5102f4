"""A linear model's learned weights, one image per class: what the model looks for."""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING
from typing import NamedTuple

import numpy as np

from hpsearch.records import CLASS_WEIGHTS_ATTR

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial


class ClassWeights(NamedTuple):
    images: np.ndarray  # (classes, channels, height, width) in [0, 1]
    classes: list[str]


def class_weights_info(trial: FrozenTrial) -> ClassWeights | None:
    """Each class's learned weights as an image (C, c, h, w) in [0, 1], for linear models."""
    stored = trial.user_attrs.get(CLASS_WEIGHTS_ATTR)
    if not stored:
        return None
    raw = np.frombuffer(base64.b64decode(stored["uint8_base64"]), dtype=np.uint8)
    return ClassWeights(
        raw.reshape(stored["shape"]).astype(np.float64) / 255, list(stored["classes"])
    )


def plot_class_weights(info: ClassWeights) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = min(len(info.classes), 10)
    rows = math.ceil(len(info.classes) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=info.classes)
    for i, image in enumerate(info.images):
        r, c = divmod(i, cols)
        if image.shape[0] == 3:
            trace = go.Image(z=np.round(255 * image.transpose(1, 2, 0)).astype(np.uint8))
        else:
            trace = go.Heatmap(z=image[0][::-1], colorscale="gray", showscale=False)
        fig.add_trace(trace, row=r + 1, col=c + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=170 * rows + 60, margin={"t": 50})
    return fig
