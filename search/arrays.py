"""Your own data from Python: arrays instead of a file (`hpsearch.run(study, data=...)`).

`data` is `(X, y)`, split as [data] says (fractions, seed, preprocess), or
`{"train": (X, y), "val": (X, y), "test": (X, y)}` (test optional), the user's own splits. X is
(N, D) or images (N, C, H, W); labels are any integers or strings, mapped to 0..K-1 in sorted
order (the mapping, `labels`, is kept with the study and in its exports).

The arrays are checked with the rules of an .npz dataset (no rows, NaN or infinite values, one
class, mismatched lengths: one UsageError line naming `data`), then written once into the data
cache as an .npz named by their fingerprint (SHA-256 of their bytes, shapes and dtypes). The
study's [data].dataset is that file, so workers (memory-mapped: one copy per machine), resume,
confirm and retrain read it as any .npz. The fingerprint is stored with the study; other arrays
are refused in one line, and a command run where the arrays are not says how to give them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from hpsearch.errors import UsageError

if TYPE_CHECKING:
    from hpsearch.spec import StudySpec

ARRAYS_ATTR = "hpsearch_arrays"  # study user attr: the fingerprint record (record())
SPLITS = ("train", "val", "test")
HOW = (
    "pass the same arrays again (hpsearch.run/confirm/retrain(..., data=...)), or save them "
    "with np.savez(path, X_train=..., y_train=...) and point [data].dataset at the file"
)


def arrays_dir() -> Path:
    from hpsearch.models.data.download import cache_dir

    return cache_dir() / "arrays"


def is_arrays_file(dataset: str) -> bool:
    """Whether a study's dataset is a file hpsearch wrote from arrays given in Python."""
    path = Path(dataset)
    return path.suffix == ".npz" and path.parent.name == "arrays" and len(path.stem) == 64


