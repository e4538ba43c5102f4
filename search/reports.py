"""`hpsearch report`: one self-contained HTML file, from the study database alone.

Each domain figure has a pure `*_info` function (the data, tested directly) and a `_plot_*`
function (the plotly figure), as optuna.visualization does. Optuna's own figures are used
as they are. A figure that cannot be drawn for a study (too few trials, a parameter that is not
searched) is replaced by a sentence saying why; the rest of the report is unaffected.
plotly.js is embedded once, so the file opens without a network.
"""

from __future__ import annotations

import base64
import html
import math
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

import numpy as np
from optuna.trial import TrialState

from hpsearch.pareto import ranked_front
from hpsearch.records import CLASS_WEIGHTS_ATTR
from hpsearch.records import WARM_ATTR
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first
from hpsearch.records import curves
from hpsearch.records import own_trials
from hpsearch.records import seconds
from hpsearch.records import state_counts
from hpsearch.stopping import STOP_ATTR
from hpsearch.text import format_params
from hpsearch.text import format_value

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go
    from optuna.trial import FrozenTrial

    from hpsearch.spec import StudySpec


@dataclass
class Section:
    """A figure (or the reason there is none) with its heading and a sentence about it."""

    id: str
    title: str
    caption: str
    figure: go.Figure | None = None
    note: str = ""


# -- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """A study's summary table: best configuration, trials by state, time spent."""

    study: str
    model: str
    dataset: str
    states: dict[str, int]
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any]
    train_seconds: float  # the sum over trials
    wall_seconds: float  # first start to last end
    stopped: str | None = None  # why the search stopped before its budget, if it did
    recommended: str | None = None  # a multi-objective study's recommended trial, and why
    warm: str | None = None  # where a warm start came from


class LearningRatePoint(NamedTuple):
    learning_rate: float
    val_accuracy: float


class ClassWeights(NamedTuple):
    images: np.ndarray  # (classes, channels, height, width) in [0, 1]
    classes: list[str]


class Line(NamedTuple):
    """One line of a per-epoch figure."""

    name: str
    values: list[float]


def summary_info(study: optuna.Study, spec: StudySpec) -> Summary:
    """Best configuration, trials by state, total training time and wall time."""
    trials = own_trials(study.get_trials(deepcopy=False))
    complete = complete_best_first(trials)
    best = complete[0] if complete else None
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return Summary(
        study=study.study_name,
        model=spec.model.kind,
        dataset=spec.data.dataset,
        states=dict(state_counts(trials)),
        best_value=accuracy(best) if best else None,
        best_trial=best.number if best else None,
        best_params={**spec.model.fixed, **best.params} if best else {},
        train_seconds=sum(seconds(t) for t in trials),
        wall_seconds=(max(ends) - min(starts)).total_seconds() if starts and ends else 0.0,
        stopped=(lambda s: f"after {s['after']} trials: {s['reason']}" if s else None)(
            study.user_attrs.get(STOP_ATTR)
        ),
        recommended=_recommended(study, spec),
        warm=(lambda w: f"{w['source']}: {w['added']} trials, not drawn" if w else None)(
            study.user_attrs.get(WARM_ATTR)
        ),
    )


def _recommended(study: optuna.Study, spec: StudySpec) -> str | None:
    if not spec.multi_objective:
        return None
    ranked, chosen = ranked_front(study)
    if chosen is None:
        return None
    t = chosen.trial
    values = ", ".join(
        f"{n} {format_value(v)}" for n, v in zip(spec.objectives, t.values, strict=True)
    )
    return f"trial {t.number} ({values}): {chosen.reason(spec.costs)}"


def curves_info(trial: FrozenTrial) -> dict[str, list[float]]:
    """The trial's per-epoch curves as stored (train/val loss and accuracy, weight norm)."""
    return curves(trial)


def learning_rate_info(trials: Sequence[FrozenTrial]) -> dict[str, list[LearningRatePoint]]:
    """(learning rate, validation accuracy) of complete trials, grouped by optimizer."""
    groups: dict[str, list[LearningRatePoint]] = {}
    for t in trials:
        if t.state == TrialState.COMPLETE and "learning_rate" in t.params:
            optimizer = str(t.params.get("optimizer", "(fixed)"))
            point = LearningRatePoint(t.params["learning_rate"], accuracy(t))
            groups.setdefault(optimizer, []).append(point)
    return groups


