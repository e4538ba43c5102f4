"""Reading a JSON file a user hands to hpsearch (an export to retrain or to warm-start from).

The file may be anything: a symlink to /dev/zero, a FIFO, a gigabyte of digits, an integer of
5,000 digits, lists nested 100,000 deep. It is read only if it is a regular file, at most
MAX_BYTES of it, and whatever fails to parse ends in one UsageError line naming the file.
"""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError

MAX_BYTES = 64 * 2**20  # an export of thousands of configurations is a few MB


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, key: str, allowed: str) -> Any:
    """The parsed file; UsageError `key: path: what went wrong; allowed` otherwise.

    NaN, Infinity and numbers too large for a float are refused: no result hpsearch stores
    can be one of them. So is an object with a key twice (which one counts is ambiguous).
    """
    where = f"{key}: {path}" if key else str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file; {allowed}") from None
    except OSError as e:
        raise UsageError(f"{where}: cannot be read: {e.strerror}; {allowed}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{where}: not a regular file (a device, FIFO or folder); {allowed}")
    if info.st_size > MAX_BYTES:
        raise UsageError(
            f"{where}: {info.st_size:,} bytes, over the {MAX_BYTES:,} an export can be; {allowed}"
        )
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise UsageError(f"{where}: over {MAX_BYTES:,} bytes; {allowed}")
        doc = json.loads(
            raw.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except UsageError:
        raise
    except OSError as e:
        raise UsageError(f"{where}: cannot be read: {e.strerror}; {allowed}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{where}: not UTF-8 text ({e.reason}); {allowed}") from None
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply to be an export; {allowed}") from None
    except ValueError as e:  # JSONDecodeError, NaN/Infinity, an integer of thousands of digits
        message = str(e).splitlines()[0]
        raise UsageError(f"{where}: not a JSON file ({message}); {allowed}") from None
    return doc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: JSON parsers disagree on which of two equal
    keys wins (Python's keeps the last), so an export holding both is refused."""
    doc = dict(pairs)
    if len(doc) < len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return doc


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value
