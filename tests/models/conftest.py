"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

from hpsearch.models.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits, split with seed 0 (read offline from its wheel)."""
    return load_dataset("digits", seed=0)
