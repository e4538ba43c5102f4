"""export -> JSON Schema -> retrain round trip, confirm's statistics, and the dashboard."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import jsonschema
import numpy as np
import optuna
import pytest

from hpsearch.cli import main
from hpsearch.exports import SCHEMA_PATH
from hpsearch.models import MODELS
from hpsearch.models.data import load_dataset
from hpsearch.models.training import train
from hpsearch.objective import derive_seed
from hpsearch.records import CONFIRM_ATTR
from tests.conftest import TINY
from tests.conftest import require_torch

SCHEMA = json.loads(SCHEMA_PATH.read_text())
BIN = Path(sys.executable).parent


@pytest.fixture
def finished(write_study, db_url):
    assert main(["run", str(write_study()), "--storage", db_url, "--quiet"]) == 0
    return optuna.load_study(study_name="tiny", storage=db_url)


@pytest.mark.slow
def test_export_follows_the_schema_and_holds_every_parameter(finished, db_url, tmp_path):
    out = tmp_path / "best.json"
    assert main(["export", "tiny", "--storage", db_url, "-o", str(out), "--top", "3"]) == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    ranked = sorted(
        (t for t in finished.trials if t.state.name == "COMPLETE"),
        key=lambda t: (-t.value, t.number),
    )[:3]
    assert [c["trial_number"] for c in doc["configs"]] == [t.number for t in ranked]
    for config, trial in zip(doc["configs"], ranked, strict=True):
        # fixed (and the schedule stepping the study pins) and sampled
        assert config["params"] == {"epochs": 3, "schedule_every": "batch", **trial.params}
        assert ("reg_strength" in config["params"]) == (trial.params["reg"] != "none")
        assert config["seed"] == trial.user_attrs["seed"] and config["val_accuracy"] == trial.value
        assert config["epochs_run"] == 3
    assert doc["data"] == {
        "dataset": "digits",
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "preprocess": "standardize",
        "seed": 0,
    }
    assert doc["model_kind"] == "numpy.softmax" and doc["study"] == "tiny"
    assert doc["retrain_command"] == f"hpsearch retrain {out}"
    assert set(doc["versions"]) >= {"hpsearch", "optuna", "numpy", "python"}


def test_the_schema_rejects_what_retrain_could_not_use():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1, "study": "x"}, SCHEMA)


@pytest.mark.slow
def test_retrain_reproduces_the_validation_accuracy_and_tests_once(
    finished, db_url, tmp_path, capsys
):
    exported = tmp_path / "best.json"
    assert main(["export", "tiny", "--storage", db_url, "-o", str(exported)]) == 0
    out = tmp_path / "final"
    capsys.readouterr()
    assert main(["retrain", str(exported), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "best.json").read_text())
    jsonschema.validate(result, SCHEMA)
    retrained = result["retrain"]
    assert retrained["reproduced"] is True
    assert retrained["val_accuracy"] == finished.best_value
    assert "reproduced" in printed and f"test accuracy {retrained['test_accuracy']:.4f}" in printed
    # The stored weights give the printed test accuracy, independently of retrain's code path.
    weights = np.load(out / "weights.npz")
    data = load_dataset("digits", seed=0)
    scores = data.X_test @ weights["W"] + weights["b"]
    assert (scores.argmax(axis=1) == data.y_test).mean() == retrained["test_accuracy"]
    assert retrained["n_test"] == len(data.y_test)


@pytest.mark.slow
def test_retrain_reproduces_a_torch_trial_on_the_cpu(write_study, db_url, tmp_path):
    require_torch()
    text = TINY.replace("numpy.softmax", "torch.logistic").replace("n_trials = 6", "n_trials = 2")
    assert main(["run", str(write_study(text)), "--storage", db_url, "--quiet"]) == 0
    assert main(["export", "tiny", "--storage", db_url, "-o", str(tmp_path / "b.json")]) == 0
    assert (
        main(["retrain", str(tmp_path / "b.json"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    )
    assert json.loads((tmp_path / "o" / "b.json").read_text())["retrain"]["reproduced"] is True


BAD_EXPORTS = [
    ("not-json", lambda d: "{not json", "not a JSON file"),
    ("schema-version", lambda d: {**d, "schema_version": 7}, "schema_version"),
    ("unknown-model", lambda d: {**d, "model_kind": "numpy.svmx"}, "model_kind"),
    ("no-configs", lambda d: {**d, "configs": []}, "configs"),
    (
        "bad-param",
        lambda d: {
            **d,
            "configs": [
                {**d["configs"][0], "params": {**d["configs"][0]["params"], "batch_size": 0}}
            ],
        },
        "batch_size",
    ),
    (
        "unknown-param",
        lambda d: {
            **d,
            "configs": [{**d["configs"][0], "params": {**d["configs"][0]["params"], "lr": 0.1}}],
        },
        "lr",
    ),
    ("bad-dataset", lambda d: {**d, "data": {**d["data"], "dataset": "imagenet"}}, "dataset"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_EXPORTS, ids=[c[0] for c in BAD_EXPORTS])
def test_a_bad_export_file_ends_in_one_line(case, finished, db_url, tmp_path, capsys):
    good = tmp_path / "good.json"
    assert main(["export", "tiny", "--storage", db_url, "-o", str(good)]) == 0
    bad = tmp_path / "bad.json"
    broken = case[1](json.loads(good.read_text()))
    bad.write_text(broken if isinstance(broken, str) else json.dumps(broken))
    capsys.readouterr()
    assert main(["retrain", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(str(bad)) and case[2] in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_retrain_rank_that_does_not_exist(finished, db_url, tmp_path, capsys):
    assert main(["export", "tiny", "--storage", db_url, "-o", str(tmp_path / "b.json")]) == 0
    assert main(["retrain", str(tmp_path / "b.json"), "--rank", "4"]) == 2
    assert "--rank 4" in capsys.readouterr().err


@pytest.mark.slow
def test_confirm_statistics_and_what_it_stores(finished, db_url, capsys):
    assert (
        main(["confirm", "tiny", "--storage", db_url, "--top", "2", "--repeats", "3", "--quiet"])
        == 0
    )
    stored = optuna.load_study(study_name="tiny", storage=db_url).user_attrs[CONFIRM_ATTR]
    results = stored["results"]
    assert stored["top"] == 2 and stored["repeats"] == 3 and len(results) == 2
    means = [r["mean"] for r in results]
    assert means == sorted(means, reverse=True)  # ranked by mean validation accuracy
    for r in results:
        values = np.array(r["val_accuracy"])
        assert len(values) == 3 and r["mean"] == pytest.approx(values.mean())
        assert r["std"] == pytest.approx(values.std(ddof=1))
        assert len(set(r["seeds"])) == 3
        assert r["seeds"] == [derive_seed(0, r["trial_number"], k) for k in (1, 2, 3)]
    # One of the runs, repeated independently, gives the recorded accuracy.
    first = results[0]
    data = load_dataset("digits", seed=0)
    model = MODELS["numpy.softmax"].build(first["params"], first["seeds"][0])
    history = train(
        model, data.X_train, data.y_train, data.X_val, data.y_val, classes=data.classes
    )
    assert float(f"{history.kept_val_accuracy:.6g}") == first["val_accuracy"][0]
    out = capsys.readouterr().out
    assert f"{first['mean']:.4f} ± {first['std']:.4f}" in out


def _ranked(study):
    return sorted(
        (t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: (-t.value, t.number)
    )


@pytest.mark.slow
def test_export_puts_the_confirm_winner_first(finished, db_url, tmp_path, capsys):
    assert (
        main(["confirm", "tiny", "--storage", db_url, "--top", "2", "--repeats", "3", "--quiet"])
        == 0
    )
    results = optuna.load_study(study_name="tiny", storage=db_url).user_attrs[CONFIRM_ATTR]
    results = results["results"]
    capsys.readouterr()
    out = tmp_path / "best.json"
    assert main(["export", "tiny", "--storage", db_url, "-o", str(out), "--top", "3"]) == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["ranked_by"] == "confirm"
    # The confirmed trials by their mean over the new seeds, then the next one by search value.
    third = _ranked(finished)[2].number
    assert [c["trial_number"] for c in doc["configs"]] == [r["trial_number"] for r in results] + [
        third
    ]
    for config, r in zip(doc["configs"], results, strict=False):
        assert config["confirm"] == {k: r[k] for k in ("mean", "std", "val_accuracy", "seeds")}
    assert "confirm" not in doc["configs"][2]
    assert f"{results[0]['mean']:.4f} ± {results[0]['std']:.4f}" in capsys.readouterr().out


@pytest.mark.slow
def test_export_ignores_a_confirm_that_later_trials_overtook(finished, db_url, tmp_path, capsys):
    """A confirm of trials that are no longer the top ones cannot say which is best."""
    ranked = _ranked(finished)
    stale = [
        {
            "trial": t.number,  # the key confirms stored before `trial_number`: still read
            "mean": 0.99 - i / 100,
            "std": 0.0,
            "val_accuracy": [0.9],
            "seeds": [1],
        }
        for i, t in enumerate(ranked[1:3])
    ]
    finished.set_user_attr(CONFIRM_ATTR, {"top": 2, "repeats": 1, "results": stale})
    out = tmp_path / "best.json"
    assert main(["export", "tiny", "--storage", db_url, "-o", str(out), "--top", "3"]) == 0
    doc = json.loads(out.read_text())
    assert doc["ranked_by"] == "search"
    assert [c["trial_number"] for c in doc["configs"]] == [t.number for t in ranked[:3]]
    assert "run `hpsearch confirm tiny` again" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_dashboard_command_serves_the_study(finished, db_url):
    port = _free_port()
    proc = subprocess.Popen(
        [BIN / "hpsearch", "dashboard", "--storage", db_url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert f"http://127.0.0.1:{port}/" in proc.stdout.readline()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies", timeout=5
                ) as response:
                    summaries = json.load(response)["study_summaries"]
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.2)
        study_id = summaries[0]["study_id"]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=30
        ) as response:
            detail = json.load(response)
        assert len(detail["trials"]) == len(finished.trials)
        assert detail["objective_names"] == ["val_accuracy"]  # not "Objective 0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_dashboard_refuses_a_missing_database(tmp_path, capsys):
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_studies_show_and_confirm_print_json_for_scripts(finished, db_url, capsys):
    capsys.readouterr()
    assert main(["studies", "--storage", db_url, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    counts = Counter(t.state.name for t in finished.trials)
    assert row["study"] == "tiny" and row["model"] == "numpy.softmax"
    assert (row["complete"], row["pruned"]) == (counts["COMPLETE"], counts["PRUNED"])
    assert row["best"] == finished.best_value
    assert main(["show", "tiny", "--storage", db_url, "--top", "2", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    ranked = _ranked(finished)
    assert shown["best"]["trial_number"] == ranked[0].number
    assert shown["best"]["params"] == {"epochs": 3, "schedule_every": "batch", **ranked[0].params}
    assert shown["best"]["curves"] == ranked[0].user_attrs["curves"]
    assert [t["trial_number"] for t in shown["top"]] == [t.number for t in ranked[:2]]
    argv = ["confirm", "tiny", "--storage", db_url, "--top", "2", "--repeats", "2", "--quiet"]
    assert main([*argv, "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)
    stored = optuna.load_study(study_name="tiny", storage=db_url).user_attrs[CONFIRM_ATTR]
    assert results == stored["results"] and len(results) == 2


@pytest.mark.slow
def test_an_export_that_breaks_its_schema_is_never_written(finished, db_url):
    from hpsearch.exports import export_document
    from hpsearch.exports import export_json
    from hpsearch.records import stored_spec

    doc = export_document(finished, stored_spec(finished, db_url), db_url, 1, "b.json")
    assert json.loads(export_json(doc)) == doc
    doc["configs"][0]["seed"] = -1  # what a bug could write
    with pytest.raises(RuntimeError, match=r"configs\[0\]\.seed"):
        export_json(doc)


@pytest.mark.slow
def test_retrain_uses_the_threads_the_trial_trained_with(
    write_study, db_url, tmp_path, monkeypatch, capsys
):
    """`run --workers 2` trains each trial on cores / 2 threads; Torch's CPU convolutions sum
    in another order on another count, so the export records the trial's count and retrain
    trains on it: the same weights as that count gives, not those of all the cores."""
    require_torch()
    import os

    from hpsearch import jobs
    from hpsearch.fitting import fitted
    from hpsearch.runner import load_data
    from hpsearch.study_file import load_study_file

    text = (
        TINY.replace('kind = "numpy.softmax"', 'kind = "torch.cnn"')
        .replace("n_trials = 6", "n_trials = 1")
        .replace(
            "fixed = { epochs = 3 }",
            'fixed = { epochs = 1, channels = "16-32", convs_per_block = 2, hidden = [32] }',
        )
        .split("batch_size =")[0]
    )
    path = write_study(text)
    assert main(["run", str(path), "--storage", db_url, "--workers", "2", "--quiet"]) == 0
    out = tmp_path / "best.json"
    assert main(["export", "tiny", "--storage", db_url, "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    config, cores = doc["configs"][0], len(os.sched_getaffinity(0))
    assert config["threads"] == max(1, cores // 2)
    assert main(["retrain", str(out), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    retrained = json.loads((tmp_path / "r" / "best.json").read_text())["retrain"]
    assert retrained["reproduced"] is True
    weights = dict(np.load(tmp_path / "r" / retrained["weights"]))

    spec = load_study_file(path)
    data = load_data(spec.data, spec.seed, str(path))
    args = ("torch.cnn", config["params"], config["seed"], data, "check", False)

    def trained_weights(threads: int) -> dict:
        with fitted(*args, threads=threads) as (trainer, _):
            return trainer.call(jobs.get_weights)

    same = trained_weights(config["threads"])
    assert all(np.array_equal(v, weights[k]) for k, v in same.items())
    if cores // 2 != cores:  # on one core both counts are 1
        other = trained_weights(cores)
        assert not all(np.array_equal(v, weights[k]) for k, v in other.items())
        # HPSEARCH_THREADS set by the user wins, and retrain says what it may change.
        monkeypatch.setenv("HPSEARCH_THREADS", str(cores))
        capsys.readouterr()
        assert main(["retrain", str(out), "--out", str(tmp_path / "r2"), "--quiet"]) == 0
        said = capsys.readouterr().out
        assert f"trained on {cores} threads as HPSEARCH_THREADS asks" in said
        assert f"the trial trained on {cores // 2}" in said
        asked = dict(np.load(tmp_path / "r2" / retrained["weights"]))
        assert all(np.array_equal(v, asked[k]) for k, v in other.items())
