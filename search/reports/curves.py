"""Per-epoch figures: a trial's loss and accuracy curves, weight norms, every trial's
validation accuracy (intermediate values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import NamedTuple

from hpsearch.records import accuracy
from hpsearch.records import curves

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial


class Line(NamedTuple):
    """One line of a per-epoch figure."""

    name: str
    values: list[float]


def curves_info(trial: FrozenTrial) -> dict[str, list[float]]:
    """The trial's per-epoch curves as stored (train/val loss and accuracy, weight norm)."""
    return curves(trial)


def plot_curves(per_epoch: dict[str, list[float]], title: str) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = list(range(len(per_epoch.get("val_accuracy", []))))
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for split, dash in (("train", "dot"), ("val", "solid")):
            values = per_epoch.get(f"{split}_{metric}", [])
            fig.add_scatter(
                x=epochs, y=values, name=f"{split} {metric}", row=1, col=col, line={"dash": dash}
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=title, height=380)
    return fig


def plot_lines(lines: Sequence[Line], y_title: str) -> go.Figure:
    """One line per (name, values), against the epoch."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, values in lines:
        fig.add_scatter(x=list(range(len(values))), y=list(values), mode="lines", name=name)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(height=380)
    return fig


def weight_norm_info(trials: Sequence[FrozenTrial]) -> list[Line]:
    """The weight norm per epoch of each trial given (the report gives the top five)."""
    return [
        Line(f"trial {t.number} ({accuracy(t):.4f})", curves(t).get("weight_norm", []))
        for t in trials
    ]


def plot_weight_norms(lines: Sequence[Line]) -> go.Figure:
    return plot_lines(lines, "sqrt(sum W²)")


def intermediate_info(trials: Sequence[FrozenTrial]) -> dict[str, list[list[float]]]:
    """Every trial's reported validation accuracies, in epoch order, grouped by state."""
    groups: dict[str, list[list[float]]] = {}
    for t in trials:
        if t.intermediate_values:
            steps = sorted(t.intermediate_values)
            groups.setdefault(t.state.name, []).append([t.intermediate_values[s] for s in steps])
    return groups


def plot_intermediate(groups: dict[str, list[list[float]]]) -> go.Figure:
    """One line trace per state, trials separated by gaps: a 1,000-trial study stays light to
    build and to draw (Optuna's version makes one trace per trial)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colours = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728"}
    for state, runs in sorted(groups.items()):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for run in runs:
            xs += [*range(len(run)), None]
            ys += [*run, None]
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            name=f"{state.lower()} ({len(runs)})",
            line={"width": 1, "color": colours.get(state, "#7f7f7f")},
            opacity=0.6,
        )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="validation accuracy")
    fig.update_layout(height=380)
    return fig
