"""Storage URL -> Optuna RDBStorage, refusing anything that is not an Optuna database.

The default is one SQLite file in the working directory, `hpsearch.db`, holding every study;
`--storage` or HPSEARCH_STORAGE name any SQLAlchemy URL Optuna accepts. Files that are not
SQLite databases, and SQLite databases of other programs, are refused before SQLAlchemy opens
them, so they are never modified.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.grpc_client import is_proxy
from hpsearch.grpc_client import open_proxy
from hpsearch.grpc_client import proxy_address

if TYPE_CHECKING:
    import optuna

DEFAULT_URL = "sqlite:///hpsearch.db"
ENV_VAR = "HPSEARCH_STORAGE"
# A report, a backup or optuna-dashboard can hold SQLite's lock for seconds; SQLite's default
# 5 s wait then fails trials with a misleading error. A lock held longer still is a storage
# error like any other: workers retry it (search/retrying.py). HPSEARCH_SQLITE_LOCK_TIMEOUT
# shortens the wait for tests.
SQLITE_LOCK_TIMEOUT_S = 60
SQLITE_LOCK_ENV = "HPSEARCH_SQLITE_LOCK_TIMEOUT"
# Without it, a PostgreSQL server that accepts connections but never answers hangs forever.
# HPSEARCH_POSTGRES_CONNECT_TIMEOUT changes it (whole seconds, at least 2: libpq's rule).
POSTGRES_CONNECT_TIMEOUT_S = 10
POSTGRES_CONNECT_ENV = "HPSEARCH_POSTGRES_CONNECT_TIMEOUT"
# Crash safety: each running trial's worker writes a heartbeat; a trial whose heartbeat is older
# than the grace period is failed by the next worker that looks, and re-queued with the same
# parameters and seed (up to worker.MAX_RETRY times). HPSEARCH_HEARTBEAT_INTERVAL shortens it
# for tests.
HEARTBEAT_ENV = "HPSEARCH_HEARTBEAT_INTERVAL"
DEFAULT_HEARTBEAT_S = 10
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OPTUNA_TABLES = {"studies", "trials", "alembic_version"}
# Every table of Optuna's schema: a database holding only some of them is one whose schema
# another process is creating this instant (seen in CI: studies and version_info only).
_OPTUNA_SCHEMA = _OPTUNA_TABLES | {
    "version_info",
    "study_directions",
    "study_user_attributes",
    "study_system_attributes",
    "trial_params",
    "trial_values",
    "trial_intermediate_values",
    "trial_user_attributes",
    "trial_system_attributes",
    "trial_heartbeats",
}
# Two processes opening a new database at the same moment both create Optuna's tables; the
# loser's CREATE TABLE or version row fails. Opening again then finds the winner's schema.
_OPEN_TRIES = 6


@dataclass(frozen=True)
class StorageURL:
    url: str
    origin: str  # where the URL came from, for messages: "--storage", "HPSEARCH_STORAGE", ...

    @property
    def shown(self) -> str:
        """The URL as printed and stored: any password is masked (`***`)."""
        return mask_password(self.url)


def mask_password(url: str) -> str:
    """`postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def resolve_url(flag: str | None) -> StorageURL:
    """--storage wins over HPSEARCH_STORAGE, which wins over ./hpsearch.db."""
    if flag:
        return StorageURL(flag, "--storage")
    if os.environ.get(ENV_VAR):
        return StorageURL(os.environ[ENV_VAR], ENV_VAR)
    return StorageURL(DEFAULT_URL, "storage")


ALLOWED_URLS = (
    "allowed: sqlite:///path/to/file.db, postgresql://user@host/dbname or grpc://host:port "
    "(an `hpsearch proxy`)"
)


def _check_url(target: StorageURL, *, create: bool) -> None:
    """Refuse what is not an Optuna database, before SQLAlchemy or Optuna write anything."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if is_proxy(target.url):
        proxy_address(target)
        return
    try:
        parsed = make_url(target.url)
    except ArgumentError:
        raise UsageError(
            f"{target.origin}: cannot parse {target.shown!r} as a database URL; {ALLOWED_URLS}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise UsageError(
                f"{target.origin}: {target.shown!r} is an in-memory SQLite database, which "
                f"keeps nothing after the command ends; {ALLOWED_URLS}"
            )
        _check_sqlite_file(target, Path(parsed.database), create=create)
    else:
        _check_server_tables(target, create=create)


def check_writable(target: StorageURL) -> None:
    """Before any trial: an SQLite file or folder that cannot be written is one line now.

    Without it, Optuna's trial creation retries the refused write with random sleeps of up to
    2 s, several times, before the same error reaches the user.
    """
    from sqlalchemy.engine import make_url

    from hpsearch.errors import read_only_error

    if is_proxy(target.url):
        return  # the proxy's database: the proxy checked it as it started
    parsed = make_url(target.url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    path = Path(parsed.database).absolute()
    for where in (path, path.parent):  # the file, and the folder its journal goes into
        if where.exists() and not os.access(where, os.W_OK):
            raise read_only_error(target.shown, f"{where}: not writable")


def _refuse_foreign(target: StorageURL, where: str, tables: set[str], create: bool) -> None:
    if tables and not _OPTUNA_TABLES <= tables and not tables <= _OPTUNA_SCHEMA:
        shown = ", ".join(sorted(tables)[:5])
        raise UsageError(
            f"{target.origin}: {where} is a database of another program (tables: {shown}); "
            "left untouched. Use a new database for hpsearch"
        )
    if not tables and not create:
        raise UsageError(
            f"{target.origin}: {where} holds no hpsearch studies yet (it is empty); run "
            "`hpsearch run STUDY.toml` first, or point --storage at an existing database"
        )


def _check_sqlite_file(target: StorageURL, path: Path, *, create: bool) -> None:
    if not path.exists():
        if not create:
            raise UsageError(
                f"{target.origin}: {path} does not exist; run `hpsearch run "
                "STUDY.toml` first, or point --storage at an existing database"
            )
        if not path.parent.is_dir():
            raise UsageError(
                f"{target.origin}: folder {path.parent} does not exist; create it "
                "or choose another path"
            )
        return
    if path.is_dir():
        raise UsageError(f"{target.origin}: {path} is a directory; {ALLOWED_URLS}")
    with path.open("rb") as f:
        header = f.read(len(_SQLITE_MAGIC))
    if header and header != _SQLITE_MAGIC:
        raise UsageError(
            f"{target.origin}: {path} is not an SQLite database (left untouched); "
            "point --storage at an hpsearch database or a new file"
        )
    tables: set[str] = set()
    if header:  # an empty file is an empty SQLite database
        try:
            tables = _sqlite_tables(path, "ro")
        except sqlite3.OperationalError as e:
            # A process killed mid-write leaves a hot journal, which SQLite rolls back on the
            # next open; a read-only connection cannot, so open it as SQLite itself would.
            hot = Path(f"{path}-journal").exists() and "readonly" in str(e)
            if not hot:
                raise UsageError(
                    f"{target.origin}: {path} cannot be read as SQLite ({e}); left untouched"
                ) from None
            tables = _sqlite_tables(path, "rw")
        except sqlite3.DatabaseError as e:
            raise UsageError(
                f"{target.origin}: {path} cannot be read as SQLite ({e}); left untouched"
            ) from None
    _refuse_foreign(target, str(path), tables, create)


