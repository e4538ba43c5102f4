"""The HTML report: opened in headless Chromium, and each figure's data checked directly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpsearch.cli import main
from hpsearch.models import MODELS
from hpsearch.models.data import load_dataset
from hpsearch.models.training import train
from hpsearch.records import load_study
from hpsearch.reports import class_weights_info
from hpsearch.reports import curves_info
from hpsearch.reports import learning_rate_info
from hpsearch.reports import study_sections
from hpsearch.reports import weight_norm_info
from hpsearch.storage import StorageURL
from hpsearch.storage import open_storage
from hpsearch.summary import describe_study
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]

# A study every figure can be drawn for: 14 trials, pruning on, several optimizers.
REPORTED = (
    TINY.replace("n_trials = 6", "n_trials = 14").replace(
        'pruner = "none"', 'pruner = { type = "median", n_startup_trials = 3 }'
    )
    + 'optimizer = { type = "categorical", choices = ["sgd", "adam"] }\n'
)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """Two finished studies in one database: (folder, storage URL)."""
    folder = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{folder / 'h.db'}"
    (folder / "a.toml").write_text(REPORTED)
    (folder / "b.toml").write_text(
        REPORTED.replace('name = "tiny"', 'name = "other"').replace(
            "n_trials = 14", "n_trials = 8"
        )
    )
    for name in ("a.toml", "b.toml"):
        assert main(["run", str(folder / name), "--storage", url, "--quiet"]) == 0
    return folder, url


def _load(url: str, name: str = "tiny"):
    study, spec = load_study(open_storage(StorageURL(url, "test"), create=False), name, url)
    return study, spec, url


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=20000",
]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("HPSEARCH_REQUIRE_CHROMIUM") == "1":
            pytest.fail("CI installs chromium; it is missing")
        pytest.skip("apt-get install chromium to open reports in a browser (CI installs it)")
    return found


def open_in_chromium(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the console errors Chromium logged."""
    done = subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'p'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    errors = [
        line
        for line in done.stderr.splitlines()
        if "CONSOLE" in line and re.search(r"error|uncaught", line, re.I)
    ]
    return done.stdout, errors


@pytest.mark.slow
def test_the_console_error_detector_sees_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><script>console.error('boom'); undefinedCall();</script></body></html>"
    )
    _, errors = open_in_chromium(page, tmp_path)
    assert errors  # otherwise the test below could not fail


@pytest.mark.slow
def test_the_report_opens_without_console_errors_and_draws_every_figure(reported, tmp_path):
    folder, url = reported
    page = tmp_path / "report.html"
    assert main(["report", "tiny", "other", "--storage", url, "-o", str(page)]) == 0
    assert re.search(r"<script[^>]*src=", page.read_text()) is None  # no external script
    dom, errors = open_in_chromium(page, tmp_path)
    assert errors == []
    study, spec, _ = _load(url)
    expected = [s.id for s in study_sections(study, spec)]
    assert len(expected) == 12  # 8 of Optuna's, 4 of this domain (class weights included)
    blocks = dom.split('<div class="figure">')[1:]
    drawn = {re.search(r'id="([^"]+)"', b).group(1) for b in blocks if "main-svg" in b}
    assert set(expected) <= drawn
    assert {"compare-history", "compare-curves"} <= drawn
    assert 'class="note"' not in dom  # no figure had to be left out


@pytest.mark.slow
def test_summary_and_curves_data(reported):
    _, url = reported
    study, spec, _ = _load(url)
    info = describe_study(study, spec)
    trials = study.trials
    assert {s: n for s, n in info.states.items() if n} == {
        s: sum(t.state.name == s for t in trials) for s in {t.state.name for t in trials}
    }
    assert info.best.val_accuracy == study.best_value
    assert info.best.trial_number == study.best_trial.number
    assert info.best.params == {**spec.model.fixed, **study.best_trial.params}
    assert info.train_seconds == pytest.approx(sum(t.user_attrs["seconds"] for t in trials))
    best = study.best_trial
    assert curves_info(best) == best.user_attrs["curves"]
    section = next(s for s in study_sections(study, spec) if s.id.endswith("-curves"))
    plotted = {trace.name: list(trace.y) for trace in section.figure.data}
    assert plotted["val accuracy"] == best.user_attrs["curves"]["val_accuracy"]
    assert plotted["train loss"] == best.user_attrs["curves"]["train_loss"]


@pytest.mark.slow
def test_learning_rate_and_weight_norm_data(reported):
    _, url = reported
    study, spec, _ = _load(url)
    groups = learning_rate_info(study.trials)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(groups) == sorted({t.params["optimizer"] for t in complete})
    for optimizer, points in groups.items():
        assert sorted(points) == sorted(
            (t.params["learning_rate"], t.value)
            for t in complete
            if t.params["optimizer"] == optimizer
        )
    top = sorted(complete, key=lambda t: t.value, reverse=True)[:5]
    lines = weight_norm_info(top)
    assert [line.values for line in lines] == [t.user_attrs["curves"]["weight_norm"] for t in top]
    assert lines[0].name == f"trial {top[0].number} ({top[0].value:.4f})"
    section = next(s for s in study_sections(study, spec) if s.id.endswith("-weight-norm"))
    assert [list(tr.y) for tr in section.figure.data] == [line.values for line in lines]


