from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from hpsearch.models.data import load_dataset
from tests.datafiles import serving

# Every test (and every process a test starts) caches datasets in a folder of its own, never in
# the user's ~/.cache/hpsearch.
if "HPSEARCH_DATA_DIR" not in os.environ:
    os.environ["HPSEARCH_DATA_DIR"] = tempfile.mkdtemp(prefix="hpsearch-test-data-")
    atexit.register(shutil.rmtree, os.environ["HPSEARCH_DATA_DIR"], ignore_errors=True)

# A small, fast study: 6 trials of 3 epochs on digits, no pruning.
TINY = """
[study]
name = "tiny"
n_trials = 6
seed = 0
sampler = { type = "tpe", n_startup_trials = 3 }
pruner = "none"

[data]
dataset = "digits"
val_fraction = 0.2

[model]
kind = "numpy.softmax"
fixed = { epochs = 3 }

[params]
learning_rate = { type = "float", low = 1e-3, high = 1e-1, log = true }
batch_size = { type = "categorical", choices = [32, 64] }
reg = { type = "categorical", choices = ["none", "l1", "l2"] }
reg_strength = { type = "float", low = 1e-5, high = 1e-2, log = true, when = { reg = ["l1", "l2"] } }
"""  # noqa: E501 (a TOML inline table cannot span lines)


@pytest.fixture
def write_study(tmp_path: Path):
    """Write a study file into the test's folder and return its path."""

    def write(text: str = TINY, name: str = "study.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hpsearch.db'}"


def require_torch():
    """torch, or a skip with the reason where it is not installed.

    CI sets HPSEARCH_REQUIRE_TORCH=1 (it installs torch 2.13.0), so there a missing torch is a
    failure, never a silent skip.
    """
    if os.environ.get("HPSEARCH_REQUIRE_TORCH") == "1":
        import torch

        return torch
    return pytest.importorskip(
        "torch", reason="torch is not installed: pip install torch==2.13.0 (CI installs it)"
    )


@pytest.fixture
def pg_url(request):
    """A new, empty database on the test PostgreSQL server, dropped afterwards; the test skips,
    saying why, where HPSEARCH_TEST_POSTGRES_URL is unset (.ci/run sets it). A test marked
    `stops_postgresql` has the server to itself (no other test process uses it meanwhile)."""
    from tests.search.faults import new_postgres_database
    from tests.search.faults import postgres_url

    postgres_url()
    alone = request.node.get_closest_marker("stops_postgresql") is not None
    yield from new_postgres_database(alone=alone)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www (tests/datafiles.py)."""
    with serving(tmp_path / "www") as httpd:
        yield httpd


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A dataset cache of this test's own (HPSEARCH_DATA_DIR), no mirror, no cached loads."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(cache))
    monkeypatch.delenv("HPSEARCH_DATA_MIRROR", raising=False)
    load_dataset.cache_clear()
    yield cache
    load_dataset.cache_clear()


@pytest.fixture
def cli_here(capsys, monkeypatch):
    """`hpsearch ARGS` in this process, from folder `cwd`: (exit code, stdout, stderr). For
    tests of what a command says and writes; those of processes use _cli."""

    def run(*args: str, cwd: Path) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        from hpsearch.cli import main

        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run
