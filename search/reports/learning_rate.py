"""Validation accuracy against the learning rate, coloured by optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import NamedTuple

from optuna.trial import TrialState

from hpsearch.records import accuracy

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial


class LearningRatePoint(NamedTuple):
    learning_rate: float
    val_accuracy: float


def learning_rate_info(trials: Sequence[FrozenTrial]) -> dict[str, list[LearningRatePoint]]:
    """(learning rate, validation accuracy) of complete trials, grouped by optimizer."""
    groups: dict[str, list[LearningRatePoint]] = {}
    for t in trials:
        if t.state == TrialState.COMPLETE and "learning_rate" in t.params:
            optimizer = str(t.params.get("optimizer", "(fixed)"))
            point = LearningRatePoint(t.params["learning_rate"], accuracy(t))
            groups.setdefault(optimizer, []).append(point)
    return groups


def plot_learning_rate(groups: dict[str, list[LearningRatePoint]]) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    for optimizer, points in sorted(groups.items()):
        fig.add_scatter(
            x=[p.learning_rate for p in points],
            y=[p.val_accuracy for p in points],
            mode="markers",
            name=optimizer,
        )
    fig.update_xaxes(type="log", title_text="learning_rate")
    fig.update_yaxes(title_text="validation accuracy")
    fig.update_layout(height=380, legend_title_text="optimizer")
    return fig
