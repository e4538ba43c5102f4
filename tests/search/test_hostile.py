"""Secrets, paths, foreign databases and bad input, as a hostile user would try them: each ends
in one line and exit code 2 (or works), nothing leaks and nothing is damaged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy

from hpsearch.cli import main
from tests.conftest import TINY
from tests.search.faults import HPSEARCH
from tests.search.faults import SLOW
from tests.search.faults import Lines
from tests.search.faults import children
from tests.search.faults import states
from tests.search.faults import wait_while_running

SECRET = "s3cret-Pa55word"
# Two trials of several seconds: each worker inside one, long enough to read its command line.
TWO = SLOW.replace("n_trials = 8", "n_trials = 2")


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def _cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HPSEARCH, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=300,
    )


@contextmanager
def immutable(path: Path):
    """Read-only even for root (the tests run as root, which ignores mode bits)."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


# -- 8. The database password -------------------------------------------------------------------


@pytest.mark.slow
def test_the_password_is_masked_everywhere_it_is_shown_or_stored(
    write_study, pg_url, tmp_path, cli_here
):
    url = sqlalchemy.engine.make_url(pg_url).set(password=SECRET)  # trust auth ignores it
    url = url.render_as_string(hide_password=False)
    assert SECRET in url
    seen = []
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(write_study(TWO)), "--workers", "2", "--storage", url, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    lines = Lines(proc.stderr)
    wait_while_running(proc, lines, lambda: states(url, "tiny")["RUNNING"] >= 1)
    for pid in children(proc.pid):  # what `ps` shows of the workers
        seen.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode())
    out = proc.stdout.read()
    assert proc.wait(timeout=600) == 0, lines.text
    lines.join(timeout=30)
    err = lines.text
    seen += [out, err]
    for args in (
        ["show", "tiny"],
        ["studies"],
        ["export", "tiny", "-o", "best.json"],
        ["show", "no-such-study"],
    ):
        _, out, err = cli_here(*args, "--storage", url, cwd=tmp_path)
        seen += [out, err]
    done = _cli("retrain", "best.json", "--out", "again", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen += [done.stdout, done.stderr]
    exported = json.loads((tmp_path / "best.json").read_text())
    assert exported["storage"].endswith("@127.0.0.1:5432/" + url.rsplit("/", 1)[1])
    assert ":***@" in exported["storage"]
    seen += [(tmp_path / "best.json").read_text(), (tmp_path / "again/best.json").read_text()]
    leaks = [text for text in seen if SECRET in text]
    assert not leaks, leaks
    assert "no study named 'no-such-study'" in "".join(seen)


# -- 9. Names from an export file are data, not paths --------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exported")
    (folder / "s.toml").write_text(TINY.replace("n_trials = 6", "n_trials = 2"))
    url = f"sqlite:///{folder / 'h.db'}"
    assert main(["run", str(folder / "s.toml"), "--quiet", "--storage", url]) == 0
    assert main(["export", "tiny", "-o", str(folder / "best.json"), "--storage", url]) == 0
    return folder / "best.json"


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, key",
    [
        ({"study": "../../escaped"}, "study"),
        ({"study": "/tmp/escaped"}, "study"),
        ({"study": "a" * 300}, "study"),
        ({"trial_number": "../escaped"}, "configs[0].trial_number"),
        ({"trial_number": -1}, "configs[0].trial_number"),
        ({"seed": -5}, "configs[0].seed"),
        ({"seed": "abc"}, "configs[0].seed"),
        ({"seed": 2**40}, "configs[0].seed"),
        ({"threads": 0}, "configs[0].threads"),
        ({"threads": "two"}, "configs[0].threads"),
    ],
)
def test_retrain_refuses_names_and_seeds_it_cannot_use(exported, tmp_path, change, key, capsys):
    doc = json.loads(exported.read_text())
    if "study" in change:
        doc.update(change)
    else:
        doc["configs"][0].update(change)
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    path = work / "best.json"
    path.write_text(json.dumps(doc))
    before = sorted(p for p in tmp_path.rglob("*"))
    os.chdir(work)
    try:
        assert main(["retrain", str(path), "--quiet"]) == 2
    finally:
        os.chdir(tmp_path)
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"{path}: {key}: ")
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert not Path("/tmp/escaped").exists()


@pytest.mark.slow
def test_retrain_in_a_read_only_folder_is_one_line(exported, tmp_path):
    work = tmp_path / "ro"
    work.mkdir()
    with immutable(work):
        done = _cli("retrain", str(exported), "--quiet", cwd=work)
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "cannot be created" in line and "--out DIR" in line  # before any training


# -- 10. Other programs' databases; read-only commands create nothing ---------------------------


def test_a_postgresql_database_of_another_program_is_refused_untouched(write_study, pg_url):
    engine = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE customers (id integer primary key)"))
    for args in (["run", str(write_study())], ["studies"], ["show", "tiny"]):
        done = _cli(*args, "--storage", pg_url)
        assert done.returncode == 2
        assert "database of another program (tables: customers)" in _one_line(done.stderr)
    assert sqlalchemy.inspect(engine).get_table_names() == ["customers"]