def _sqlite_tables(path: Path, mode: str) -> set[str]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}
    finally:
        conn.close()


def _pool_of(rdb: Any, target: StorageURL, backend: str, connections: int) -> None:
    """A process that runs trials (or watches them: the parent of `run --workers`) holds one
    connection: its threads (the trial loop, the heartbeat) take turns on it, each for one
    short transaction, so a default PostgreSQL (max_connections = 100) holds about 90 workers.
    Its turns wait however long the database takes (a heartbeat that gave up would let its
    trial look dead). The proxy (search/proxy.py) asks for one per thread that serves its
    workers. Optuna's set-up of a new database needs two connections at once (one inside the
    other), so the storage is made without a pool (a connection for each use, closed after
    it) and then given this engine."""
    import sqlalchemy
    from sqlalchemy import orm

    engine = sqlalchemy.create_engine(
        target.url,
        connect_args=_connect_args(backend),
        pool_size=connections,
        max_overflow=0,
        pool_timeout=24 * 3600.0,
    )
    rdb.engine.dispose()
    rdb.engine = engine
    rdb.scoped_session = orm.scoped_session(orm.sessionmaker(bind=engine))


def _check_schema(rdb: Any, shown: str) -> None:
    """Optuna's check that the tables are of its schema, made one connection at a time
    (Optuna's own opens a second connection inside the first: with a pool of one, it would
    wait for itself).

    Raises:
        RuntimeError: the tables are of another schema version; the message says what to do.
    """
    from importlib.metadata import version

    current, head = rdb.get_current_version(), rdb.get_head_version()
    if current == head:
        return
    if current in rdb.get_all_versions():
        todo = f"run `optuna storage upgrade --storage {shown}` (back it up first)"
    else:
        todo = "it was written by a newer Optuna: upgrade Optuna (`pip install -U optuna`)"
    raise RuntimeError(
        f"{shown}: its tables are of Optuna schema {current}, Optuna {version('optuna')} reads "
        f"{head}: {todo}"
    )


