"""A multi-objective study's Pareto front: validation accuracy against the first cost."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import NamedTuple

from hpsearch.pareto import ranked_front
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

    from hpsearch.spec import StudySpec


class ParetoInfo(NamedTuple):
    cost: str  # the first cost: the figure's x axis
    trials: list[tuple[int, float, float]]  # (number, cost, accuracy) of every complete trial
    front: list[tuple[int, float, float]]  # the same for the front, cheapest first
    recommended: tuple[int, float, float] | None


def pareto_info(study: optuna.Study, spec: StudySpec) -> ParetoInfo:
    def point(t: FrozenTrial) -> tuple[int, float, float]:
        return (t.number, t.values[1], accuracy(t))

    ranked, chosen = ranked_front(study)
    return ParetoInfo(
        spec.costs[0],
        [point(t) for t in complete_best_first(study.get_trials(deepcopy=False))],
        sorted((point(t) for t in ranked), key=lambda p: (p[1], -p[2])),
        point(chosen.trial) if chosen else None,
    )


def plot_pareto(info: ParetoInfo) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, points, style in (
        ("trials", info.trials, {"mode": "markers", "marker": {"color": "#bbb"}}),
        ("Pareto front", info.front, {"mode": "lines+markers", "line": {"shape": "hv"}}),
    ):
        fig.add_trace(
            go.Scatter(
                x=[p[1] for p in points],
                y=[p[2] for p in points],
                text=[f"trial {p[0]}" for p in points],
                name=name,
                **style,
            )
        )
    if info.recommended is not None:
        number, cost, value = info.recommended
        fig.add_trace(
            go.Scatter(
                x=[cost],
                y=[value],
                text=[f"trial {number}"],
                name=f"recommended: trial {number}",
                mode="markers",
                marker={"symbol": "star", "size": 16, "color": "#d62728"},
            )
        )
    fig.update_layout(xaxis_title=info.cost, yaxis_title="validation accuracy")
    return fig