def weight_norm_info(trials: Sequence[FrozenTrial]) -> list[Line]:
    """The weight norm per epoch of each trial given (the report gives the top five)."""
    return [
        Line(f"trial {t.number} ({accuracy(t):.4f})", curves(t).get("weight_norm", []))
        for t in trials
    ]


def class_weights_info(trial: FrozenTrial) -> ClassWeights | None:
    """Each class's learned weights as an image (C, c, h, w) in [0, 1], for linear models."""
    stored = trial.user_attrs.get(CLASS_WEIGHTS_ATTR)
    if not stored:
        return None
    raw = np.frombuffer(base64.b64decode(stored["uint8_base64"]), dtype=np.uint8)
    return ClassWeights(
        raw.reshape(stored["shape"]).astype(np.float64) / 255, list(stored["classes"])
    )


# -- domain figures --------------------------------------------------------------------------


def _plot_curves(curves: dict[str, list[float]], title: str) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = list(range(len(curves.get("val_accuracy", []))))
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for split, dash in (("train", "dot"), ("val", "solid")):
            values = curves.get(f"{split}_{metric}", [])
            fig.add_scatter(
                x=epochs, y=values, name=f"{split} {metric}", row=1, col=col, line={"dash": dash}
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=title, height=380)
    return fig


def _plot_learning_rate(groups: dict[str, list[tuple[float, float]]]) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    for optimizer, points in sorted(groups.items()):
        fig.add_scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], mode="markers", name=optimizer
        )
    fig.update_xaxes(type="log", title_text="learning_rate")
    fig.update_yaxes(title_text="validation accuracy")
    fig.update_layout(height=380, legend_title_text="optimizer")
    return fig


def _per_epoch(lines: Sequence[tuple[str, Sequence[float]]], y_title: str) -> go.Figure:
    """One line per (name, values), against the epoch."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, values in lines:
        fig.add_scatter(x=list(range(len(values))), y=list(values), mode="lines", name=name)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(height=380)
    return fig


def _plot_weight_norms(lines: Sequence[Line]) -> go.Figure:
    return _per_epoch(lines, "sqrt(sum W²)")


def _plot_class_weights(images: np.ndarray, classes: list[str]) -> go.Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = min(len(classes), 10)
    rows = math.ceil(len(classes) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=classes)
    for i, image in enumerate(images):
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


def intermediate_info(trials: Sequence[FrozenTrial]) -> dict[str, list[list[float]]]:
    """Every trial's reported validation accuracies, in epoch order, grouped by state."""
    groups: dict[str, list[list[float]]] = {}
    for t in trials:
        if t.intermediate_values:
            steps = sorted(t.intermediate_values)
            groups.setdefault(t.state.name, []).append([t.intermediate_values[s] for s in steps])
    return groups


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


def _plot_pareto(info: ParetoInfo) -> go.Figure:
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


def _plot_intermediate(groups: dict[str, list[list[float]]]) -> go.Figure:
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


def snapshot(study: optuna.Study, *, user_attrs: bool = True) -> optuna.Study:
    """An in-memory copy: the trials are read from the database once, not once per figure.

    Optuna's figures copy every trial several times and use none of its user attrs, so they
    get a copy without them (`user_attrs=False`): the curves hpsearch stores would triple
    the time of a 1,000-trial report.
    """
    import optuna
    from optuna.trial import FrozenTrial

    trials = own_trials(study.get_trials(deepcopy=False))  # warm-start copies are not drawn
    if not user_attrs:
        trials = [
            FrozenTrial(
                number=t.number,
                state=t.state,
                value=None,
                values=t.values,
                datetime_start=t.datetime_start,
                datetime_complete=t.datetime_complete,
                params=t.params,
                distributions=t.distributions,
                user_attrs={},
                system_attrs=t.system_attrs,
                # A multi-objective study keeps its per-epoch accuracy in the curves only.
                intermediate_values=t.intermediate_values
                or dict(enumerate(curves(t).get("val_accuracy", []))),
                trial_id=t.number,
            )
            for t in trials
        ]
    copy = optuna.create_study(study_name=study.study_name, directions=study.directions)
    copy.add_trials(trials)
    for key, value in study.user_attrs.items():  # the stopping decision, confirm, ...
        copy.set_user_attr(key, value)
    return copy