@pytest.mark.slow
def test_class_weight_images_are_the_best_trials_weights(reported):
    _, url = reported
    study, spec, _ = _load(url)
    best = study.best_trial
    images, classes = class_weights_info(best)
    assert images.shape == (10, 1, 8, 8) and classes == [str(c) for c in range(10)]
    # Retraining the trial (deterministic) gives the weights the images were drawn from.
    data = load_dataset("digits", val_fraction=0.2, test_fraction=0.2, seed=0)
    model = MODELS[spec.model.kind].build(
        {**spec.model.fixed, **best.params}, best.user_attrs["seed"]
    )
    train(model, data.X_train, data.y_train, data.X_val, data.y_val, classes=data.classes)
    W = model.weights_["W"].T.reshape(10, -1).astype(np.float64)
    scaled = (W - W.min(axis=1, keepdims=True)) / np.ptp(W, axis=1, keepdims=True)
    np.testing.assert_allclose(images.reshape(10, -1), scaled, atol=0.5 / 255 + 1e-9)


@pytest.mark.slow
def test_a_figure_that_cannot_be_drawn_says_why(tmp_path, write_study, db_url):
    # Every trial diverges, so no trial is complete: there is nothing to draw.
    diverging = TINY.replace("low = 1e-3, high = 1e-1", "low = 1e37, high = 1e38")
    diverging = diverging.replace("[data]", '[data]\npreprocess = "none"')
    diverging = diverging.replace("n_trials = 6", "n_trials = 2")
    assert main(["run", str(write_study(diverging)), "--storage", db_url, "--quiet"]) == 3
    study, spec, _ = _load(db_url)
    notes = {s.id: s.note for s in study_sections(study, spec) if s.figure is None}
    assert notes["tiny-history"].startswith("not drawn")
    page = tmp_path / "r.html"
    assert main(["report", "tiny", "--storage", db_url, "-o", str(page)]) == 0
    assert page.read_text().count('class="note"') == len(notes)


@pytest.mark.slow
def test_report_of_an_unknown_study_is_a_one_line_error(reported, capsys):
    _, url = reported
    assert main(["report", "tiny", "nope", "--storage", url]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err


def test_optuna_sees_the_same_trials(reported):
    _, url = reported
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 14


@pytest.mark.slow
def test_intermediate_values_data_and_figure(reported):
    from hpsearch.reports import intermediate_info

    _, url = reported
    study, spec, _ = _load(url)
    groups = intermediate_info(study.trials)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and len(groups["PRUNED"]) == len(pruned)
    for t, run in zip(
        [t for t in study.trials if t.state.name == "COMPLETE"], groups["COMPLETE"], strict=True
    ):
        assert run == [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
    section = next(s for s in study_sections(study, spec) if s.id.endswith("-intermediate"))
    for trace in section.figure.data:
        state = trace.name.split(" ")[0].upper()
        drawn = [y for y in trace.y if y is not None]
        assert drawn == [v for run in groups[state] for v in run]


@pytest.mark.slow
def test_a_comparison_report_of_wide_studies_fits_a_1280_pixel_window(tmp_path):
    """Optuna's slice plot is 300 px a parameter: a study searching eleven parameters drew
    one 3,333 px wide, and the page scrolled sideways. Figures and tables now scroll inside
    their own box; the page is as wide as the window."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    names = ["wide-one", "wide-two"]
    for name in names:
        text = (ROOT / "studies" / "digits_mlp.toml").read_text()
        path = tmp_path / f"{name}.toml"
        text = text.replace("epochs = 40, patience = 8", "epochs = 2")  # the width is the point
        path.write_text(re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text))
        assert main(["run", str(path), "--storage", url, "--quiet", "--n-trials", "2"]) == 0
    page = tmp_path / "report.html"
    assert main(["report", *names, "--storage", url, "-o", str(page)]) == 0
    measured = tmp_path / "measured.html"
    measured.write_text(
        page.read_text()
        + "<script>window.addEventListener('load', () => setTimeout(() => document.body"
        ".setAttribute('data-scroll-width', document.documentElement.scrollWidth), 3000));"
        "</script>"
    )
    done = subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            "--window-size=1280,900",
            f"--user-data-dir={tmp_path / 'p'}",
            "--dump-dom",
            measured.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    width = int(re.search(r'data-scroll-width="(\d+)"', done.stdout).group(1))
    assert width <= 1280, width
