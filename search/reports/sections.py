"""The report's catalogue: which figures a study gets, in which order, with their captions.

Each entry is a `Figure`: an id, a title, a caption and how to make it. `study_sections`
draws them; a figure that cannot be drawn becomes a `Section` with a note saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from hpsearch.records import CLASS_WEIGHTS_ATTR
from hpsearch.records import accuracy
from hpsearch.records import complete_best_first
from hpsearch.records import curves
from hpsearch.records import own_trials
from hpsearch.reports.class_weights import class_weights_info
from hpsearch.reports.class_weights import plot_class_weights
from hpsearch.reports.curves import Line
from hpsearch.reports.curves import curves_info
from hpsearch.reports.curves import intermediate_info
from hpsearch.reports.curves import plot_curves
from hpsearch.reports.curves import plot_intermediate
from hpsearch.reports.curves import plot_lines
from hpsearch.reports.curves import plot_weight_norms
from hpsearch.reports.curves import weight_norm_info
from hpsearch.reports.front import pareto_info
from hpsearch.reports.front import plot_pareto
from hpsearch.reports.learning_rate import learning_rate_info
from hpsearch.reports.learning_rate import plot_learning_rate

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

    from hpsearch.spec import StudySpec


@dataclass
class Section:
    """A figure (or the reason there is none) with its heading and a sentence about it."""

    id: str
    title: str
    caption: str
    figure: go.Figure | None = None
    note: str = ""


class Figure(NamedTuple):
    """A catalogue entry: what `Section` it becomes once `make` has run."""

    key: str
    title: str
    caption: str
    make: Callable[[], go.Figure]


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


def _optuna_figures(study: optuna.Study, spec: StudySpec) -> list[Figure]:
    """Optuna's own figures, drawn from a copy without user attrs."""
    # Over 60 lines: a catalogue, one entry per figure.
    import optuna.visualization as vis

    lean = snapshot(study, user_attrs=False)
    # Optuna's figures show one value; in a multi-objective study, the validation accuracy.
    target: dict[str, Any] = {"target_name": "validation accuracy"}
    if spec.multi_objective:
        target["target"] = accuracy
    names = [p.name for p in spec.params]
    contour = [p for p in ("learning_rate", "reg_strength") if p in names]
    if len(contour) < 2:
        contour = names[:2]
    return [
        Figure(
            "history",
            "Optimization history",
            "Validation accuracy of every trial and the best so far.",
            lambda: vis.plot_optimization_history(lean, **target),
        ),
        Figure(
            "importance",
            "Parameter importances (PED-ANOVA)",
            "How much each parameter explains the top trials' validation accuracy; PED-ANOVA, "
            "Optuna 5's default, handles conditional parameters.",
            lambda: vis.plot_param_importances(lean, **target),
        ),
        Figure(
            "parallel",
            "Parallel coordinates",
            "Every complete trial across all parameters.",
            lambda: vis.plot_parallel_coordinate(lean, **target),
        ),
        Figure(
            "slice",
            "Slice",
            "Validation accuracy against each parameter on its own.",
            lambda: vis.plot_slice(lean, **target),
        ),
        Figure(
            "contour",
            f"Contour of {' × '.join(contour)}",
            "Validation accuracy interpolated over the two parameters.",
            lambda: vis.plot_contour(lean, params=contour, **target),
        ),
        Figure(
            "intermediate",
            "Intermediate values",
            "Every trial's validation accuracy per epoch; pruned trials end early.",
            lambda: plot_intermediate(intermediate_info(lean.get_trials(deepcopy=False))),
        ),
        Figure(
            "edf",
            "Empirical distribution function",
            "The share of trials below each validation accuracy.",
            lambda: vis.plot_edf(lean, **target),
        ),
        Figure(
            "timeline",
            "Timeline",
            "When each trial ran and how it ended.",
            lambda: vis.plot_timeline(study),
        ),
    ]


def _domain_figures(study: optuna.Study, spec: StudySpec) -> list[Figure]:
    """hpsearch's own figures, from the curves and weights it stores with each trial."""
    complete = complete_best_first(study.get_trials(deepcopy=False))
    figures = []
    if complete:
        best = complete[0]
        figures.append(
            Figure(
                "curves",
                f"Best trial {best.number}: curves",
                "Training and validation loss and accuracy per epoch of the best trial.",
                lambda: plot_curves(curves_info(best), f"trial {best.number}"),
            )
        )
    figures += [
        Figure(
            "learning-rate",
            "Validation accuracy against learning rate",
            "Complete trials, coloured by optimizer.",
            lambda: plot_learning_rate(learning_rate_info(complete)),
        ),
        Figure(
            "weight-norm",
            "Weight norm per epoch",
            "sqrt(sum W²) over the weight matrices of the five best trials.",
            lambda: plot_weight_norms(weight_norm_info(complete[:5])),
        ),
    ]
    owner = next((t for t in complete if CLASS_WEIGHTS_ATTR in t.user_attrs), None)
    info = class_weights_info(owner) if owner is not None else None
    if info is not None:
        figures.append(
            Figure(
                "class-weights",
                f"Learned weights per class (trial {owner.number})",
                "Each class's weight vector drawn as an image: what the model looks for.",
                lambda: plot_class_weights(info),
            )
        )
    return figures


def _pareto_figure(study: optuna.Study, spec: StudySpec) -> list[Figure]:
    if not spec.multi_objective:
        return []
    return [
        Figure(
            "pareto",
            f"Pareto front: validation accuracy against {spec.costs[0]}",
            "Every complete trial; the front (no trial is better on every objective) joined; "
            "the star is the recommended configuration, the cheapest within one standard "
            "error of the best accuracy.",
            lambda: plot_pareto(pareto_info(study, spec)),
        )
    ]


def study_sections(study: optuna.Study, spec: StudySpec) -> list[Section]:
    """One study's figures: the Pareto front first (multi-objective), Optuna's, then ours."""
    figures = [
        *_pareto_figure(study, spec),
        *_optuna_figures(study, spec),
        *_domain_figures(study, spec),
    ]
    return [
        Section(f"{study.study_name}-{f.key}", f.title, f.caption, *_attempt(f.make))
        for f in figures
    ]


def comparison_sections(studies: Sequence[optuna.Study]) -> list[Section]:
    """With several studies: their histories together and their best trials' curves."""
    import optuna.visualization as vis

    def best_curves() -> go.Figure:
        lines = []
        for study in studies:
            complete = complete_best_first(study.get_trials(deepcopy=False))
            if complete:
                best = complete[0]
                name = f"{study.study_name} (trial {best.number})"
                lines.append(Line(name, curves_info(best).get("val_accuracy", [])))
        return plot_lines(lines, "validation accuracy")

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
