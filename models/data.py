"""Datasets by name, split and preprocessed the same way for every trial of a study.

`load_dataset` returns train / validation / test arrays. The test split is carved first (for
datasets without an official one), then validation from what is left; both splits are
stratified and drawn from the study seed. Preprocessing statistics come from the training split
only, so nothing about validation or test leaks into training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

PREPROCESS = ("standardize", "scale", "none")
# Pixels constant in the training split (digits' borders) keep unit scale: dividing by a tiny
# std would blow up any validation or test image where that pixel is not constant.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class RawData:
    """What a loader returns before splitting: images of shape (N, H, W, C) and labels (N,)."""

    X: np.ndarray
    y: np.ndarray
    max_value: float  # the largest pixel value the format allows; "scale" divides by it
    X_test: np.ndarray | None = None  # the dataset's official test split, if it has one
    y_test: np.ndarray | None = None


@dataclass(frozen=True)
class Dataset:
    """Float32 inputs flattened to (N, D) and integer labels (N,) for each split."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    image_shape: tuple[int, int, int]  # (H, W, C) of one sample before flattening


def _load_digits() -> RawData:
    """scikit-learn's bundled copy of the UCI 8x8 digits: 1,797 images, 10 classes, offline."""
    from sklearn.datasets import load_digits  # ~1 s to import; only when digits is used

    bunch = load_digits()
    return RawData(
        X=bunch.images.reshape(-1, 8, 8, 1).astype(np.float32),
        y=bunch.target.astype(np.int64),
        max_value=16.0,
    )


DATASETS = {"digits": _load_digits}


def stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out) with `fraction` of every class held out.

    Each class keeps at least one sample. Both index arrays are sorted.
    """
    held = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n_held = min(int(round(fraction * len(members))), len(members) - 1)
        held.append(rng.permutation(members)[:n_held])
    held_idx = np.sort(np.concatenate(held))
    kept_idx = np.setdiff1d(np.arange(len(y)), held_idx, assume_unique=True)
    return kept_idx, held_idx


@functools.lru_cache(maxsize=4)  # trials in one process share one copy
def load_dataset(
    name: str,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    preprocess: str = "standardize",
    seed: int = 0,
) -> Dataset:
    """Load, split and preprocess a dataset.

    Args:
        name: A key of DATASETS.
        val_fraction: Share of the training data held out for validation.
        test_fraction: Share held out for testing when the dataset has no test split.
        preprocess: "standardize" (scale to [0, 1], then per-feature mean 0 and std 1 with
            training statistics), "scale" (to [0, 1]) or "none".
        seed: Seeds both splits.
    """
    raw = DATASETS[name]()
    rng = np.random.default_rng(seed)
    X, y = raw.X, raw.y
    if raw.X_test is None:
        train_idx, test_idx = stratified_split(y, test_fraction, rng)
        X_test, y_test = X[test_idx], y[test_idx]
        X, y = X[train_idx], y[train_idx]
    else:
        X_test, y_test = raw.X_test, raw.y_test
    train_idx, val_idx = stratified_split(y, val_fraction, rng)
    splits = [X[train_idx], X[val_idx], X_test]
    splits = [s.reshape(len(s), -1).astype(np.float32) for s in splits]
    if preprocess in ("scale", "standardize"):
        splits = [s / np.float32(raw.max_value) for s in splits]
    if preprocess == "standardize":
        mean = splits[0].mean(axis=0)
        std = splits[0].std(axis=0)
        std[std < _MIN_STD] = 1.0
        splits = [(s - mean) / std for s in splits]
    for s in splits:
        s.flags.writeable = False  # shared by every trial in the process
    return Dataset(
        name=name,
        X_train=splits[0],
        y_train=y[train_idx],
        X_val=splits[1],
        y_val=y[val_idx],
        X_test=splits[2],
        y_test=y_test,
        classes=np.unique(raw.y),
        image_shape=tuple(raw.X.shape[1:]),
    )