def _splits(data: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(X, y) or {"train": (X, y), "val": ..., "test": ...} as arrays, checked for shape."""
    if isinstance(data, Mapping):
        unknown = [k for k in data if k not in SPLITS]
        if unknown or "train" not in data:
            raise UsageError(
                f"data: got the keys {sorted(map(str, data))}; allowed: train (required), val "
                "and test, each (X, y)"
            )
        given = {k: data[k] for k in SPLITS if k in data}
    else:
        given = {"train": data}
    out = {}
    for name, pair in given.items():
        key = "data" if name == "train" and not isinstance(data, Mapping) else f"data[{name!r}]"
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise UsageError(f"{key}: got {type(pair).__name__}; allowed: a pair (X, y)")
        X, y = np.asarray(pair[0]), np.asarray(pair[1])
        if np.iscomplexobj(X):
            raise UsageError(
                f"{key}: X holds complex numbers ({X.dtype}); allowed: real numbers (take "
                ".real, .imag or np.abs yourself)"
            )
        if X.ndim not in (2, 4) or not np.issubdtype(X.dtype, np.number):
            raise UsageError(
                f"{key}: X has shape {X.shape} and dtype {X.dtype}; allowed: numbers of shape "
                "(N, D), or images (N, C, H, W)"
            )
        if y.ndim != 1 or len(y) != len(X):
            raise UsageError(
                f"{key}: y has shape {y.shape} for {len(X)} rows of X; allowed: one label per row"
            )
        if len(X) == 0:
            raise UsageError(f"{key}: no rows; each split needs at least one")
        _check_labels(key, y)
        out[name] = (X, y)
    shapes = {name: X.shape[1:] for name, (X, _) in out.items()}
    if len(set(shapes.values())) > 1:
        raise UsageError(f"data: the splits' rows differ in shape ({shapes}); they must match")
    return out


def _check_labels(key: str, y: np.ndarray) -> None:
    """Labels are integers or strings: whole numbers in a float array are taken as integers;
    NaN, fractions and complex numbers are refused (NaN would become a class of its own)."""
    allowed = "allowed: integers (whole numbers in a float array too) or strings"
    if y.dtype.kind == "c":
        raise UsageError(f"{key}: y holds complex numbers; {allowed}")
    if y.dtype.kind != "f":
        return
    if not np.all(np.isfinite(y)):
        bad = float(y[~np.isfinite(y)][0])
        raise UsageError(
            f"{key}: y holds {bad!r} at row {int(np.argmin(np.isfinite(y)))}; {allowed}"
        )
    fractional = y != np.round(y)
    if np.any(fractional):
        row = int(np.argmax(fractional))
        raise UsageError(
            f"{key}: y holds {float(y[row])!r} at row {row}, not a whole number; {allowed}"
        )


def record(data: Any) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The fingerprint record of the arrays (sha256, shapes, dtypes, labels), and the arrays
    with labels mapped to 0..K-1."""
    splits = _splits(data)
    digest = hashlib.sha256()
    for name, (X, y) in splits.items():
        for part in (X, y):
            digest.update(f"{name}:{part.dtype.str}:{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
    try:
        labels = np.unique(np.concatenate([y for _, y in splits.values()]))
    except TypeError:  # labels of mixed types
        raise UsageError(
            "data: the labels mix types; allowed: all integers, or all strings"
        ) from None
    trained = set(np.unique(splits["train"][1]).tolist())
    for name, (_, y) in splits.items():
        unseen = [label for label in np.unique(y).tolist() if label not in trained]
        if unseen:
            raise UsageError(
                f"data[{name!r}]: the label {unseen[0]!r} has no row in the training split; "
                "every class needs training rows (or leave val and test out, and hpsearch "
                "splits the rows it is given)"
            )
    mapped = {n: (X, np.searchsorted(labels, y).astype(np.int64)) for n, (X, y) in splits.items()}
    return {
        "sha256": digest.hexdigest(),
        "shapes": {n: [list(X.shape), list(y.shape)] for n, (X, y) in splits.items()},
        "dtypes": {n: [X.dtype.str, y.dtype.str] for n, (X, y) in splits.items()},
        "labels": labels.tolist(),
    }, mapped


def _write(path: Path, mapped: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The .npz, written whole or not at all, checked as any .npz dataset is."""
    from hpsearch.models.data import DataError
    from hpsearch.models.data.formats import read_npz

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (X, y) in mapped.items():
        # read_npz takes images as (N, H, W, C): given (N, C, H, W), store them that way.
        arrays[f"X_{name}"] = X.transpose(0, 2, 3, 1) if X.ndim == 4 else X
        arrays[f"y_{name}"] = y
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".arrays-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        try:
            read_npz(Path(tmp))
        except DataError as e:
            raise UsageError(str(e).replace(tmp, "data")) from None
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def materialize(data: Any) -> tuple[Path, dict[str, Any]]:
    """The .npz holding the arrays (written on first use), and their fingerprint record."""
    fingerprint, mapped = record(data)
    path = arrays_dir() / f"{fingerprint['sha256']}.npz"
    if not path.is_file():
        _write(path, mapped)
    return path, fingerprint


def attach(spec: StudySpec, data: Any) -> tuple[StudySpec, dict[str, Any]]:
    """The spec reading the arrays, and their record (stored with the study)."""
    from hpsearch.spec import DataSpec

    if spec.data.dataset != DataSpec().dataset:
        raise UsageError(
            f"{spec.source}: [data].dataset: got {spec.data.dataset!r} and data= as well; give "
            "one of them"
        )
    path, fingerprint = materialize(data)
    return _with_dataset(spec, str(path)), fingerprint


def _with_dataset(spec: StudySpec, dataset: str) -> StudySpec:
    return dataclasses.replace(spec, data=dataclasses.replace(spec.data, dataset=dataset))


def check_same(stored: dict[str, Any] | None, given: dict[str, Any] | None, where: str) -> None:
    """Refuse other arrays than a study was made from, or arrays for a study of a file."""
    if given is None or stored == given or (stored or {}).get("sha256") == given["sha256"]:
        return
    if stored is None:
        raise UsageError(
            f"{where}: data=: this study reads its dataset from its study file, not from arrays; "
            "leave data= out"
        )
    raise UsageError(
        f"{where}: data=: these arrays (SHA-256 {given['sha256'][:12]}..., shapes "
        f"{given['shapes']}) are not the ones the study was made from (SHA-256 "
        f"{stored['sha256'][:12]}..., shapes {stored['shapes']}); pass those, or start a new "
        "study with a new [study].name"
    )


def for_stored(spec: StudySpec, stored: dict[str, Any] | None, data: Any, where: str) -> StudySpec:
    """A stored study's spec reading its arrays here: from `data` (checked against the stored
    fingerprint), or from this machine's cache; UsageError saying how to give them otherwise."""
    if data is None:
        if stored is not None and not Path(spec.data.dataset).is_file():
            raise UsageError(
                f"{where}: the study was made from arrays in Python (SHA-256 "
                f"{stored['sha256'][:12]}...), which are not on this machine; {HOW}"
            )
        return spec
    path, given = materialize(data)
    check_same(stored, given, where)
    return _with_dataset(spec, str(path))


def portable_dataset(dataset: str) -> str:
    """A dataset written from arrays, named by its fingerprint alone (the cache folder differs
    between machines and users)."""
    return f"arrays:{Path(dataset).stem}" if is_arrays_file(dataset) else dataset
