"""Files a user hands to hpsearch (an export to retrain, or to warm-start from): checked in
full before anything trains or is created, read only if they are regular files of a sane
size, and a warm start lands whole or not at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from hpsearch.cli import main
from hpsearch.records import WARM_ATTR
from hpsearch.records import WARM_PENDING_ATTR
from tests.conftest import TINY
from tests.search.faults import HPSEARCH

WARM = TINY.replace('name = "tiny"', 'name = "warm"').replace("n_trials = 6", "n_trials = 2")


@pytest.fixture
def exported(write_study, db_url, tmp_path) -> dict:
    text = TINY.replace("n_trials = 6", "n_trials = 2")
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    assert main(["export", "tiny", "--storage", db_url, "-o", str(tmp_path / "b.json")]) == 0
    return json.loads((tmp_path / "b.json").read_text())


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


EDITS = [
    ("extra-key", lambda d: {**d, "note": "my run"}, "note"),
    ("null-source", lambda d: {**d, "model_source": None}, "model_source: None is not of type"),
    ("bad-source", lambda d: {**d, "model_source": {"file": 5}}, "model_source"),
]


@pytest.mark.slow
@pytest.mark.parametrize("edit", EDITS, ids=[e[0] for e in EDITS])
def test_retrain_refuses_an_edited_export_before_it_trains(exported, tmp_path, capsys, edit):
    _, change, words = edit
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(change(exported)))
    capsys.readouterr()
    assert main(["retrain", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"{path}: ") and words in line, line
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


@pytest.mark.slow
def test_retrain_masks_a_password_in_a_hand_edited_storage_url(exported, tmp_path):
    path = tmp_path / "edited.json"
    path.write_text(json.dumps({**exported, "storage": "postgresql://me:s3cret@db/x"}))
    assert main(["retrain", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    written = (tmp_path / "out" / "edited.json").read_text()
    assert "s3cret" not in written
    assert json.loads(written)["storage"] == "postgresql://me:***@db/x"


@pytest.mark.slow
def test_an_export_of_a_users_class_without_its_source_is_refused(exported, tmp_path, capsys):
    doc = {**exported, "model_kind": f"{tmp_path / 'mine.py'}:Mine"}
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    assert main(["retrain", str(path), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "model_source: missing for a model of your own" in line


UNPICKLABLE = """
import numpy as np

class Unpicklable:
    def __init__(self, learning_rate=0.1, epochs=1):
        self.learning_rate = learning_rate

    def partial_fit(self, X, y, classes=None):
        self.classes = np.asarray(classes)
        self.callback = lambda: None  # a lambda: pickle cannot save it

    def predict(self, X):
        return self.classes[np.arange(len(X)) % len(self.classes)]
