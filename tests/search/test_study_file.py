from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from hpsearch.algorithms import SAMPLERS
from hpsearch.algorithms import Algorithm
from hpsearch.cli import main
from hpsearch.errors import UsageError
from hpsearch.study_file import load_study_file
from hpsearch.study_file import parse_study
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]

# (case id, how to break the tiny study file, the key the message must name)
BAD_FILES = [
    ("toml-syntax", lambda s: s.replace("[data]", "[data"), "line 9"),
    ("unknown-section", lambda s: s + "\n[extra]\nx = 1\n", "[extra]"),
    ("unknown-key", lambda s: s.replace("seed = 0", "sed = 0"), "[study].sed"),
    (
        "unknown-param-key",
        lambda s: s.replace("log = true }", "log = true, lg = 1 }", 1),
        "[params].learning_rate.lg",
    ),
    ("missing-name", lambda s: s.replace('name = "tiny"\n', ""), "[study].name"),
    # A name becomes a folder (retrained/NAME-trialN) and a database key: 128 characters at most.
    ("long-name", lambda s: s.replace('name = "tiny"', f'name = "{"a" * 300}"'), "[study].name"),
    (
        "step-beyond-range",
        lambda s: s.replace("high = 1e-1, log = true }", "high = 2e-3, step = 0.5 }"),
        "[params].learning_rate.step",
    ),
    (
        "hidden-typo",
        lambda s: s.replace('"numpy.softmax"', '"numpy.mlp"').replace(
            "fixed = { epochs = 3 }", 'fixed = { epochs = 3, hidden = "100--5" }'
        ),
        "[model].fixed.hidden",
    ),
    (
        "negative-start-up-trials",
        lambda s: s.replace("n_startup_trials = 3", "n_startup_trials = -1"),
        "[study].sampler.n_startup_trials",
    ),
    (
        "never-active",
        lambda s: s.replace('when = { reg = ["l1", "l2"] }', "when = { reg = [] }"),
        "[params].reg_strength.when.reg",
    ),
    ("missing-n-trials", lambda s: s.replace("n_trials = 6\n", ""), "[study].n_trials"),
    ("missing-kind", lambda s: s.replace('kind = "numpy.softmax"\n', ""), "[model].kind"),
    (
        "missing-param-type",
        lambda s: s.replace('{ type = "float", low = 1e-3', "{ low = 1e-3"),
        "[params].learning_rate.type",
    ),
    ("n-trials-string", lambda s: s.replace("n_trials = 6", 'n_trials = "6"'), "[study].n_trials"),
    ("n-trials-bool", lambda s: s.replace("n_trials = 6", "n_trials = true"), "[study].n_trials"),
    ("n-trials-zero", lambda s: s.replace("n_trials = 6", "n_trials = 0"), "[study].n_trials"),
    (
        "n-trials-negative",
        lambda s: s.replace("n_trials = 6", "n_trials = -3"),
        "[study].n_trials",
    ),
    (
        "low-string",
        lambda s: s.replace("low = 1e-3", 'low = "0.001"'),
        "[params].learning_rate.low",
    ),
    (
        "low-above-high",
        lambda s: s.replace("low = 1e-3, high = 1e-1", "low = 1e-1, high = 1e-3"),
        "[params].learning_rate",
    ),
    (
        "low-equals-high",
        lambda s: s.replace("low = 1e-3, high = 1e-1", "low = 1e-1, high = 1e-1"),
        "[params].learning_rate",
    ),
    ("log-low-zero", lambda s: s.replace("low = 1e-3", "low = 0.0"), "[params].learning_rate"),
    ("log-low-negative", lambda s: s.replace("low = 1e-5", "low = -1.0"), "[params].reg_strength"),
    (
        "log-with-step",
        lambda s: s.replace("high = 1e-1, log = true", "high = 1e-1, log = true, step = 0.01"),
        "[params].learning_rate",
    ),
    ("empty-choices", lambda s: s.replace('["none", "l1", "l2"]', "[]"), "[params].reg"),
    (
        "choices-not-list",
        lambda s: s.replace("choices = [32, 64]", "choices = 32"),
        "[params].batch_size",
    ),
    (
        "when-unknown-param",
        lambda s: s.replace("when = { reg =", "when = { regg ="),
        "[params].reg_strength",
    ),
    (
        "when-later-param",
        lambda s: (
            s.replace('reg = { type = "categorical", choices = ["none", "l1", "l2"] }\n', "")
            + 'reg = { type = "categorical", choices = ["none", "l1", "l2"] }\n'
        ),
        "[params].reg_strength",
    ),
    (
        "when-value-outside-choices",
        lambda s: s.replace('when = { reg = ["l1", "l2"] }', 'when = { reg = ["l1", "l3"] }'),
        "[params].reg_strength",
    ),
    (
        "when-numeric-parent",
        lambda s: s.replace("when = { reg =", "when = { learning_rate ="),
        "[params].reg_strength",
    ),
    ("unknown-model", lambda s: s.replace("numpy.softmax", "numpy.softmx"), "[model].kind"),
    (
        "unknown-dataset",
        lambda s: s.replace('dataset = "digits"', 'dataset = "cifar100"'),
        "[data].dataset",
    ),
    (
        "unknown-preprocess",
        lambda s: s.replace("[data]", '[data]\npreprocess = "whiten"'),
        "[data].preprocess",
    ),
    (
        "unknown-sampler",
        lambda s: s.replace('type = "tpe"', 'type = "bayes"'),
        "[study].sampler.type",
    ),
    (
        "unknown-sampler-option",
        lambda s: s.replace("n_startup_trials = 3", "n_startup = 3"),
        "[study].sampler.n_startup",
    ),
    (
        "sampler-option-type",
        lambda s: s.replace("n_startup_trials = 3", 'n_startup_trials = "3"'),
        "[study].sampler.n_startup_trials",
    ),
    (
        "unknown-pruner",
        lambda s: s.replace('pruner = "none"', 'pruner = "asha"'),
        "[study].pruner.type",
    ),
    (
        "pruner-bad-value",
        lambda s: s.replace(
            'pruner = "none"', 'pruner = { type = "percentile", percentile = 200.0 }'
        ),
        "[study].pruner",
    ),
    (
        "unknown-direction",
        lambda s: s.replace("[study]", '[study]\ndirection = "minimize"'),
        "[study].direction",
    ),
    (
        "fixed-and-searched",
        lambda s: s.replace("fixed = { epochs = 3 }", 'fixed = { epochs = 3, reg = "l2" }'),
        "[params].reg",
    ),
    ("fixed-bad-value", lambda s: s.replace("epochs = 3", "epochs = 0"), "[model].fixed.epochs"),
    (
        "fixed-unknown-argument",
        lambda s: s.replace("epochs = 3", "epochs = 3, lr = 0.1"),
        "[model].fixed.lr",
    ),
    (
        "param-not-an-argument",
        lambda s: s.replace("batch_size = {", "batchsize = {"),
        "[params].batchsize",
    ),
    (
        "choice-the-model-refuses",
        lambda s: s.replace("[32, 64]", "[0, 64]"),
        "[params].batch_size",
    ),
    (
        "float-for-int-argument",
        lambda s: (
            s.replace("fixed = { epochs = 3 }", "")
            + 'epochs = { type = "float", low = 1.0, high = 4.0 }\n'
        ),
        "[params].epochs",
    ),
    (
        "val-fraction-one",
        lambda s: s.replace("val_fraction = 0.2", "val_fraction = 1.0"),
        "[data].val_fraction",
    ),
    (
        "val-fraction-zero",
        lambda s: s.replace("val_fraction = 0.2", "val_fraction = 0"),
        "[data].val_fraction",
    ),
    (
        "val-fraction-negative",
        lambda s: s.replace("val_fraction = 0.2", "val_fraction = -0.2"),
        "[data].val_fraction",
    ),
    ("name-with-space", lambda s: s.replace('name = "tiny"', 'name = "my study"'), "[study].name"),
    (
        "grid-continuous",
        lambda s: s.replace('type = "tpe", n_startup_trials = 3', 'type = "grid"'),
        "[params].learning_rate",
    ),
    ("no-params", lambda s: s[: s.index("[params]")], "[params]"),
]


