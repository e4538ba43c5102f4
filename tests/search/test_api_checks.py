"""The Python API checks its arguments as strictly as the CLI checks its flags, before anything
is stored, and the examples in its docstring (what `help(hpsearch)` shows) run."""

from __future__ import annotations

import doctest
from pathlib import Path

import optuna
import pytest

import hpsearch
import hpsearch.api
from hpsearch.errors import UsageError
from hpsearch.records import CONFIRM_ATTR
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def study(write_study, db_url):
    text = TINY.replace("n_trials = 6", "n_trials = 2")
    return hpsearch.run(str(write_study(text)), storage=db_url, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "call, words",
    [
        (lambda s, f, u: hpsearch.run(f, storage=u, n_trials=-1), "n_trials: got -1; allowed"),
        (lambda s, f, u: hpsearch.run(f, storage=u, n_trials="5"), "n_trials: got '5'"),
        (lambda s, f, u: hpsearch.run(f, storage=u, n_trials=2.5), "n_trials: got 2.5"),
        (lambda s, f, u: hpsearch.run(f, storage=u, workers=0), "workers: got 0"),
        (lambda s, f, u: hpsearch.run(f, storage=u, timeout=-5), "timeout: got -5"),
        (lambda s, f, u: hpsearch.run(f, storage=u, timeout="abc"), "timeout: got 'abc'"),
        (lambda s, f, u: hpsearch.run(42, storage=u), "study: got int; allowed"),
        (lambda s, f, u: hpsearch.export(s, top=0), "top: got 0"),
        (lambda s, f, u: hpsearch.export("name"), "study: got str 'name'; allowed"),
        (lambda s, f, u: hpsearch.report([], "r.html"), "studies: got none"),
        (lambda s, f, u: hpsearch.figures(None), "study: got NoneType None"),
        (lambda s, f, u: hpsearch.confirm(s, top=0), "top: got 0"),
        (lambda s, f, u: hpsearch.confirm(s, repeats=0), "repeats: got 0"),
        (lambda s, f, u: hpsearch.retrain(42), "document: got int"),
        (lambda s, f, u: hpsearch.retrain(hpsearch.export(s), rank=0), "rank: got 0"),
    ],
)
def test_bad_arguments_raise_the_clis_line_and_store_nothing(
    study, write_study, db_url, tmp_path, call, words
):
    fresh = write_study(TINY.replace('name = "tiny"', 'name = "fresh"'), name="fresh.toml")
    before = {t.number for t in study.trials}, dict(study.user_attrs)
    with pytest.raises(UsageError, match="^" + words.split(":")[0]) as raised:
        call(study, str(fresh), db_url)
    assert words in str(raised.value) and "\n" not in str(raised.value)
    assert "fresh" not in optuna.get_all_study_names(db_url)  # nothing created
    reloaded = optuna.load_study(study_name="tiny", storage=db_url)
    assert ({t.number for t in reloaded.trials}, dict(reloaded.user_attrs)) == before
    assert CONFIRM_ATTR not in reloaded.user_attrs


@pytest.mark.slow
def test_the_api_docstring_examples_run(tmp_path, monkeypatch):
    (tmp_path / "studies").symlink_to(ROOT / "studies")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{tmp_path / 'd.db'}")
    result = doctest.testmod(hpsearch.api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0
    assert (tmp_path / "retrained" / "quickstart").is_dir()