@pytest.mark.slow
def test_read_only_commands_create_nothing_in_an_empty_database(pg_url, tmp_path, cli_here):
    engine = sqlalchemy.create_engine(pg_url, poolclass=sqlalchemy.pool.NullPool)
    empty = tmp_path / "empty.db"
    empty.touch()
    for url in (pg_url, f"sqlite:///{empty}"):
        for args in (["studies"], ["show", "tiny"], ["export", "tiny"], ["report", "tiny"]):
            code, _, err = cli_here(*args, "--storage", url, cwd=tmp_path)
            assert code == 2
            assert "holds no hpsearch studies yet" in _one_line(err)
    assert sqlalchemy.inspect(engine).get_table_names() == []
    assert empty.stat().st_size == 0


# -- 11. Bad data files ---------------------------------------------------------------------------


def _npz(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    np.savez(path, X_train=X, y_train=y)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (
            lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), y),
            "1 NaN or infinite pixel values",
        ),
        (
            lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 7, np.inf, X), y),
            "1 NaN or infinite pixel values",
        ),
        (lambda X, y: (X, np.zeros_like(y)), "only one class"),
        (lambda X, y: (X[:0], y[:0]), "holds no images"),
        (lambda X, y: (X, y + 0.5), "is not a whole number"),
    ],
    ids=["nan", "inf", "one-class", "no-images", "half-labels"],
)
def test_a_bad_dataset_is_refused_before_any_trial(write_study, tmp_path, make, words, capsys):
    rng = np.random.default_rng(0)
    X, y = make(rng.random((90, 4, 4)), np.arange(90) % 3)
    data = _npz(tmp_path / "d.npz", X, y)
    path = write_study(TINY.replace('dataset = "digits"', f'dataset = "{data}"'))
    db = tmp_path / "h.db"
    assert main(["run", str(path), "--storage", f"sqlite:///{db}", "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"{path}: [data].dataset: {data}") or "[data].dataset" in line
    assert words in line
    assert not db.exists()  # no study was created, no budget spent


@pytest.mark.slow
def test_whole_valued_float_labels_are_accepted(write_study, tmp_path):
    rng = np.random.default_rng(0)
    data = _npz(tmp_path / "d.npz", rng.random((90, 4, 4)), (np.arange(90) % 3).astype(float))
    path = write_study(TINY.replace('dataset = "digits"', f'dataset = "{data}"'))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["run", str(path), "--storage", url, "--quiet"]) == 0
    assert states(url, "tiny")["COMPLETE"] == 6


# -- 12. One line, exit 2, where an internal error used to be -------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["studies", "--storage", "mysql://user@127.0.0.1/x"], "needs the Python package"),
        (["studies", "--storage", "sqlite://"], "in-memory SQLite"),
        (["studies", "--storage", "sqlite:///:memory:"], "in-memory SQLite"),
    ],
)
def test_bad_flags_and_urls_are_one_line(args, words, capsys):
    assert main(args) == 2
    assert words in _one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_a_read_only_database_file_or_folder_is_one_line(write_study, tmp_path, cli_here):
    path = write_study(TINY.replace("n_trials = 6", "n_trials = 2"))
    assert cli_here("run", str(path), "--quiet", cwd=tmp_path)[0] == 0
    before = hashlib.sha256((tmp_path / "hpsearch.db").read_bytes()).hexdigest()
    for locked in (tmp_path / "hpsearch.db", tmp_path):
        with immutable(locked):
            code, out, err = cli_here("run", str(path), "--quiet", cwd=tmp_path)  # no write
            assert code == 0, err
            assert "nothing to run" in out
            assert cli_here("show", "tiny", cwd=tmp_path)[0] == 0
            code, _, err = cli_here("run", str(path), "--n-trials", "4", "--quiet", cwd=tmp_path)
            assert code == 2
            assert "read-only" in _one_line(err)
    assert hashlib.sha256((tmp_path / "hpsearch.db").read_bytes()).hexdigest() == before
    assert optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'hpsearch.db'}")


def test_a_study_name_too_long_for_postgresql_is_refused_by_validate(write_study, capsys):
    path = write_study(TINY.replace('name = "tiny"', f'name = "{"n" * 600}"'))
    assert main(["validate", str(path)]) == 2
    assert "up to 128 letters" in _one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(write_study, tmp_path):
    path = write_study()
    assert _cli("run", str(path), "--quiet", cwd=tmp_path).returncode == 0
    # The reader is gone before hpsearch writes anything, as with `hpsearch show x | head -0`.
    proc = subprocess.Popen(
        [HPSEARCH, "show", "tiny"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert err == ""


def test_a_database_of_an_older_optuna_schema_is_one_line_and_untouched(write_study, tmp_path):
    """A worker checks the schema itself, on its one connection (search/storage.py)."""
    path = write_study(TINY.replace("n_trials = 6", "n_trials = 1"))
    url = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    assert main(["run", str(path), "--storage", url, "--quiet"]) == 0
    rdb = optuna.storages.RDBStorage(url)
    older = [v for v in rdb.get_all_versions() if v != rdb.get_head_version()][0]
    with rdb.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = :v"), {"v": older})
    rdb.engine.dispose()
    before = hashlib.sha256((tmp_path / "hpsearch.db").read_bytes()).hexdigest()
    for args in (["run", str(path), "--n-trials", "2"], ["worker", "tiny"]):
        done = _cli(*args, "--storage", url, "--quiet")
        assert done.returncode == 2, done.stderr
        line = _one_line(done.stderr)
        assert "hpsearch.db" in line and f"schema {older}" in line
        assert "optuna storage upgrade" in line
    assert hashlib.sha256((tmp_path / "hpsearch.db").read_bytes()).hexdigest() == before
