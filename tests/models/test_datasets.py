"""Datasets for real: fixtures in the real formats, served over HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import io
import os
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hpsearch.models.data import DataError
from hpsearch.models.data import load_dataset
from hpsearch.models.data.sources import SOURCES
from tests.datafiles import DEAD
from tests.datafiles import cifar_batches
from tests.datafiles import cifar_tar
from tests.datafiles import images_and_labels
from tests.datafiles import put_intel
from tests.datafiles import require_debian_fashion
from tests.datafiles import serve_cifar
from tests.datafiles import serve_idx
from tests.datafiles import serving
from tests.datafiles import sha256
from tests.datafiles import snapshot

# Every test here caches datasets in a folder of its own (conftest.py: own_cache).
pytestmark = pytest.mark.usefixtures("own_cache")

# -- downloads and formats -------------------------------------------------------------------


def test_mnist_downloads_through_the_fallback_mirror_verifies_and_caches(
    server, monkeypatch, own_cache
):
    serve_idx(server, monkeypatch)
    data = load_dataset("mnist", val_fraction=0.2, seed=0)
    assert data.X_train.shape == (160, 36) and data.X_val.shape == (40, 36)
    assert data.X_test.shape == (50, 36) and data.image_shape == (1, 6, 6)
    assert data.X_train.dtype == np.float32
    assert sorted(server.requests) == sorted(f"/{f.name}" for f in SOURCES["mnist"].files)
    assert sorted(p.name for p in (own_cache / "mnist").iterdir()) == sorted(
        f.name.removesuffix(".gz") for f in SOURCES["mnist"].files
    )
    load_dataset.cache_clear()
    server.requests.clear()
    load_dataset("mnist", val_fraction=0.2, seed=0)
    assert server.requests == []  # the second load is served from the cache


def test_the_prepared_arrays_are_memory_mapped_and_shared(server, monkeypatch, own_cache):
    serve_idx(server, monkeypatch)
    data = load_dataset("mnist", seed=0)
    base = data.X_train
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)
    assert not data.X_train.flags.writeable
    (prepared,) = (own_cache / "prepared").iterdir()
    assert sorted(p.name for p in prepared.iterdir()) == sorted(
        [f"{s}.npy" for s in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")]
        + ["meta.json"]
    )
    stamp = (prepared / "meta.json").stat().st_mtime_ns
    load_dataset.cache_clear()
    load_dataset("mnist", seed=0)
    assert (prepared / "meta.json").stat().st_mtime_ns == stamp  # not prepared again
    load_dataset("mnist", seed=1)  # another split is another cache entry
    assert len(list((own_cache / "prepared").iterdir())) == 2


def test_cifar10_tar_is_verified_extracted_and_channel_first(server, monkeypatch):
    batches = cifar_batches(20)
    X0 = batches["data_batch_1"][0]
    X0[:] = 0
    X0[:, :1024] = 255  # red channel full, green and blue empty
    archive = cifar_tar(batches)
    serve_cifar(server, monkeypatch, archive)
    data = load_dataset("cifar10", val_fraction=0.1, preprocess="scale", seed=0)
    assert data.image_shape == (3, 32, 32)
    assert len(data.y_train) + len(data.y_val) == 100 and len(data.y_test) == 20
    images = np.concatenate([data.X_train, data.X_val]).reshape(-1, 3, 32, 32)
    red_only = images[(images[:, 0] == 1).all(axis=(1, 2))]
    assert len(red_only) == 20 and red_only[:, 1:].max() == 0


def test_a_local_copy_is_used_and_verified_on_its_decompressed_bytes(
    server, monkeypatch, tmp_path
):
    serve_idx(server, monkeypatch, name="fashion-mnist")
    local = tmp_path / "debian"
    local.mkdir()
    for f in (server.root).iterdir():  # re-compressed differently, as Debian's files are
        (local / f.name).write_bytes(gzip.compress(gzip.decompress(f.read_bytes()), 1))
        assert (local / f.name).read_bytes() != f.read_bytes()
    source = SOURCES["fashion-mnist"]
    monkeypatch.setitem(
        SOURCES, "fashion-mnist", replace(source, mirrors=(DEAD,), local_dirs=(str(local),))
    )
    assert load_dataset("fashion-mnist", seed=0).X_test.shape == (50, 36)
    assert server.requests == []


def test_offline_without_a_copy_names_the_url_and_where_to_put_the_file(monkeypatch, own_cache):
    monkeypatch.setitem(SOURCES, "mnist", replace(SOURCES["mnist"], mirrors=(DEAD,)))
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "\n" not in message
    assert f"{DEAD}train-images-idx3-ubyte.gz" in message
    assert str(own_cache / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert snapshot(own_cache) == {}


def test_a_file_put_in_the_cache_by_hand_is_verified_and_used(server, monkeypatch, own_cache):
    serve_idx(server, monkeypatch)
    (own_cache / "mnist").mkdir(parents=True)
    for f in server.root.iterdir():
        (own_cache / "mnist" / f.name).write_bytes(f.read_bytes())
    monkeypatch.setitem(SOURCES, "mnist", replace(SOURCES["mnist"], mirrors=(DEAD,)))
    assert load_dataset("mnist").X_test.shape == (50, 36)


def test_the_users_own_mirror_is_tried_first(server, monkeypatch, tmp_path):
    serve_idx(server, monkeypatch)
    # A built-in mirror that works too: if it were asked first, it would serve the files.
    with serving(tmp_path / "builtin") as builtin:
        for f in server.root.iterdir():
            (builtin.root / f.name).write_bytes(f.read_bytes())
        monkeypatch.setitem(SOURCES, "mnist", replace(SOURCES["mnist"], mirrors=(builtin.url,)))
        monkeypatch.setenv("HPSEARCH_DATA_MIRROR", server.url.rstrip("/"))
        assert load_dataset("mnist").X_test.shape == (50, 36)
    assert len(server.requests) == 4 and builtin.requests == []


def _with(key, transform):
    return lambda raw: {**raw, key: transform(raw[key])}


BAD_IDX = [
    (
        "wrong-magic",
        _with("train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x01" + b[4:]),
        "wrong magic number",
    ),
    ("truncated", _with("train-images-idx3-ubyte", lambda b: b[:-7]), "truncated"),
    (
        "label-count",
        _with(
            "train-labels-idx1-ubyte",
            lambda b: b[:4] + (199).to_bytes(4, "big") + b[8:-1],  # header and data: 199
        ),
        "199 labels for 200 images",
    ),
    (
        "label-range",
        _with("t10k-labels-idx1-ubyte", lambda b: b[:-1] + bytes([12])),
        "label 12 is out of range",
    ),
]


@pytest.mark.parametrize("case", BAD_IDX, ids=[c[0] for c in BAD_IDX])
def test_bad_idx_files_end_in_one_line_and_leave_no_prepared_data(
    case, server, monkeypatch, own_cache
):
    serve_idx(server, monkeypatch, mutate=case[1])
    with pytest.raises(DataError, match=case[2]) as info:
        load_dataset("mnist")
    assert "\n" not in str(info.value)
    assert not (own_cache / "prepared").exists()


def test_a_checksum_mismatch_is_refused_and_the_cache_left_unchanged(
    server, monkeypatch, own_cache
):
    serve_idx(
        server,
        monkeypatch,
        served_mutate=_with("train-images-idx3-ubyte", lambda b: b[:-1] + b"\x07"),
    )
    before = snapshot(own_cache)
    with pytest.raises(DataError, match="SHA-256 mismatch") as info:
        load_dataset("mnist")
    assert "\n" not in str(info.value)
    assert snapshot(own_cache) == before  # nothing kept from the failed download
    assert not any(".part" in p for p in snapshot(own_cache))


@pytest.mark.parametrize("member", ["../escaped.txt", "/tmp/hpsearch-absolute.txt"])
def test_a_tar_member_escaping_its_folder_is_refused(member, server, monkeypatch, own_cache):
    batches = cifar_batches(10)
    archive = cifar_tar(batches, extra=[(member, b"gotcha")])
    serve_cifar(server, monkeypatch, archive)
    with pytest.raises(DataError, match="escapes its folder"):
        load_dataset("cifar10")
    assert (
        not (own_cache / "escaped.txt").exists()
        and not (own_cache.parent / "escaped.txt").exists()
    )
    assert not Path("/tmp/hpsearch-absolute.txt").exists()
    assert not (own_cache / "prepared").exists()
    assert [p for p in (own_cache / "cifar10").iterdir()] == [
        own_cache / "cifar10" / "cifar-10-python.tar.gz"
    ]  # no extraction left behind


def test_a_pickle_that_would_run_code_is_refused(server, monkeypatch):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/hpsearch-pwned",))

    batches = cifar_batches(10)
    archive = cifar_tar(
        batches, extra=[("cifar-10-batches-py/data_batch_1", pickle.dumps(Evil()))]
    )
    serve_cifar(server, monkeypatch, archive)
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        load_dataset("cifar10")
    assert not Path("/tmp/hpsearch-pwned").exists()


# -- .npz files --------------------------------------------------------------------------------


def test_a_users_npz_with_its_own_splits(tmp_path):
    X, y = images_and_labels(60, (5, 5, 3), 1)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        X_train=X[:40],
        y_train=y[:40],
        X_val=X[40:50],
        y_val=y[40:50],
        X_test=X[50:],
        y_test=y[50:],
    )
    data = load_dataset(str(path), preprocess="scale")
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (40, 10, 10)
    assert data.image_shape == (3, 5, 5)  # (N, H, W, C) became channel-first
    first = X[:40].transpose(0, 3, 1, 2).reshape(40, -1) / 255
    assert {row.tobytes() for row in data.X_train} == {
        row.astype(np.float32).tobytes() for row in first
    }


def test_intel_uses_the_assignments_names_and_flat_images(tmp_path, own_cache):
    X = put_intel(own_cache, 20, 5, 5)
    data = load_dataset("intel", preprocess="none")
    assert data.image_shape == (3, 48, 48) and len(data.classes) == 6
    assert data.X_val.shape == (5, 6912)
    np.testing.assert_array_equal(
        data.X_val.reshape(5, 3, 48, 48)[0], X[20].reshape(48, 48, 3).transpose(2, 0, 1)
    )


def test_a_validation_fraction_too_small_for_the_data_is_refused(tmp_path, own_cache):
    X, y = images_and_labels(40, (4, 4), 1)  # 4 images a class
    path = tmp_path / "small.npz"
    np.savez(path, X_train=X, y_train=y, X_test=X[:10], y_test=y[:10])
    with pytest.raises(
        DataError,
        match=r"val_fraction 0.1 leaves no validation image.*"
        r"raise \[data\].val_fraction",
    ):
        load_dataset(str(path), val_fraction=0.1)
    assert snapshot(own_cache / "prepared") == {}  # nothing half-made is left behind
    assert len(load_dataset(str(path), val_fraction=0.25).y_val) == 10  # one a class


def test_intel_missing_says_where_to_put_it(own_cache):
    with pytest.raises(DataError, match=str(own_cache / "intel" / "intel_landscapes.npz")):
        load_dataset("intel")


BAD_NPZ = [
    ("missing-X", lambda p: np.savez(p, y_train=np.zeros(3, int)), "has no X_train"),
    (
        "labels-2d",
        lambda p: np.savez(p, X_train=np.zeros((3, 4)), y_train=np.zeros((3, 1), int)),
        "y_train has shape",
    ),
    (
        "count-mismatch",
        lambda p: np.savez(p, X_train=np.zeros((3, 4)), y_train=np.zeros(2, int)),
        "2 labels for 3 images",
    ),
    (
        "fractional-labels",  # whole-valued floats (0.0, 1.0) are accepted
        lambda p: np.savez(p, X_train=np.zeros((3, 4)), y_train=np.array([0.0, 0.5, 1.0])),
        "label 0.5 is not a whole number",
    ),
    (
        "half-a-split",
        lambda p: np.savez(
            p, X_train=np.zeros((3, 4)), y_train=np.zeros(3, int), X_val=np.zeros((2, 4))
        ),
        "X_val and y_val",
    ),
    (
        "shapes-differ",
        lambda p: np.savez(
            p,
            X_train=np.zeros((3, 4)),
            y_train=np.zeros(3, int),
            X_test=np.zeros((2, 5)),
            y_test=np.zeros(2, int),
        ),
        "differ in shape",
    ),
    ("not-a-zip", lambda p: p.write_text("just text"), "not an .npz file"),
    ("a-single-array", lambda p: p.write_bytes(_npy_bytes()), "single array"),
    (
        "negative-label",
        lambda p: np.savez(p, X_train=np.zeros((3, 4)), y_train=np.array([0, -1, 1])),
        "out of range",
    ),
]


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


@pytest.mark.parametrize("case", BAD_NPZ, ids=[c[0] for c in BAD_NPZ])
def test_bad_npz_files_end_in_one_line(case, tmp_path, own_cache):
    path = tmp_path / "bad.npz"
    case[1](path)
    before = path.read_bytes()
    with pytest.raises(DataError, match=case[2]) as info:
        load_dataset(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == before
    assert not (own_cache / "prepared").exists()


# -- the real Fashion-MNIST, from Debian's dataset-fashion-mnist ---------------------------------


@pytest.mark.slow
def test_the_real_fashion_mnist_offline(monkeypatch, own_cache):
    require_debian_fashion()
    monkeypatch.setitem(
        SOURCES, "fashion-mnist", replace(SOURCES["fashion-mnist"], mirrors=(DEAD,))
    )  # offline
    data = load_dataset("fashion-mnist", val_fraction=0.1, preprocess="scale", seed=0)
    assert data.X_train.shape == (54_000, 784) and data.X_val.shape == (6_000, 784)
    assert data.X_test.shape == (10_000, 784) and data.image_shape == (1, 28, 28)
    assert np.bincount(np.concatenate([data.y_train, data.y_val])).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert np.bincount(data.y_val).tolist() == [600] * 10  # stratified
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    for f in SOURCES["fashion-mnist"].files:  # the published hashes of the decompressed files
        cached = own_cache / "fashion-mnist" / f.name.removesuffix(".gz")
        assert sha256(cached.read_bytes()) == f.sha256


# -- the assignment studies, each on its dataset's real format -------------------------------

ASSIGNMENTS = sorted(
    (Path(__file__).resolve().parents[2] / "studies" / "assignments").glob("*.toml")
)


@pytest.mark.parametrize("study", ASSIGNMENTS, ids=lambda p: p.stem)
@pytest.mark.slow
def test_every_assignment_study_runs_where_its_data_exists(
    study, server, monkeypatch, own_cache, tmp_path
):
    """A trial of each assignment's study trains on a small dataset in its real file format.

    The real datasets cannot be had here (no network); these stand in for them, served over
    HTTP on 127.0.0.1 (MNIST, CIFAR-10) or put where the user would put them (the landscapes).
    """
    import tomllib

    import optuna

    from hpsearch.cli import main
    from tests.conftest import require_torch

    doc = tomllib.loads(study.read_text())
    if doc["model"]["kind"].startswith("torch."):
        require_torch()
    dataset = doc["data"]["dataset"]
    if dataset == "mnist":
        serve_idx(server, monkeypatch, n=100, n_test=20, shape=(28, 28))
    elif dataset == "cifar10":
        # 50 images a class, so that a000's val_fraction of 0.02 holds out one of each; the
        # CNN (a 64-128-256 network) gets 10 a class: a fifth of the time.
        n = 20 if doc["model"]["kind"] == "torch.cnn" else 100
        serve_cifar(server, monkeypatch, cifar_tar(cifar_batches(n)))
    else:
        assert dataset == "intel"
        put_intel(own_cache, 24, 8, 8)
    if doc["model"]["kind"] == "torch.cnn":  # the real network, for 3 of its 30 epochs
        shorter = tmp_path / study.name
        shorter.write_text(study.read_text().replace("epochs = 30,", "epochs = 3,"))
        assert shorter.read_text() != study.read_text()
        study = shorter
    db = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    code = main(["run", str(study), "--storage", db, "--quiet", "--n-trials", "1"])
    (trial,) = optuna.load_study(study_name=doc["study"]["name"], storage=db).trials
    if trial.user_attrs.get("diverged"):  # a001's grid goes up to a learning rate of 100
        assert trial.user_attrs["fail_reason"]  # says why, e.g. "weights exploded in epoch 0"
        assert code == 3  # no complete trial: the run says so in its exit code
    else:
        assert code == 0
        assert trial.state.name == "COMPLETE"
        assert len(trial.user_attrs["curves"]["val_accuracy"]) >= 1