def _connect_args(backend: str) -> dict[str, object]:
    if backend == "sqlite":
        return {"timeout": float(os.environ.get(SQLITE_LOCK_ENV) or SQLITE_LOCK_TIMEOUT_S)}
    if backend.startswith("postgres"):
        # Without it, a PostgreSQL server that accepts connections but never answers hangs.
        return {
            "connect_timeout": int(
                os.environ.get(POSTGRES_CONNECT_ENV) or POSTGRES_CONNECT_TIMEOUT_S
            )
        }
    return {}


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _engine_problem(target: StorageURL, error: Exception) -> UsageError:
    """The one-line message for a URL whose engine cannot be made or reached."""
    from sqlalchemy.exc import NoSuchModuleError
    from sqlalchemy.exc import SQLAlchemyError

    backend = target.url.split(":", 1)[0]
    if isinstance(error, NoSuchModuleError):
        return UsageError(
            f"{target.origin}: {target.shown!r} names an unknown database kind {backend!r}; "
            f"{ALLOWED_URLS}, or another SQLAlchemy URL whose driver is installed"
        )
    if isinstance(error, ImportError):
        name = getattr(error, "name", None) or str(error)
        return UsageError(
            f"{target.origin}: {backend} needs the Python package {name!r}, which is not "
            f"installed; pip install its driver (for PostgreSQL: pip install 'hpsearch[postgres]')"
        )
    if isinstance(error, SQLAlchemyError):
        return UsageError(f"{target.origin}: cannot open {target.shown!r}: {_first_line(error)}")
    return UsageError(f"{target.origin}: cannot open {target.shown!r}: {error}")


def _check_server_tables(target: StorageURL, *, create: bool) -> None:
    """A database server's tables, read without creating anything."""
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    backend = target.url.split(":", 1)[0].split("+", 1)[0]
    try:
        engine = sqlalchemy.create_engine(
            target.url, connect_args=_connect_args(backend), poolclass=sqlalchemy.pool.NullPool
        )
        try:
            tables = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except (SQLAlchemyError, ImportError) as e:
        raise _engine_problem(target, e) from None
    _refuse_foreign(target, target.shown, tables, create)


def heartbeat_interval() -> int:
    return max(1, int(os.environ.get(HEARTBEAT_ENV) or DEFAULT_HEARTBEAT_S))


