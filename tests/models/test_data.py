from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpsearch.models.data import load_dataset
from hpsearch.models.data import stratified_split


def test_digits_splits_are_disjoint_stratified_and_complete():
    data = load_dataset("digits", val_fraction=0.2, test_fraction=0.2, seed=0)
    sizes = (len(data.y_train), len(data.y_val), len(data.y_test))
    assert sum(sizes) == 1797
    assert data.X_train.shape == (sizes[0], 64) and data.X_train.dtype == np.float32
    assert data.image_shape == (1, 8, 8)
    assert len(data.y_test) == pytest.approx(0.2 * 1797, abs=10)
    assert len(data.y_val) == pytest.approx(0.2 * 0.8 * 1797, abs=10)
    for y in (data.y_train, data.y_val, data.y_test):
        shares = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(shares - 0.1) < 0.02)  # every class close to its 10 %
    rows = {row.tobytes() for row in data.X_test}
    assert not any(row.tobytes() in rows for row in data.X_train[:300])


def test_standardize_uses_training_statistics_only():
    data = load_dataset("digits", preprocess="standardize", seed=0)
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    varying = std > 0
    np.testing.assert_allclose(mean, 0, atol=1e-5)
    np.testing.assert_allclose(std[varying], 1, atol=1e-4)
    assert np.abs(data.X_val.mean(axis=0)[varying]).max() > 1e-3  # not fitted on validation
    assert np.isfinite(data.X_test).all()


def test_scale_and_none():
    scaled = load_dataset("digits", preprocess="scale", seed=0)
    raw = load_dataset("digits", preprocess="none", seed=0)
    assert scaled.X_train.min() == 0.0 and scaled.X_train.max() == 1.0
    assert raw.X_train.max() == 16.0
    np.testing.assert_allclose(scaled.X_train * 16, raw.X_train)


def test_the_seed_decides_the_split(tmp_path, monkeypatch):
    a = load_dataset("digits", seed=1)
    # Prepared again from the raw data, in another cache: not the same object or files.
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path))
    load_dataset.cache_clear()
    b = load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    load_dataset.cache_clear()
    assert b is not a and Path(b.X_val.filename).is_relative_to(tmp_path)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    np.testing.assert_array_equal(a.X_val, b.X_val)
    assert not np.array_equal(a.X_val, c.X_val)


def test_stratified_split_keeps_a_sample_of_every_class():
    y = np.array([0] * 10 + [1] * 2 + [2])
    kept, held = stratified_split(y, 0.5, np.random.default_rng(0))
    assert set(y[kept]) == {0, 1, 2}
    assert sorted(np.concatenate([kept, held])) == list(range(len(y)))
    assert np.bincount(y[held], minlength=3).tolist() == [5, 1, 0]


def test_digits_read_without_importing_scikit_learn_equal_scikit_learns():
    from sklearn.datasets import load_digits

    from hpsearch.models.data.formats import read_digits

    raw, bunch = read_digits(), load_digits()
    assert raw.X.shape == (1797, 1, 8, 8) and raw.X.dtype == np.float32
    assert np.array_equal(raw.X[:, 0], bunch.images.astype(np.float32))
    assert np.array_equal(raw.y, bunch.target)