# -- sections --------------------------------------------------------------------------------


def _attempt(make: Callable[[], go.Figure]) -> tuple[go.Figure | None, str]:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna warns where it draws an empty figure
            figure = make()
    except (ValueError, RuntimeError, KeyError, ZeroDivisionError) as e:
        return None, f"not drawn: {e}"
    if not figure.data:
        return None, "not drawn: no trial has the values this figure needs yet"
    return figure, ""


def study_sections(study: optuna.Study, spec: StudySpec) -> list[Section]:
    import optuna.visualization as vis

    complete = complete_best_first(study.get_trials(deepcopy=False))
    best = complete[0] if complete else None
    lean = snapshot(study, user_attrs=False)  # for Optuna's figures
    # Optuna's figures show one value; in a multi-objective study, the validation accuracy.
    target: dict[str, Any] = {"target_name": "validation accuracy"}
    if spec.multi_objective:
        target["target"] = accuracy
    names = [p.name for p in spec.params]
    contour = [p for p in ("learning_rate", "reg_strength") if p in names]
    if len(contour) < 2:
        contour = names[:2]
    standard = [
        (
            "history",
            "Optimization history",
            "Validation accuracy of every trial and the best so far.",
            lambda: vis.plot_optimization_history(lean, **target),
        ),
        (
            "importance",
            "Parameter importances (PED-ANOVA)",
            "How much each parameter explains the top trials' validation accuracy; PED-ANOVA, "
            "Optuna 5's default, handles conditional parameters.",
            lambda: vis.plot_param_importances(lean, **target),
        ),
        (
            "parallel",
            "Parallel coordinates",
            "Every complete trial across all parameters.",
            lambda: vis.plot_parallel_coordinate(lean, **target),
        ),
        (
            "slice",
            "Slice",
            "Validation accuracy against each parameter on its own.",
            lambda: vis.plot_slice(lean, **target),
        ),
        (
            "contour",
            f"Contour of {' × '.join(contour)}",
            "Validation accuracy interpolated over the two parameters.",
            lambda: vis.plot_contour(lean, params=contour, **target),
        ),
        (
            "intermediate",
            "Intermediate values",
            "Every trial's validation accuracy per epoch; pruned trials end early.",
            lambda: _plot_intermediate(intermediate_info(lean.get_trials(deepcopy=False))),
        ),
        (
            "edf",
            "Empirical distribution function",
            "The share of trials below each validation accuracy.",
            lambda: vis.plot_edf(lean, **target),
        ),
        (
            "timeline",
            "Timeline",
            "When each trial ran and how it ended.",
            lambda: vis.plot_timeline(study),
        ),
    ]
    if spec.multi_objective:
        standard.insert(
            0,
            (
                "pareto",
                f"Pareto front: validation accuracy against {spec.costs[0]}",
                "Every complete trial; the front (no trial is better on every objective) joined; "
                "the star is the recommended configuration, the cheapest within one standard "
                "error of the best accuracy.",
                lambda: _plot_pareto(pareto_info(study, spec)),
            ),
        )
    sections = []
    for key, title, caption, make in standard:
        figure, note = _attempt(make)
        sections.append(Section(f"{study.study_name}-{key}", title, caption, figure, note))
    if best is not None:
        sections.append(
            Section(
                f"{study.study_name}-curves",
                f"Best trial {best.number}: curves",
                "Training and validation loss and accuracy per epoch of the best trial.",
                *_attempt(lambda: _plot_curves(curves_info(best), f"trial {best.number}")),
            )
        )
    sections.append(
        Section(
            f"{study.study_name}-learning-rate",
            "Validation accuracy against learning rate",
            "Complete trials, coloured by optimizer.",
            *_attempt(lambda: _plot_learning_rate(learning_rate_info(complete))),
        )
    )
    sections.append(
        Section(
            f"{study.study_name}-weight-norm",
            "Weight norm per epoch",
            "sqrt(sum W²) over the weight matrices of the five best trials.",
            *_attempt(lambda: _plot_weight_norms(weight_norm_info(complete[:5]))),
        )
    )
    images = next((class_weights_info(t) for t in complete if class_weights_info(t)), None)
    if images is not None:
        owner = next(t for t in complete if CLASS_WEIGHTS_ATTR in t.user_attrs)
        sections.append(
            Section(
                f"{study.study_name}-class-weights",
                f"Learned weights per class (trial {owner.number})",
                "Each class's weight vector drawn as an image: what the model looks for.",
                *_attempt(lambda: _plot_class_weights(*images)),
            )
        )
    return sections


