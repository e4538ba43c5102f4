"""Datasets by name, split and preprocessed the same way for every trial of a study.

`load_dataset` returns train / validation / test arrays. The test split is the dataset's own, or
carved first (stratified, from the seed) for datasets without one; validation is the dataset's
own or carved from the rest the same way. Preprocessing statistics come from the training split
only. The result is written once to a cache of float32 .npy files and memory-mapped, so every
worker process on a machine shares one copy of the data in memory.

Names: digits (scikit-learn's bundled 8x8 digits, offline), mnist and fashion-mnist (IDX),
cifar10 (python batches), intel (the landscape assignment's .npz), or a path to any .npz.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpsearch.models.data.download import cache_dir
from hpsearch.models.data.download import fetch
from hpsearch.models.data.errors import DataError
from hpsearch.models.data.formats import RawData
from hpsearch.models.data.formats import read_cifar10
from hpsearch.models.data.formats import read_digits
from hpsearch.models.data.formats import read_idx_pair
from hpsearch.models.data.formats import read_npz
from hpsearch.models.data.sources import SOURCES

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "intel")
PREPROCESS = ("standardize", "scale", "none")
INTEL_FILE = "intel_landscapes.npz"
INTEL_URL = "https://drive.google.com/file/d/16AzJIrmra4qWdY7wU9N1ew4bwadmNt4j"
_CACHE_VERSION = 1  # bump when the prepared layout changes
# Pixels constant in the training split (digits' borders) keep unit scale: dividing by a tiny
# std would blow up any validation or test image where that pixel is not constant.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class Dataset:
    """Float32 inputs flattened to (N, D) and integer labels (N,) for each split.

    The X arrays are read-only views of memory-mapped files; `image_shape` is (C, H, W), so
    `X.reshape(-1, *image_shape)` gives channel-first images without a copy.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    image_shape: tuple[int, int, int]

    def split(self, name: str, images: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """X and y of "train", "val" or "test"; with `images`, X as (N, C, H, W) (a view)."""
        X, y = getattr(self, f"X_{name}"), getattr(self, f"y_{name}")
        return (X.reshape(len(X), *self.image_shape) if images else X), y


def is_npz_path(name: str) -> bool:
    return name.endswith(".npz")


def _idx_dataset(name: str) -> RawData:
    source = SOURCES[name]
    paths = {f.name.removesuffix(".gz"): fetch(name, source, f) for f in source.files}
    X, y = read_idx_pair(paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"], 10)
    X_test, y_test = read_idx_pair(
        paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"], 10
    )
    return RawData(X=X, y=y, X_test=X_test, y_test=y_test, max_value=255.0)


def _intel_path() -> Path:
    return cache_dir() / "intel" / INTEL_FILE


def _read_raw(name: str) -> RawData:
    if name == "digits":
        return read_digits()
    if name in ("mnist", "fashion-mnist"):
        return _idx_dataset(name)
    if name == "cifar10":
        return read_cifar10(fetch(name, SOURCES[name], SOURCES[name].files[0]))
    if name == "intel":
        path = _intel_path()
        if not path.exists():
            raise DataError(
                f"intel: the landscape assignment's preprocessed data is not at "
                f"{path}; download it from {INTEL_URL} and put it there, or name "
                "its path in [data].dataset"
            )
        return read_npz(path, flat_shape=(48, 48, 3))
    path = Path(name)
    if not path.is_file():
        raise DataError(f"{name}: no such file; give the path of an .npz with X_train, y_train")
    return read_npz(path)


def _identity(name: str) -> dict[str, object]:
    """What the prepared arrays depend on besides the split settings."""
    if name in SOURCES:
        return {"files": [f.sha256 for f in SOURCES[name].files]}
    if name == "digits":
        return {}
    path = _intel_path() if name == "intel" else Path(name)
    try:
        stat = path.stat()
    except OSError:
        return {"missing": str(path)}  # _read_raw reports it
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


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


def _prepare(
    raw: RawData, val_fraction: float, test_fraction: float, preprocess: str, seed: int
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X, y = raw.X, raw.y
    if raw.X_test is None:
        keep, test = stratified_split(y, test_fraction, rng)
        X_test, y_test, X, y = X[test], y[test], X[keep], y[keep]
    else:
        X_test, y_test = raw.X_test, raw.y_test
    if raw.X_val is None:
        keep, val = stratified_split(y, val_fraction, rng)
        X_val, y_val, X, y = X[val], y[val], X[keep], y[keep]
    else:
        X_val, y_val = raw.X_val, raw.y_val
    for split, key, n_held in (
        ("test", "test_fraction", len(y_test)),
        ("validation", "val_fraction", len(y_val)),
    ):
        if n_held == 0:
            fraction = test_fraction if split == "test" else val_fraction
            raise DataError(
                f"{key} {fraction} leaves no {split} image: each class holds out "
                f"round({fraction} x its size), and no class of these {len(raw.y)} images is "
                f"large enough; raise [data].{key} or use more data"
            )
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(
            f"the training split has only one class (label {classes[0]}); a classifier needs "
            "images of at least two classes"
        )
    # Training rows in a seeded random order, so that any prefix is a fair sample.
    order = rng.permutation(len(y))
    arrays = {
        "X_train": X[order].astype(np.float32),
        "y_train": y[order],
        "X_val": X_val.astype(np.float32),
        "y_val": y_val,
        "X_test": X_test.astype(np.float32),
        "y_test": y_test,
    }
    splits = ("X_train", "X_val", "X_test")
    if preprocess in ("scale", "standardize"):
        for k in splits:
            arrays[k] /= np.float32(raw.max_value)
    if preprocess == "standardize":
        mean = arrays["X_train"].mean(axis=0)
        std = arrays["X_train"].std(axis=0)
        std[std < _MIN_STD] = 1.0
        for k in splits:
            arrays[k] -= mean
            arrays[k] /= std
    return arrays


def _write_prepared(folder: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write into a temporary folder and rename it: readers never see half a cache."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        for key, value in arrays.items():
            np.save(tmp / f"{key}.npy", value)
        (tmp / "meta.json").write_text(json.dumps(meta))
        for path in (tmp, *tmp.iterdir()):  # mkdtemp makes it private; the cache may be shared
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "meta.json").exists():  # not another process's finished copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=4)  # trials in one process share one set of memory maps
def load_dataset(
    name: str,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    preprocess: str = "standardize",
    seed: int = 0,
) -> Dataset:
    """Load, split and preprocess a dataset, through the prepared cache.

    Args:
        name: A name in DATASETS or the path of an .npz file.
        val_fraction: Share of the training data held out for validation (when the dataset
            has no validation split of its own).
        test_fraction: Share held out for testing when the dataset has no test split.
        preprocess: "standardize" (scale to [0, 1], then per-feature mean 0 and std 1 with
            training statistics), "scale" (to [0, 1]) or "none".
        seed: Seeds both splits and the order of the training rows.

    Raises:
        DataError: a file is missing, unreachable, corrupt or malformed.
    """
    settings = {
        "dataset": name,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "preprocess": preprocess,
        "seed": seed,
        "version": _CACHE_VERSION,
        **_identity(name),
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    folder = cache_dir() / "prepared" / key
    if not (folder / "meta.json").exists():
        raw = _read_raw(name)
        arrays = _prepare(raw, val_fraction, test_fraction, preprocess, seed)
        classes = np.unique(np.concatenate([arrays["y_train"], arrays["y_val"], arrays["y_test"]]))
        meta = {
            "settings": settings,
            "classes": classes.tolist(),
            "image_shape": list(raw.X.shape[1:]),
        }
        _write_prepared(folder, arrays, meta)
    meta = json.loads((folder / "meta.json").read_text())
    loaded = {}
    for key_ in ("X_train", "X_val", "X_test"):
        X = np.load(folder / f"{key_}.npy", mmap_mode="r")
        loaded[key_] = X.reshape(len(X), -1)
    for key_ in ("y_train", "y_val", "y_test"):
        loaded[key_] = np.load(folder / f"{key_}.npy")
    return Dataset(
        name=name,
        classes=np.array(meta["classes"]),
        image_shape=tuple(meta["image_shape"]),
        **loaded,
    )


__all__ = [
    "DATASETS",
    "PREPROCESS",
    "DataError",
    "Dataset",
    "is_npz_path",
    "load_dataset",
    "stratified_split",
]