def _break(case: tuple) -> str:
    text = case[1](TINY)
    assert text != TINY, f"case {case[0]} did not change the file"
    return text


def _one_line_error(err: str, path: Path, key: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{path}: "), lines[0]
    assert key in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]


def test_the_tiny_study_is_valid(write_study, capsys):
    assert main(["validate", str(write_study())]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize("case", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_validate_rejects_with_one_line_naming_the_key(case, write_study, capsys):
    path = write_study(_break(case))
    assert main(["validate", str(path)]) == 2
    line = _one_line_error(capsys.readouterr().err, path, case[2])
    assert "; " in line  # what was wrong; what is allowed


@pytest.fixture(scope="module")
def existing_db(tmp_path_factory) -> Path:
    """A database that already holds a finished study."""
    folder = tmp_path_factory.mktemp("existing")
    (folder / "s.toml").write_text(TINY.replace("n_trials = 6", "n_trials = 2"))
    assert (
        main(
            ["run", str(folder / "s.toml"), "--quiet", "--storage", f"sqlite:///{folder / 'h.db'}"]
        )
        == 0
    )
    return folder / "h.db"


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_run_with_a_bad_file_touches_no_storage(case, write_study, tmp_path, existing_db, capsys):
    path = write_study(_break(case))
    new_db = tmp_path / "new.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{new_db}"]) == 2
    assert not new_db.exists()
    old_db = tmp_path / "old.db"
    shutil.copy(existing_db, old_db)
    before = hashlib.sha256(old_db.read_bytes()).hexdigest()
    assert main(["run", str(path), "--storage", f"sqlite:///{old_db}"]) == 2
    assert hashlib.sha256(old_db.read_bytes()).hexdigest() == before
    _one_line_error(capsys.readouterr().err.splitlines()[-1], path, case[2])