def comparison_sections(studies: Sequence[optuna.Study]) -> list[Section]:
    """With several studies: their histories together and their best trials' curves."""
    import optuna.visualization as vis

    def best_curves() -> go.Figure:
        lines = []
        for study in studies:
            complete = complete_best_first(study.get_trials(deepcopy=False))
            if complete:
                best = complete[0]
                lines.append(
                    (
                        f"{study.study_name} (trial {best.number})",
                        curves_info(best).get("val_accuracy", []),
                    )
                )
        return _per_epoch(lines, "validation accuracy")

    return [
        Section(
            "compare-history",
            "Optimization histories",
            "Every study's trials and the best so far.",
            *_attempt(
                lambda: vis.plot_optimization_history(
                    list(studies), target_name="validation accuracy"
                )
            ),
        ),
        Section(
            "compare-curves",
            "Best trials' validation curves",
            "Validation accuracy per epoch of each study's best trial.",
            *_attempt(best_curves),
        ),
    ]


# -- HTML ------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
td, th { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
.caption { color: #555; margin: 0.2rem 0 0.4rem; } .note { color: #a33; font-style: italic; }
.figure { margin-bottom: 1.5rem; }
"""


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header) if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(c))}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _summary_html(info: Summary) -> str:
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(info.states.items()))
    best = (
        "none yet"
        if info.best_value is None
        else (f"{info.best_value:.4f} (trial {info.best_trial})")
    )
    rows = [
        ("model", info.model),
        ("dataset", info.dataset),
        ("trials", states),
        ("best validation accuracy", best),
        ("training time (sum over trials)", f"{info.train_seconds:.1f} s"),
        ("wall time (first start to last end)", f"{info.wall_seconds:.1f} s"),
        *([("stopped early", info.stopped)] if info.stopped else []),
        *([("recommended (Pareto front)", info.recommended)] if info.recommended else []),
        *([("started warm from", info.warm)] if info.warm else []),
    ]
    params = _table(sorted(info.best_params.items()), ["parameter", "best value"])
    return _table(rows) + (params if info.best_params else "")


def _section_html(section: Section) -> str:
    if section.figure is not None:
        body = section.figure.to_html(full_html=False, include_plotlyjs=False, div_id=section.id)
    else:
        note_id, note = html.escape(section.id), html.escape(section.note)
        body = f'<p class="note" id="{note_id}">{note}</p>'
    return (
        f'<div class="figure"><h3>{html.escape(section.title)}</h3>'
        f'<p class="caption">{html.escape(section.caption)}</p>{body}</div>'
    )


def build_report(studies: Sequence[tuple[optuna.Study, StudySpec]], storage_url: str) -> str:
    """The whole report as one HTML string."""
    import optuna
    from plotly.offline import get_plotlyjs

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a figure that cannot be drawn says so

    studies = [(snapshot(study), spec) for study, spec in studies]
    parts = []
    if len(studies) > 1:
        infos = [summary_info(s, spec) for s, spec in studies]
        rows = [
            (
                i.study,
                i.model,
                i.dataset,
                "-" if i.best_value is None else f"{i.best_value:.4f}",
                format_params(i.best_params),
            )
            for i in infos
        ]
        parts.append(
            "<h2>Side by side</h2>"
            + _table(rows, ["study", "model", "dataset", "best val acc", "best configuration"])
        )
        parts += [_section_html(s) for s in comparison_sections([s for s, _ in studies])]
    for study, spec in studies:
        parts.append(
            f'<h2 id="{html.escape(study.study_name)}">Study {html.escape(study.study_name)}</h2>'
        )
        parts.append(_summary_html(summary_info(study, spec)))
        parts += [_section_html(s) for s in study_sections(study, spec)]
    names = ", ".join(s.study_name for s, _ in studies)
    created = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hpsearch report: "
        f"{html.escape(names)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>hpsearch report</h1><p class='caption'>{html.escape(names)} from "
        f"{html.escape(storage_url)}, {created}</p>{''.join(parts)}</body></html>"
    )
