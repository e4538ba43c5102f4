"""Dataset files in their real formats (IDX, CIFAR-10's pickled tar, .npz), and a loopback HTTP
server to download them from: shared by the dataset tests (tests/models/test_datasets.py) and
the runs on every dataset (tests/search/test_run_datasets.py)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from hpsearch.models.data.sources import SOURCES
from hpsearch.models.data.sources import RemoteFile
from hpsearch.models.data.sources import Source

DEAD = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused


# -- fixtures in the real formats ----------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def images_and_labels(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), y


def cifar_tar(batches: dict[str, tuple[np.ndarray, np.ndarray]], extra=()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = [
            (
                f"cifar-10-batches-py/{name}",
                pickle.dumps({b"data": X, b"labels": y.tolist()}, protocol=2),
            )
            for name, (X, y) in batches.items()
        ]
        for name, payload in [*members, *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def cifar_batches(n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Five training batches and a test batch of n images each, in CIFAR-10's layout."""
    batches = {f"data_batch_{i}": images_and_labels(n, (3072,), i) for i in range(1, 6)}
    batches["test_batch"] = images_and_labels(n, (3072,), 9)
    return batches


def serve_cifar(server, monkeypatch, archive: bytes) -> None:
    """Serve the archive and point the cifar10 source at it, with its own hash."""
    (server.root / "cifar-10-python.tar.gz").write_bytes(archive)
    files = (RemoteFile("cifar-10-python.tar.gz", sha256(archive)),)
    monkeypatch.setitem(SOURCES, "cifar10", Source(files=files, mirrors=(server.url,)))


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


@contextlib.contextmanager
def serving(root: Path):
    """An HTTP server on 127.0.0.1 serving `root`; `.requests` lists the paths asked."""
    root.mkdir(exist_ok=True)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root))
    )
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.root = root  # type: ignore[attr-defined]
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/"  # type: ignore[attr-defined]
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def snapshot(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): sha256(p.read_bytes()) if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def serve_idx(
    server,
    monkeypatch,
    name="mnist",
    *,
    n=200,
    n_test=50,
    shape=(6, 6),
    mutate=None,
    served_mutate=None,
) -> None:
    """Serve a tiny MNIST-format dataset and point the `name` source at it (dead mirror first)."""
    X, y = images_and_labels(n, shape, 1)
    X_test, y_test = images_and_labels(n_test, shape, 2)
    raw = {
        "train-images-idx3-ubyte": idx_bytes(X),
        "train-labels-idx1-ubyte": idx_bytes(y),
        "t10k-images-idx3-ubyte": idx_bytes(X_test),
        "t10k-labels-idx1-ubyte": idx_bytes(y_test),
    }
    if mutate:
        raw = mutate(raw)
    files = tuple(RemoteFile(f"{k}.gz", sha256(v), gzipped=True) for k, v in raw.items())
    if served_mutate:
        raw = served_mutate(raw)
    for k, v in raw.items():
        (server.root / f"{k}.gz").write_bytes(gzip.compress(v))
    monkeypatch.setitem(SOURCES, name, Source(files=files, mirrors=(DEAD, server.url)))


def put_intel(cache: Path, n_train: int, n_val: int, n_test: int) -> np.ndarray:
    """The landscapes file where the user puts it: flat 48x48x3 images, 6 classes, 3 splits."""
    X, y = images_and_labels(n_train + n_val + n_test, (48 * 48 * 3,), 1)
    y = y % 6
    val = slice(n_train, n_train + n_val)
    (cache / "intel").mkdir(parents=True)
    np.savez(
        cache / "intel" / "intel_landscapes.npz",
        train_images=X[:n_train],
        train_labels=y[:n_train],
        val_images=X[val],
        val_labels=y[val],
        test_images=X[val.stop :],
        test_labels=y[val.stop :],
    )
    return X


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def require_debian_fashion() -> None:
    if os.environ.get("HPSEARCH_REQUIRE_DATASETS") == "1":
        assert DEBIAN.is_dir(), "CI installs dataset-fashion-mnist; it is missing"
    elif not DEBIAN.is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist for the real data (CI installs it)")
