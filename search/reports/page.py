"""The report's HTML: the summary tables, the sections, plotly.js embedded once."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.reports.sections import Section
from hpsearch.reports.sections import comparison_sections
from hpsearch.reports.sections import snapshot
from hpsearch.reports.sections import study_sections
from hpsearch.summary import StudyDetail
from hpsearch.summary import describe_study
from hpsearch.text import format_params
from hpsearch.text import format_value

if TYPE_CHECKING:
    import optuna

    from hpsearch.spec import StudySpec

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; display: block; overflow-x: auto; }
td, th { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
.caption { color: #555; margin: 0.2rem 0 0.4rem; } .note { color: #a33; font-style: italic; }
.figure { margin-bottom: 1.5rem; overflow-x: auto; }
"""


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header) if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(c))}</td>" for c in r) + "</tr>"
        for r in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _summary_rows(info: StudyDetail) -> list[tuple[str, str]]:
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(info.states.items()) if n)
    best = info.best
    rows = [
        ("model", info.model),
        ("dataset", info.dataset),
        ("trials", states or "none yet"),
        (
            "best validation accuracy",
            "none yet" if best is None else f"{best.val_accuracy:.4f} (trial {best.trial_number})",
        ),
        ("training time (sum over trials)", f"{info.train_seconds:.1f} s"),
        ("wall time (first start to last end)", f"{info.wall_seconds:.1f} s"),
    ]
    if info.stopped:
        rows.append(
            ("stopped early", f"after {info.stopped['after']} trials: {info.stopped['reason']}")
        )
    if info.front:
        chosen = info.front[0]
        values = ", ".join(f"{n} {format_value(v)}" for n, v in chosen.values.items())
        rows.append(
            (
                "recommended (Pareto front)",
                f"trial {chosen.trial_number} ({values}): {info.recommended_because}",
            )
        )
    if info.warm:
        rows.append(
            ("started warm from", f"{info.warm['source']}: {info.warm['added']} trials, not drawn")
        )
    return rows


def _summary_html(info: StudyDetail) -> str:
    params = info.best.params if info.best else {}
    table = _table(sorted(params.items()), ["parameter", "best value"]) if params else ""
    return _table(_summary_rows(info)) + table


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


def _side_by_side(details: Sequence[StudyDetail]) -> str:
    rows = [
        (
            d.study,
            d.model,
            d.dataset,
            "-" if d.best is None else f"{d.best.val_accuracy:.4f}",
            format_params(d.best.params) if d.best else "",
        )
        for d in details
    ]
    header = ["study", "model", "dataset", "best val acc", "best configuration"]
    return "<h2>Side by side</h2>" + _table(rows, header)


def build_report(studies: Sequence[tuple[optuna.Study, StudySpec]], storage_url: str) -> str:
    """The whole report as one HTML string."""
    import optuna
    from plotly.offline import get_plotlyjs

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a figure that cannot be drawn says so

    studies = [(snapshot(study), spec) for study, spec in studies]
    details = [describe_study(study, spec) for study, spec in studies]
    parts = []
    if len(studies) > 1:
        parts.append(_side_by_side(details))
        parts += [_section_html(s) for s in comparison_sections([s for s, _ in studies])]
    for (study, spec), detail in zip(studies, details, strict=True):
        name = html.escape(study.study_name)
        parts.append(f'<h2 id="{name}">Study {name}</h2>')
        parts.append(_summary_html(detail))
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
