"""A database and an export written by hpsearch before one import name (commit b3ecd16, when
the packages were installed as search, models and hpsearch) are read, resumed and retrained.

tests/fixtures/old_main/ was made with that commit's code: `hpsearch run study.toml` (4 trials)
and `hpsearch export old-main -o best.json`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "old_main"


@pytest.mark.slow
def test_an_old_study_and_export_are_read_resumed_and_retrained(tmp_path, capsys, monkeypatch):
    for name in ("study.db", "best.json", "study.toml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert main(["show", "old-main", "--storage", url]) == 0
    assert "4 of 4 trials finished" in capsys.readouterr().out
    assert main(["run", "study.toml", "--storage", url, "--n-trials", "6", "--quiet"]) == 0
    assert "6 of 6 trials finished" in capsys.readouterr().out
    trials = optuna.load_study(study_name="old-main", storage=url).trials
    assert [t.state.name for t in trials[:4]] == ["COMPLETE"] * 4  # the old trials, kept
    assert main(["retrain", "best.json", "--out", "r", "--quiet"]) == 0
    result = json.loads((tmp_path / "r" / "best.json").read_text())["retrain"]
    assert result["reproduced"] is True
    assert 0.5 < result["test_accuracy"] <= 1.0