def test_a_sampler_needing_a_missing_package_says_which(write_study, capsys, monkeypatch):
    monkeypatch.setitem(
        SAMPLERS,
        "cmaes",
        Algorithm("optuna.samplers:CmaEsSampler", needs=("hpsearch_no_such_package",)),
    )
    path = write_study(TINY.replace('type = "tpe", n_startup_trials = 3', 'type = "cmaes"'))
    assert main(["validate", str(path)]) == 2
    line = _one_line_error(capsys.readouterr().err, path, "[study].sampler.type")
    assert "pip install hpsearch_no_such_package" in line


def test_missing_file_and_directory(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["validate", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err


def test_the_spec_round_trips_through_its_stored_form(write_study):
    spec = load_study_file(write_study())
    again = parse_study(spec.to_dict(), "stored")
    assert again == spec
    assert [p.name for p in again.params] == ["learning_rate", "batch_size", "reg", "reg_strength"]
    assert again.params[3].when == (("reg", ("l1", "l2")),)


def test_defaults_fill_what_the_file_leaves_out(write_study):
    text = TINY.replace("seed = 0\n", "").replace('pruner = "none"\n', "")
    spec = load_study_file(write_study(text))
    assert spec.seed == 0
    assert spec.pruner.type == "wilcoxon"
    assert spec.data.preprocess == "standardize"
    # A multi-objective study cannot be judged by the Wilcoxon test: it keeps the median.
    costly = text.replace("[study]\n", '[study]\nobjectives = ["val_accuracy", "train_seconds"]\n')
    assert load_study_file(write_study(costly)).pruner.type == "median"


SHIPPED = sorted((ROOT / "studies").rglob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_every_shipped_study_file_is_valid(path):
    import tomllib

    from tests.conftest import require_torch

    if tomllib.loads(path.read_text())["model"]["kind"].startswith("torch."):
        require_torch()
    try:
        load_study_file(path)
    except UsageError as e:  # pragma: no cover - shows which file failed
        pytest.fail(str(e))


def test_there_is_a_study_file_for_every_assignment():
    names = {p.stem[:4] for p in (ROOT / "studies" / "assignments").glob("*.toml")}
    assert names == {"a000", "a001", "a002", "a003", "a004"}


def test_a_byte_order_mark_is_accepted_as_toml_tools_do(write_study, capsys):
    path = write_study()
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert main(["validate", str(path)]) == 0
    assert load_study_file(path) == load_study_file(write_study(name="plain.toml"))
