"""Storage URL -> Optuna RDBStorage, refusing anything that is not an Optuna database.

The default is one SQLite file in the working directory, `hpsearch.db`, holding every study;
`--storage` or HPSEARCH_STORAGE name any SQLAlchemy URL Optuna accepts. Files that are not
SQLite databases, and SQLite databases of other programs, are refused before SQLAlchemy opens
them, so they are never modified.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from search.errors import UsageError

if TYPE_CHECKING:
    import optuna

DEFAULT_URL = "sqlite:///hpsearch.db"
ENV_VAR = "HPSEARCH_STORAGE"
# A report, a backup or optuna-dashboard can hold SQLite's lock for seconds; SQLite's default
# 5 s wait then fails trials with a misleading error (../shared/optuna5.md).
SQLITE_LOCK_TIMEOUT_S = 60
# Without it, a PostgreSQL server that accepts connections but never answers hangs forever.
POSTGRES_CONNECT_TIMEOUT_S = 10
# Crash safety: each running trial's worker writes a heartbeat; a trial whose heartbeat is older
# than the grace period is failed by the next worker that looks, and re-queued with the same
# parameters and seed (up to MAX_RETRY times). HPSEARCH_HEARTBEAT_INTERVAL shortens it for tests.
HEARTBEAT_ENV = "HPSEARCH_HEARTBEAT_INTERVAL"
DEFAULT_HEARTBEAT_S = 10
MAX_RETRY = 3
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OPTUNA_TABLES = {"studies", "trials", "alembic_version"}


@dataclass(frozen=True)
class StorageURL:
    url: str
    origin: str  # where the URL came from, for messages: "--storage", "HPSEARCH_STORAGE", ...

    def sqlite_path(self) -> Path | None:
        """The database file of a sqlite URL; None for other databases and in-memory SQLite."""
        from sqlalchemy.engine import make_url

        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(parsed.database)


def resolve_url(flag: str | None) -> StorageURL:
    """--storage wins over HPSEARCH_STORAGE, which wins over ./hpsearch.db."""
    if flag:
        return StorageURL(flag, "--storage")
    if os.environ.get(ENV_VAR):
        return StorageURL(os.environ[ENV_VAR], ENV_VAR)
    return StorageURL(DEFAULT_URL, "storage")


def _check_url(target: StorageURL, *, create: bool) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    allowed = "allowed: sqlite:///path/to/file.db or postgresql://user@host/dbname"
    try:
        make_url(target.url)
    except ArgumentError:
        raise UsageError(
            f"{target.origin}: cannot parse {target.url!r} as a database URL; {allowed}"
        ) from None
    path = target.sqlite_path()
    if path is None:
        return
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
        raise UsageError(f"{target.origin}: {path} is a directory; {allowed}")
    with path.open("rb") as f:
        header = f.read(len(_SQLITE_MAGIC))
    if header and header != _SQLITE_MAGIC:
        raise UsageError(
            f"{target.origin}: {path} is not an SQLite database (left untouched); "
            "point --storage at an hpsearch database or a new file"
        )
    if not header:
        return  # an empty file is an empty SQLite database
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise UsageError(
            f"{target.origin}: {path} cannot be read as SQLite ({e}); left untouched"
        ) from None
    if tables and not _OPTUNA_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5])
        raise UsageError(
            f"{target.origin}: {path} is an SQLite database of another program "
            f"(tables: {shown}); left untouched. Use a new file for hpsearch"
        )


def heartbeat_interval() -> int:
    return max(1, int(os.environ.get(HEARTBEAT_ENV) or DEFAULT_HEARTBEAT_S))


def open_storage(
    target: StorageURL, *, create: bool = True, heartbeat: bool = False
) -> optuna.storages.RDBStorage:
    """Open (and with `create`, initialise) the study database.

    With `heartbeat` (for processes that run trials), dead workers' trials are failed and
    retried with the same parameters and seed.

    Raises:
        UsageError: the URL cannot be parsed or reached, names a file that is not an Optuna
            database, needs a driver that is not installed, or has an old schema.
    """
    _check_url(target, create=create)
    import optuna
    from sqlalchemy.exc import NoSuchModuleError
    from sqlalchemy.exc import SQLAlchemyError

    backend = target.url.split(":", 1)[0].split("+", 1)[0]
    connect_args: dict[str, object] = {}
    if backend == "sqlite":
        connect_args["timeout"] = SQLITE_LOCK_TIMEOUT_S
    elif backend.startswith("postgres"):
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    crash_safety: dict[str, object] = {}
    if heartbeat:
        interval = heartbeat_interval()
        crash_safety = {"heartbeat_interval": interval, "grace_period": 3 * interval}
    try:
        with warnings.catch_warnings():  # Optuna calls the heartbeat settings experimental
            warnings.simplefilter("ignore")
            if heartbeat:
                crash_safety["heartbeat_stale_trial_callback"] = (
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
                )
            return optuna.storages.RDBStorage(
                target.url, engine_kwargs={"connect_args": connect_args}, **crash_safety
            )
    except NoSuchModuleError:
        raise UsageError(
            f"{target.origin}: {target.url!r} names an unknown database kind "
            f"{backend!r}; allowed: sqlite:///file.db, postgresql://..., any "
            "SQLAlchemy URL"
        ) from None
    except ModuleNotFoundError as e:
        raise UsageError(
            f"{target.origin}: {backend} needs the Python package {e.name!r}, "
            f"which is not installed; pip install {e.name}"
        ) from None
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise UsageError(f"{target.origin}: cannot open {target.url!r}: {reason}") from None
    except RuntimeError as e:  # Optuna's schema-version check
        raise UsageError(f"{target.origin}: {e}".replace("\n", " ")) from None