def _is_creation_race(error: Exception) -> bool:
    """Another process created Optuna's schema at the same moment (the loser's error)."""
    text = str(getattr(error, "orig", None) or error).lower()
    return any(
        words in text
        for words in ("already exists", "unique constraint", "duplicate key", "database is locked")
    )


def _transactions_begin_before_reads(engine: Any) -> None:
    """Make SQLite transactions whole for the processes that run trials.

    Python's sqlite3 begins a transaction only at the first write, so the read a write depends
    on runs outside it: Optuna takes a WAITING trial (an [[enqueue]] table, a re-queued one) by
    reading its state and then setting it RUNNING, and two workers could both read WAITING and
    both run it. SQLAlchemy's recipe for pysqlite: the driver begins nothing itself and every
    transaction starts with BEGIN IMMEDIATE, which takes the write lock first (the others
    wait, up to the 60 s lock timeout), so no two of them ever interleave.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the hooks are closed, not reused


def _settings(backend: str, heartbeat: bool) -> dict[str, Any]:
    """Optuna's RDBStorage arguments: for a process that runs trials, its heartbeat, and no
    pool until its one connection's (_pool_of)."""
    if not heartbeat:
        return {"engine_kwargs": {"connect_args": _connect_args(backend)}}
    from sqlalchemy.pool import NullPool

    interval = heartbeat_interval()
    return {
        "engine_kwargs": {"connect_args": _connect_args(backend), "poolclass": NullPool},
        "skip_compatibility_check": True,  # checked after, one connection at a time
        "heartbeat_interval": interval,
        "grace_period": 3 * interval,
    }


def open_storage(
    target: StorageURL,
    *,
    create: bool = True,
    heartbeat: bool = False,
    log=None,
    connections: int = 1,
) -> optuna.storages.BaseStorage:
    """Open (and with `create`, initialise) the study database.

    With `heartbeat` (for processes that run trials), each running trial's worker writes a
    heartbeat, so a dead worker's trial can be failed and retried with the same parameters and
    seed, and every storage call is retried through outages (search/retrying.py), its root
    cause given to `log`; it holds `connections` connections (one for a worker).
    `grpc://HOST:PORT` opens a client of `hpsearch proxy` (search/proxy.py) instead.

    Raises:
        UsageError: the URL cannot be parsed or reached, names a database that is not an Optuna
            database (or is empty, without `create`), is read-only, needs a driver that is not
            installed, or has an old schema.
    """
    _check_url(target, create=create)
    if is_proxy(target.url):
        return open_proxy(target, heartbeat_s=heartbeat_interval() if heartbeat else None, log=log)
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    backend = target.url.split(":", 1)[0].split("+", 1)[0]
    settings = _settings(backend, heartbeat)
    for attempt in range(_OPEN_TRIES):
        try:
            with warnings.catch_warnings():  # Optuna calls the heartbeat settings experimental
                warnings.simplefilter("ignore")
                rdb = optuna.storages.RDBStorage(target.url, **settings)
                if heartbeat:
                    _check_schema(rdb, target.shown)
            break
        except (SQLAlchemyError, ImportError) as e:
            if isinstance(e, SQLAlchemyError) and _is_creation_race(e):
                if attempt + 1 < _OPEN_TRIES:
                    time.sleep(0.05 * 2**attempt + random.random() * 0.05)
                    continue
            raise _engine_problem(target, e) from None
        except RuntimeError as e:  # Optuna's schema-version check
            raise UsageError(f"{target.origin}: {e}".replace("\n", " ")) from None
    if not heartbeat:
        return rdb
    _pool_of(rdb, target, backend, connections)
    if backend == "sqlite":
        _transactions_begin_before_reads(rdb.engine)
    from hpsearch.retrying import RetryingStorage

    return RetryingStorage(rdb, log=log or (lambda message: None), shown=target.shown)
