"""The one exception type that the CLI turns into a one-line message and exit code 2, and the
recognition of a write that a read-only database refused (which becomes one)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a study file, a flag, a storage URL, a study name.

    The message is complete on its own: it names the file, key or flag, says what was wrong and
    what is allowed. The CLI prints it as one line, without a traceback, and exits with 2.
    """


class TrainingEnded(Exception):
    """A command's training (confirm, retrain) ended its process: one line naming how and
    where (the user's file and method); the CLI exits with 1, having written nothing."""


def _sqlite_file(url: str | None):
    """The file of an SQLite URL, else None."""
    if not url:
        return None
    from pathlib import Path

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL: nothing to tell
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


_READ_ONLY = ("readonly database", "read-only", "unable to open database file")


def read_only_problem(error: BaseException) -> str | None:
    """The driver's words when a write failed because the database or its folder is read-only."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(getattr(error, "orig", None) or error).strip().splitlines()
        if text and any(words in text[0].lower() for words in _READ_ONLY):
            return text[0]
        error = error.__cause__ or error.__context__
    return None


def read_only_error(shown: str, problem: str, url: str | None = None) -> UsageError:
    """The line for a refused write; `url`, when given, tells a deleted SQLite file apart (its
    writes are refused as read-only too)."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        return UsageError(
            f"storage: {shown}: the database file was deleted or moved while hpsearch had it "
            f"open ({problem}); nothing more could be written to it. Put it back and run the "
            "same command again to resume, or run again to start a new database there"
        )
    return UsageError(
        f"storage: cannot write to {shown} ({problem}): the database file or its folder is "
        "read-only (SQLite writes a journal beside the file); make both writable, or copy "
        "the database to a folder you can write to"
    )
