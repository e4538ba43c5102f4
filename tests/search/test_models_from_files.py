"""Every model and every option is reachable from a study file."""

from __future__ import annotations

import inspect
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.models import MODELS
from tests.conftest import TINY
from tests.conftest import require_torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_constructor_argument_has_a_constraint(kind):
    """A study file can set exactly the arguments that validation knows how to check."""
    entry = MODELS[kind]
    arguments = set(inspect.signature(entry.load()).parameters) - {"seed"} - set(entry.preset)
    assert arguments == set(entry.arguments())


@pytest.mark.parametrize(
    "study", sorted((ROOT / "studies").glob("digits_*.toml")), ids=lambda p: p.stem
)
def test_each_digits_study_runs(study, db_url):
    from hpsearch.records import own_trials
    from hpsearch.study_file import load_study_file

    if 'kind = "torch.' in study.read_text():
        require_torch()
    spec = load_study_file(study)
    if spec.warm_start == "quickstart":  # as its comment says: run the quickstart first
        quickstart = ROOT / "studies" / "quickstart.toml"
        assert (
            main(["run", str(quickstart), "--storage", db_url, "--quiet", "--n-trials", "2"]) == 0
        )
    assert main(["run", str(study), "--storage", db_url, "--quiet", "--n-trials", "2"]) == 0
    trials = own_trials(optuna.load_study(study_name=spec.name, storage=db_url).trials)
    assert len(trials) == 2
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)


def test_the_svm_takes_only_hinge_losses_and_mlp_architectures_as_strings(write_study, capsys):
    svm = TINY.replace("numpy.softmax", "numpy.linear_svm")
    assert (
        main(
            [
                "validate",
                str(
                    write_study(
                        svm + 'loss = { type = "categorical", '
                        'choices = ["hinge", "weston_watkins"] }\n'
                    )
                ),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "validate",
                str(write_study(svm.replace("epochs = 3", 'epochs = 3, loss = "softmax"'))),
            ]
        )
        == 2
    )
    assert "[model].fixed.loss" in capsys.readouterr().err
    mlp = TINY.replace("numpy.softmax", "numpy.mlp")
    ok = mlp + 'hidden = { type = "categorical", choices = ["64", "128-64", "256-128-64"] }\n'
    assert main(["validate", str(write_study(ok))]) == 0
    bad = mlp + 'hidden = { type = "categorical", choices = ["64", "128-x"] }\n'
    assert main(["validate", str(write_study(bad))]) == 2
    assert "[params].hidden" in capsys.readouterr().err