"""


def test_a_model_that_cannot_be_saved_ends_before_the_test_split_is_seen(
    write_study, db_url, tmp_path, capsys
):
    (tmp_path / "mine.py").write_text(UNPICKLABLE)
    text = TINY.replace('kind = "numpy.softmax"', 'kind = "mine.py:Unpicklable"')
    text = text.replace("n_trials = 6", "n_trials = 1").split("[params]")[0]
    text += '[params]\nlearning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }\n'
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    assert main(["export", "tiny", "--storage", db_url, "-o", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["retrain", str(tmp_path / "b.json"), "--out", str(out), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "Unpicklable cannot be pickled into model.pkl" in line
    assert "the test split was not evaluated" in line
    assert list(out.iterdir()) == []  # no partial model file, no document without a result


@pytest.mark.parametrize("command", ["retrain", "warm-start"])
@pytest.mark.parametrize(
    "kind", ["dev-zero", "fifo", "huge-integer", "deep-nesting", "nan", "key-twice"]
)
def test_a_hostile_json_file_is_one_line_and_never_read_whole(
    write_study, db_url, tmp_path, capsys, command, kind
):
    path = tmp_path / "x.json"
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")  # read whole, this file never ends
    elif kind == "fifo":
        os.mkfifo(path)  # opened for reading, this blocks until a writer comes
    elif kind == "huge-integer":
        path.write_text('{"schema_version": 1, "configs": [' + "9" * 5000 + "]}")
    elif kind == "deep-nesting":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "key-twice":
        path.write_text('{"configs": [{"params": {"lr": 0.1, "lr": 0.2}, "val_accuracy": 0.5}]}')
    else:
        path.write_text('{"configs": [{"params": {}, "val_accuracy": NaN}]}')
    if command == "retrain":
        argv = ["retrain", str(path), "--quiet"]
    else:
        argv = ["run", str(write_study(WARM)), "--storage", db_url, "--warm-start", str(path)]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(path) in line
    if kind == "key-twice":
        assert "not a JSON file (the key 'lr' appears twice in one object)" in line
    if command == "warm-start":
        assert optuna.get_all_study_names(db_url) == []  # nothing created


@pytest.mark.slow
@pytest.mark.parametrize("value", [1.5, -0.1, 1e308, "1e999"])
def test_a_warm_start_value_that_cannot_be_an_accuracy_is_refused(
    write_study, db_url, tmp_path, capsys, value
):
    path = tmp_path / "w.json"
    shown = value if isinstance(value, str) else json.dumps(value)
    path.write_text(f'{{"configs": [{{"params": {{}}, "val_accuracy": {shown}}}]}}')
    study = write_study(WARM)
    assert main(["run", str(study), "--storage", db_url, "--warm-start", str(path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"--warm-start: {path}" in line
    assert optuna.get_all_study_names(db_url) == []


def _configs(n: int) -> dict:
    rates = [0.001 * (1.0 + i / n) for i in range(n)]
    return {
        "model_kind": "numpy.softmax",
        "configs": [
            {"params": {"learning_rate": r, "batch_size": 32, "reg": "none"}, "val_accuracy": 0.5}
            for r in rates
        ],
    }


@pytest.mark.slow
def test_a_warm_start_cut_short_is_redone_whole(write_study, db_url, tmp_path, capsys):
    source = tmp_path / "many.json"
    source.write_text(json.dumps(_configs(30)))
    study_file = write_study(WARM)
    # What a kill during the adding leaves: the study, marked, with some of the copies.
    storage = optuna.storages.RDBStorage(db_url)
    study = optuna.create_study(study_name="warm", storage=storage, direction="maximize")
    study.set_user_attr(WARM_PENDING_ATTR, f"export {source}")
    for i in range(7):
        study.add_trial(optuna.create_trial(value=0.5, user_attrs={WARM_ATTR: f"rank {i}"}))
    assert main(["run", str(study_file), "--storage", db_url, "--warm-start", str(source)]) == 0
    err = capsys.readouterr().err
    assert "its warm start from export" in err and "was cut short (7 trials added)" in err
    trials = optuna.load_study(study_name="warm", storage=db_url).trials
    assert sum(WARM_ATTR in t.user_attrs for t in trials) == 30
    assert sum(WARM_ATTR not in t.user_attrs for t in trials) == 2


@pytest.mark.slow
def test_a_whole_warm_start_leaves_no_mark_and_a_worker_never_trains_on_a_cut_short_one(
    write_study, db_url, tmp_path, capsys
):
    from hpsearch import optuna_internals as internals

    source = tmp_path / "many.json"
    source.write_text(json.dumps(_configs(5)))
    study_file = write_study(WARM)
    assert main(["run", str(study_file), "--storage", db_url, "--warm-start", str(source)]) == 0
    study = optuna.load_study(study_name="warm", storage=db_url)
    assert WARM_PENDING_ATTR not in study.user_attrs and WARM_ATTR in study.user_attrs
    # What a kill during the adding leaves: marked pending, not marked done.
    study.set_user_attr(WARM_PENDING_ATTR, f"export {source}")
    internals.delete_study_user_attr(study._storage, study._study_id, WARM_ATTR)
    before = len(study.trials)
    capsys.readouterr()
    assert main(["worker", "warm", "--storage", db_url, "--n-trials", "9"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"its warm start from export {source} was cut short" in line
    assert "`hpsearch run STUDY.toml` redoes it whole" in line
    assert len(optuna.load_study(study_name="warm", storage=db_url).trials) == before


@pytest.mark.slow
def test_a_warm_start_killed_while_adding_lands_whole_on_the_next_run(write_study, tmp_path):
    n = 400  # adding them takes seconds; the kill lands at the first
    source = tmp_path / "many.json"
    source.write_text(json.dumps(_configs(n)))
    study_file = write_study(WARM)
    db = tmp_path / "k.db"
    url = f"sqlite:///{db}"
    argv = [HPSEARCH, "run", str(study_file), "--storage", url, "--warm-start", str(source)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill it once its first copies are in the database (an event, not a delay).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if optuna.load_study(study_name="warm", storage=url).trials:
                break
        except (KeyError, Exception):  # not created yet
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="warm", storage=url).trials
    assert sum(WARM_ATTR in t.user_attrs for t in trials) == n  # all of it, once
    assert sum(WARM_ATTR not in t.user_attrs for t in trials) == 2


@pytest.mark.slow
def test_a_warm_start_from_another_split_is_said(write_study, db_url, tmp_path, capsys):
    other = TINY.replace("val_fraction = 0.2", "val_fraction = 0.3").replace(
        "n_trials = 6", "n_trials = 2"
    )
    assert main(["run", str(write_study(other)), "--storage", db_url, "--quiet"]) == 0
    capsys.readouterr()
    study = write_study(WARM, name="warm.toml")
    assert main(["run", str(study), "--storage", db_url, "--warm-start", "tiny", "--quiet"]) == 0
    note = "its data differs in val_fraction: its accuracies were measured on another validation"
    assert note in capsys.readouterr().out
    assert main(["show", "warm", "--storage", db_url]) == 0
    assert note in capsys.readouterr().out


@pytest.mark.slow
def test_a_study_named_like_a_json_file_is_a_warm_start_source(write_study, db_url, capsys):
    text = TINY.replace('name = "tiny"', 'name = "old.json"').replace(
        "n_trials = 6", "n_trials = 2"
    )
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    study = write_study(WARM, name="warm.toml")
    assert main(["run", str(study), "--storage", db_url, "--warm-start", "old.json"]) == 0
    assert "warm start from study 'old.json'" in capsys.readouterr().out


def test_the_warm_start_of_a_missing_json_file_still_says_no_such_file(
    write_study, db_url, capsys
):
    study = write_study(WARM)
    assert main(["run", str(study), "--storage", db_url, "--warm-start", "nothere.json"]) == 2
    assert "nothere.json: no such file" in _one_line(capsys.readouterr().err)
    assert Path("nothere.json").exists() is False


@pytest.mark.slow
def test_the_time_a_run_reports_covers_its_warm_start(write_study, db_url, tmp_path, capsys):
    import re

    source = tmp_path / "many.json"
    source.write_text(json.dumps(_configs(300)))
    study_file = write_study(WARM.replace("n_trials = 2", "n_trials = 1"))
    started = time.monotonic()
    assert main(["run", str(study_file), "--storage", db_url, "--warm-start", str(source)]) == 0
    took = time.monotonic() - started
    said = float(re.search(r"this run took ([\d.]+) s", capsys.readouterr().out).group(1))
    # Adding 300 copies is most of the command: the time said is the whole of it (a ratio of
    # two clocks read around the same work, not a timing).
    assert said >= 0.8 * took, (said, took)
