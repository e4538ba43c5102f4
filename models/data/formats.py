"""Readers for the files datasets come in; each checks what it reads.

Every reader returns images as uint8 or float arrays of shape (N, C, H, W) (channel-first) and
labels as int64 of shape (N,), or raises DataError with one line naming the file and the fault.
"""

from __future__ import annotations

import pickle
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from pathlib import PurePosixPath

import numpy as np

from hpsearch.models.data.errors import DataError

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension


@dataclass(frozen=True)
class RawData:
    """A dataset before splitting and preprocessing."""

    X: np.ndarray  # (N, C, H, W)
    y: np.ndarray  # (N,)
    max_value: float  # the largest pixel value of the format; "scale" divides by it
    X_test: np.ndarray | None = None  # official test split, if the dataset has one
    y_test: np.ndarray | None = None
    X_val: np.ndarray | None = None  # official validation split, if the dataset has one
    y_val: np.ndarray | None = None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format): header, then the values."""
    data = path.read_bytes()
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
        raise DataError(
            f"{path}: wrong magic number {found!r}; an IDX "
            f"{'image' if ndim == 3 else 'label'} file starts with {magic:#010x}"
        )
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(
            f"{path}: {'truncated' if len(data) < expected else 'too long'}: its "
            f"header announces {' x '.join(map(str, dims))} values ({expected} "
            f"bytes), the file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def check_labels(y: np.ndarray, n_images: int, n_classes: int | None, what: str) -> np.ndarray:
    if len(y) != n_images:
        raise DataError(f"{what}: {len(y)} labels for {n_images} images; they must match")
    if y.size and (y.min() < 0 or (n_classes is not None and y.max() >= n_classes)):
        bad = y.min() if y.min() < 0 else y.max()
        allowed = f"0 to {n_classes - 1}" if n_classes else ">= 0"
        raise DataError(f"{what}: label {int(bad)} is out of range; allowed: {allowed}")
    return y.astype(np.int64)


def _whole_labels(y: np.ndarray, what: str) -> np.ndarray:
    """Integer labels of shape (N,); whole-valued floats (0.0, 1.0, ...) are accepted."""
    allowed = "whole-number labels of shape (N,)"
    if y.ndim != 1 or not (
        np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
    ):
        raise DataError(f"{what} has shape {y.shape} and dtype {y.dtype}; allowed: {allowed}")
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            raise DataError(
                f"{what}: label {float(y[~whole][0])!r} is not a whole number; allowed: {allowed}"
            )
        y = y.astype(np.int64)
    return y


def read_idx_pair(images: Path, labels: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    X = read_idx(images, IDX_IMAGES_MAGIC)
    y = check_labels(read_idx(labels, IDX_LABELS_MAGIC), len(X), n_classes, str(labels))
    return X[:, None, :, :], y  # (N, 1, H, W)


class _ArraysOnly(pickle.Unpickler):
    """Unpickle NumPy arrays, lists, dicts and bytes, and nothing that runs other code."""

    _NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar"}

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        numpy_array = module.split(".")[0] == "numpy" and name in self._NUMPY
        # Python 3 writes bytes at protocol 2 as _codecs.encode(text, "latin1").
        if numpy_array or (module, name) == ("_codecs", "encode"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise DataError(f"{path.name}: not a CIFAR-10 python batch ({e})") from None
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path.name}: its data must be an N x 3072 array of pixels")
    y = check_labels(np.asarray(labels), len(data), 10, path.name)
    return data.reshape(-1, 3, 32, 32), y


def _inside_only(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """Refuse absolute names and '..' outright, then apply Python's "data" filter.

    The "data" filter alone would strip a leading '/' and extract such a member anyway.
    """
    if member.name.startswith(("/", "\\")) or ".." in PurePosixPath(member.name).parts:
        raise tarfile.FilterError(f"member {member.name!r}")
    return tarfile.data_filter(member, dest)


def read_cifar10(archive: Path) -> RawData:
    """cifar-10-python.tar.gz: five training batches and a test batch, pickled dicts."""
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".extract-") as tmp:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmp, filter=_inside_only)
        except tarfile.FilterError as e:
            raise DataError(
                f"{archive}: refused to extract, a member escapes its folder ({e})"
            ) from None
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{archive}: not a readable tar.gz archive ({e})") from None
        folder = Path(tmp) / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise DataError(f"{archive}: cifar-10-batches-py/{missing[0]} is missing")
        train = [_cifar_batch(folder / n) for n in names[:5]]
        X_test, y_test = _cifar_batch(folder / "test_batch")
    return RawData(
        X=np.concatenate([b[0] for b in train]),
        y=np.concatenate([b[1] for b in train]),
        X_test=X_test,
        y_test=y_test,
        max_value=255.0,
    )


# The names an .npz may use for each array: hpsearch's own, or the landscape assignment's.
_NPZ_NAMES = {
    "X_train": ("X_train", "train_images"),
    "y_train": ("y_train", "train_labels"),
    "X_val": ("X_val", "val_images"),
    "y_val": ("y_val", "val_labels"),
    "X_test": ("X_test", "test_images"),
    "y_test": ("y_test", "test_labels"),
}


def _channel_first(X: np.ndarray, flat_shape: tuple[int, int, int] | None) -> np.ndarray:
    """(N, H, W, C) / (N, H, W) / (N, D) -> (N, C, H, W)."""
    if X.ndim == 4:
        return X.transpose(0, 3, 1, 2)
    if X.ndim == 3:
        return X[:, None]
    if flat_shape is not None and X.shape[1] == int(np.prod(flat_shape)):
        return X.reshape(len(X), *flat_shape).transpose(0, 3, 1, 2)  # stored as H, W, C
    return X.reshape(len(X), 1, 1, X.shape[1])


def read_npz(path: Path, flat_shape: tuple[int, int, int] | None = None) -> RawData:
    """An .npz with X_train and y_train, and optionally X_val, y_val, X_test, y_test.

    Images are (N, H, W, C), (N, H, W) or flat (N, D) (`flat_shape` = (H, W, C) unflattens
    them); integer pixels are taken as 0-255, floating-point ones as already scaled to [0, 1].
    """
    # Over 60 lines: every check of a user's file, in the order the messages need.
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not an .npz file ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path}: not an .npz file (it holds a single array); save the arrays "
            "with numpy.savez(path, X_train=..., y_train=...)"
        )
    with archive:
        arrays: dict[str, np.ndarray] = {}
        for key, names in _NPZ_NAMES.items():
            found = [n for n in names if n in archive.files]
            if found:
                try:
                    arrays[key] = archive[found[0]]
                except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
                    raise DataError(f"{path}: array {found[0]} cannot be read ({e})") from None
    for needed in ("X_train", "y_train"):
        if needed not in arrays:
            raise DataError(
                f"{path}: has no {needed} array (it has: "
                f"{', '.join(archive.files) or 'none'}); required: X_train, y_train"
            )
    out: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        X, y = arrays.get(f"X_{split}"), arrays.get(f"y_{split}")
        if (X is None) != (y is None):
            raise DataError(f"{path}: X_{split} and y_{split} must both be present or both absent")
        if X is None:
            continue
        if X.ndim < 2 or X.ndim > 4 or not np.issubdtype(X.dtype, np.number):
            raise DataError(
                f"{path}: X_{split} has shape {X.shape} and dtype {X.dtype}; allowed:"
                " numbers of shape (N, H, W, C), (N, H, W) or (N, D)"
            )
        if len(X) == 0:
            raise DataError(f"{path}: X_{split} holds no images; each split needs at least one")
        if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
            bad = int(np.count_nonzero(~np.isfinite(X)))
            raise DataError(
                f"{path}: X_{split} has {bad} NaN or infinite pixel values; allowed: finite "
                "numbers (replace or drop those images)"
            )
        y = _whole_labels(y, f"{path}: y_{split}")
        out[f"y_{split}"] = check_labels(y, len(X), None, f"{path}: y_{split}")
        out[f"X_{split}"] = _channel_first(X, flat_shape)
    shapes = {k: v.shape[1:] for k, v in out.items() if k.startswith("X_")}
    if len(set(shapes.values())) > 1:
        raise DataError(f"{path}: the splits' samples differ in shape ({shapes}); they must match")
    integer = np.issubdtype(out["X_train"].dtype, np.integer)
    return RawData(
        X=out["X_train"],
        y=out["y_train"],
        X_val=out.get("X_val"),
        y_val=out.get("y_val"),
        X_test=out.get("X_test"),
        y_test=out.get("y_test"),
        max_value=255.0 if integer else 1.0,
    )


def read_digits() -> RawData:
    """scikit-learn's bundled copy of the UCI 8x8 digits: 1,797 images, 10 classes, offline.

    Read from the CSV file in scikit-learn's wheel (what sklearn.datasets.load_digits reads),
    found without importing scikit-learn, whose import takes about 2 s.
    """
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = next((Path(f) / "datasets/data/digits.csv.gz" for f in folders), None)
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits  # a scikit-learn that keeps it elsewhere

        bunch = load_digits()
        X, y = bunch.images, bunch.target
    else:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64)
        X, y = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    return RawData(X=X[:, None].astype(np.float32), y=y.astype(np.int64), max_value=16.0)


__all__ = ["RawData", "read_cifar10", "read_digits", "read_idx", "read_idx_pair", "read_npz"]
