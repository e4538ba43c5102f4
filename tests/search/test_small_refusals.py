"""Small inputs that used to slip through: each is one line and exit 2, nothing created, or
(for show) a true sentence."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from tests.conftest import TINY

EXAMPLE = Path(__file__).resolve().parents[2] / "studies" / "custom" / "hinge_linear.py"
ENQUEUE = '\n[[enqueue]]\nlearning_rate = 0.01\nbatch_size = 32\nreg = "none"\n'


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("kind", [":", "x:", ":Y", "a.py:", "/etc/passwd:X", "a-b:C"])
def test_a_malformed_class_name_is_one_line(write_study, capsys, kind):
    path = write_study(TINY.replace('kind = "numpy.softmax"', f'kind = "{kind}"'))
    assert main(["validate", str(path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "[model].kind: got " in line and '"package.module:Name" or' in line, line


def test_more_enqueued_tables_than_trials_are_refused(write_study, capsys):
    text = TINY.replace("n_trials = 6", "n_trials = 2") + ENQUEUE * 3
    assert main(["validate", str(write_study(text))]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "[[enqueue]]: 3 tables, more than [study].n_trials = 2" in line


def test_a_run_budget_below_the_enqueued_tables_creates_nothing(write_study, tmp_path, capsys):
    path = write_study(TINY + ENQUEUE * 3)
    db = tmp_path / "none.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{db}", "--n-trials", "2"]) == 2
    assert "--n-trials: got 2; the study file has 3 [[enqueue]]" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.slow
def test_enqueued_tables_added_on_resume_are_refused(write_study, db_url, capsys):
    path = write_study(TINY.replace("n_trials = 6", "n_trials = 2"))
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 0
    path.write_text(TINY.replace("n_trials = 6", "n_trials = 4") + ENQUEUE)
    capsys.readouterr()
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "[[enqueue]]: differs from the tables study 'tiny' was created with" in line
    assert len(optuna.load_study(study_name="tiny", storage=db_url).trials) == 2


@pytest.mark.slow
def test_show_does_not_say_stopped_once_the_study_ran_on(write_study, db_url, capsys):
    rule = "stop = { patience = 2, min_delta = 0.5 }"  # no trial improves by half: stops at 3
    path = write_study(TINY.replace("n_trials = 6", f"n_trials = 6\n{rule}"))
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 0
    assert main(["show", "tiny", "--storage", db_url]) == 0
    assert "stopped after 3 trials" in capsys.readouterr().out
    path.write_text(TINY)  # the rule removed: the next run goes on to the budget
    assert main(["run", str(path), "--storage", db_url, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", "tiny", "--storage", db_url]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 trials finished" in out and "stopped after" not in out


@pytest.mark.slow
def test_a_model_source_naming_another_file_names_that_files_own_hash(
    write_study, db_url, tmp_path, capsys
):
    shutil.copy(EXAMPLE, tmp_path / "mine.py")
    text = TINY.replace('kind = "numpy.softmax"', 'kind = "mine.py:HingeLinear"')
    text = text.replace("n_trials = 6", "n_trials = 1").split("[params]")[0]
    text += '[params]\nlearning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }\n'
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    assert main(["export", "tiny", "--storage", db_url, "-o", str(tmp_path / "b.json")]) == 0
    doc = json.loads((tmp_path / "b.json").read_text())
    doc["model_source"] = {**doc["model_source"], "file": "/etc/passwd"}
    (tmp_path / "b.json").write_text(json.dumps(doc))
    (tmp_path / "mine.py").unlink()  # the kind's own file gone: the edited path is looked at
    capsys.readouterr()
    assert main(["retrain", str(tmp_path / "b.json"), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    assert "/etc/passwd differs from the file this study was created with" in line
    assert f"now {passwd[:12]}..." in line
