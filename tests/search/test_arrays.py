"""Your own data from Python: a notebook holds arrays, not files. hpsearch.run(study, data=...)
tunes on them, confirm and retrain take the same arrays, and other arrays are refused."""

from __future__ import annotations

import subprocess

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits

import hpsearch
from hpsearch.arrays import ARRAYS_ATTR
from hpsearch.errors import UsageError
from tests.search.faults import HPSEARCH

STUDY = {
    "study": {"name": "mine", "n_trials": 3, "seed": 0, "pruner": "none"},
    "data": {"val_fraction": 0.2, "test_fraction": 0.2},
    "model": {"kind": "numpy.softmax", "fixed": {"epochs": 3}},
    "params": {"learning_rate": {"type": "float", "low": 1e-2, "high": 3e-1, "log": True}},
}


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target


@pytest.mark.slow
def test_arrays_are_split_as_data_says_and_a_resume_needs_the_same(digits, db_url):
    X, y = digits
    study = hpsearch.run(STUDY, storage=db_url, data=(X, y), progress=False)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert max(t.value for t in study.trials) > 0.8  # it learned the digits it was given
    stored = study.user_attrs[ARRAYS_ATTR]
    assert stored["shapes"] == {"train": [[1797, 64], [1797]]}
    assert stored["labels"] == list(range(10))
    more = {**STUDY, "study": {**STUDY["study"], "n_trials": 4}}
    again = hpsearch.run(more, storage=db_url, data=(X, y), progress=False)
    assert len(again.trials) == 4
    other = X.copy()
    other[0, 0] += 1.0
    with pytest.raises(UsageError, match="data=: these arrays .* are not the ones the study"):
        hpsearch.run(
            {**more, "study": {**more["study"], "n_trials": 5}},
            storage=db_url,
            data=(other, y),
            progress=False,
        )
    assert len(optuna.load_study(study_name="mine", storage=db_url).trials) == 4


@pytest.mark.slow
def test_own_splits_with_string_labels_retrain_and_confirm_from_the_same_arrays(
    digits, db_url, tmp_path
):
    X, y = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )[y]
    data = {
        "train": (X[:1000], names[:1000]),
        "val": (X[1000:1400], names[1000:1400]),
        "test": (X[1400:], names[1400:]),
    }
    study = hpsearch.run(STUDY, storage=db_url, data=data, progress=False)
    assert study.user_attrs["hpsearch_val_size"] == 400  # the user's own validation split
    best = hpsearch.export(study)
    assert best["arrays"]["labels"] == sorted(set(names.tolist()))
    result = hpsearch.retrain(best, out=tmp_path / "r", data=data)
    assert result.n_test == len(X) - 1400  # the user's own test split, measured once
    assert result.reproduced
    confirmed = hpsearch.confirm(study, top=1, repeats=2, data=data)
    assert len(confirmed[0].val_accuracy) == 2
    shuffled = {**data, "test": (X[1400:][::-1], names[1400:][::-1])}
    with pytest.raises(UsageError, match="not the ones the study was made from"):
        hpsearch.retrain(best, out=tmp_path / "r2", data=shuffled)
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_images_keep_their_shape(db_url):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    X = rng.normal(size=(90, 1, 4, 5)).astype(np.float32) + y[:, None, None, None]
    study = hpsearch.run(STUDY, storage=db_url, data=(X, y), progress=False)
    assert study.user_attrs[ARRAYS_ATTR]["shapes"]["train"][0] == [90, 1, 4, 5]
    assert {t.state.name for t in study.trials} == {"COMPLETE"}


BAD = [
    (
        "nan",
        lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), y),
        "data: X_train has 1 NaN or infinite",
    ),
    ("one-class", lambda X, y: (X, np.zeros_like(y)), "only one class"),
    ("no-rows", lambda X, y: (X[:0], y[:0]), "data: no rows"),
    ("lengths", lambda X, y: (X, y[:-1]), "data: y has shape (1796,) for 1797 rows of X"),
    ("shape", lambda X, y: (X[:, :, None], y), "data: X has shape (1797, 64, 1)"),
    ("keys", lambda X, y: {"training": (X, y)}, "data: got the keys ['training']"),
    (
        "nan-label",
        lambda X, y: (X, np.where(np.arange(len(y)) == 5, np.nan, y.astype(float))),
        "data: y holds nan at row 5; allowed: integers",
    ),
    (
        "fractional-label",
        lambda X, y: (X, np.where(np.arange(len(y)) == 3, 0.5, y.astype(float))),
        "data: y holds 0.5 at row 3, not a whole number",
    ),
    ("complex-X", lambda X, y: (X + 1j, y), "data: X holds complex numbers (complex64)"),
    (
        "class-not-in-train",
        lambda X, y: {"train": (X[y != 9], y[y != 9]), "val": (X, y)},
        "data['val']: the label 9 has no row in the training split",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_arrays_are_one_line_and_create_nothing(digits, db_url, case):
    _, change, words = case
    with pytest.raises(UsageError) as raised:
        hpsearch.run(STUDY, storage=db_url, data=change(*digits), progress=False)
    assert words in str(raised.value) and "\n" not in str(raised.value), str(raised.value)
    assert "mine" not in optuna.get_all_study_names(db_url)


def test_whole_numbers_in_a_float_array_are_labels(digits, db_url):
    X, y = digits
    study = hpsearch.run(STUDY, storage=db_url, data=(X, y.astype(float)), progress=False)
    assert study.user_attrs[ARRAYS_ATTR]["labels"] == [float(c) for c in range(10)]


def test_arrays_and_a_dataset_both_given_are_refused(digits, db_url):
    doc = {**STUDY, "data": {"dataset": "fashion-mnist"}}
    with pytest.raises(UsageError, match=r"\[data\].dataset: got 'fashion-mnist' and data="):
        hpsearch.run(doc, storage=db_url, data=digits, progress=False)


@pytest.mark.slow
def test_workers_read_the_arrays_and_the_cli_says_when_they_are_missing(digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    study = hpsearch.run(STUDY, storage=url, data=digits, workers=2, progress=False)
    own = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert [t.state.name for t in own] == ["COMPLETE"] * 3
    # The copy hpsearch keeps of the arrays gone (another machine): the CLI says what to do.
    from hpsearch.arrays import arrays_dir

    for path in arrays_dir().glob("*.npz"):
        path.unlink()
    done = subprocess.run(
        [HPSEARCH, "worker", "mine", "--storage", url, "--n-trials", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    line = done.stderr.strip()
    assert line.count("\n") == 0 and "made from arrays in Python" in line
    assert "np.savez" in line
