"""Databases and exports written by earlier hpsearch are read, resumed and retrained.

tests/fixtures/old_main/: made before one import name (commit b3ecd16, when the packages were
installed as search, models and hpsearch): `hpsearch run study.toml` (4 trials) and
`hpsearch export old-main -o best.json`.
tests/fixtures/old_schedule/: made by hpsearch 0.1 (commit f7e22d4), whose schedules stepped
once an epoch: `hpsearch run study.toml --storage sqlite:///study.db` (a one-cycle schedule,
4 trials) and `hpsearch export old-schedule --storage sqlite:///study.db --top 4 -o best.json`.
"""

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


def _copy(fixture: str, tmp_path: Path) -> str:
    for name in ("study.db", "best.json", "study.toml"):
        shutil.copy(FIXTURES.parent / fixture / name, tmp_path / name)
    return f"sqlite:///{tmp_path / 'study.db'}"


def _retrain(export: str, rank: int, out: str) -> dict:
    assert main(["retrain", export, "--rank", str(rank), "--out", out, "--quiet"]) == 0
    return json.loads((Path(out) / Path(export).name).read_text())["retrain"]


@pytest.mark.slow
def test_a_study_of_per_epoch_schedules_resumes_and_retrains_with_them(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    url = _copy("old_schedule", tmp_path)
    old_export = json.loads((tmp_path / "best.json").read_text())
    assert "schedule_every" not in old_export["configs"][0]["params"]
    # Its old trials retrain to the same validation accuracy only when stepped per epoch.
    assert _retrain("best.json", 1, "r1")["reproduced"] is True
    # Resumed: the new trials train as the old ones did, and the export says how.
    assert main(["run", "study.toml", "--storage", url, "--n-trials", "6", "--quiet"]) == 0
    assert main(["export", "old-schedule", "--storage", url, "--top", "6", "-o", "new.json"]) == 0
    configs = json.loads((tmp_path / "new.json").read_text())["configs"]
    assert {c["params"]["schedule_every"] for c in configs} == {"epoch"}
    rank = next(c["rank"] for c in configs if c["trial_number"] >= 4)  # a resumed run's trial
    assert _retrain("new.json", rank, "r2")["reproduced"] is True
    # A study file that asks for per-batch stepping is another search: one line, exit 2.
    text = (
        (tmp_path / "study.toml")
        .read_text()
        .replace("batch_size = 32", 'batch_size = 32, schedule_every = "batch"')
    )
    (tmp_path / "batch.toml").write_text(text)
    capsys.readouterr()
    assert main(["run", "batch.toml", "--storage", url, "--n-trials", "7", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "[model]: fixed.schedule_every: stored 'epoch', now 'batch'" in err


def test_a_new_study_stores_that_its_schedules_step_every_batch(write_study, db_url):
    path = write_study()
    assert main(["run", str(path), "--storage", db_url, "--n-trials", "1", "--quiet"]) == 0
    study = optuna.load_study(study_name="tiny", storage=db_url)
    assert study.user_attrs["hpsearch_spec"]["model"]["fixed"]["schedule_every"] == "batch"
    assert main(["run", str(path), "--storage", db_url, "--n-trials", "2", "--quiet"]) == 0
