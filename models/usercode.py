"""The boundary around a user's code: whatever it does ends as one line naming its file and line.

A user's class, scikit-learn estimator or network function runs inside hpsearch's loop, so
every call into it goes through `calling()`:

- its prints go to stderr: hpsearch's stdout may be JSON (`--format json`) or a table;
- whatever it raises (an exception, `sys.exit()`, `GeneratorExit`, a `KeyboardInterrupt` of its
  own) becomes a `UserCodeError` whose message names the user's file, line and error; the
  objective fails that trial with it and the run goes on, as a diverged trial does;
- hpsearch's own interrupts (`Interrupted`: Ctrl-C or SIGTERM caught by the search) pass through.

`check_*` functions turn impossible return values into the same error, saying what came back
and what was expected, so that nothing impossible is ever stored as a result.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.models import whereabouts

# Files of hpsearch itself (its modules, and its models, wherever the package maps them): a
# frame in them is never "the user's line".
_OURS = tuple(
    str(Path(spec.origin).resolve().parent) + os.sep
    for spec in (importlib.util.find_spec("hpsearch"), importlib.util.find_spec("hpsearch.models"))
    if spec is not None and spec.origin
)
_MESSAGE_CHARS = 300


class UserCodeError(Exception):
    """The user's code failed or returned something impossible; one line, naming where."""


class Interrupted(KeyboardInterrupt):
    """hpsearch's own interrupt (Ctrl-C, SIGTERM), raised by search.objective.Interrupts.

    A plain KeyboardInterrupt raised while hpsearch handles the signals came from the user's
    code, and is that trial's failure, not a request to stop."""


def _message(error: BaseException) -> str:
    """`Type: first line of the message`, never empty."""
    name = type(error).__name__
    if isinstance(error, SystemExit):
        return f"SystemExit: the code called sys.exit({error.code!r}); only this trial ends"
    text = error.msg if isinstance(error, SyntaxError) else str(error)
    lines = text.strip().splitlines()
    text = lines[0] if lines else "(no message)"
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS] + "..."
    return f"{name}: {text}"


@functools.lru_cache(maxsize=256)
def _is_ours(filename: str) -> bool:
    """Whether a traceback's file is hpsearch's (an editable install may name it by a link)."""
    real = os.path.realpath(filename)
    return real.startswith(_OURS) or real == os.path.realpath(contextlib.__file__)


def location(error: BaseException, path: Path | None = None) -> str | None:
    """`file.py:12` of the deepest frame of the traceback in the user's file `path` (or, with
    no path, the deepest frame outside hpsearch); None when there is no such frame."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}"
    frames = traceback.extract_tb(error.__traceback__)
    if path is not None:
        resolved = str(Path(path).resolve())
        mine = [f for f in frames if f.filename == resolved or f.filename == str(path)]
    else:
        mine = [f for f in frames if not _is_ours(f.filename)]
    return f"{mine[-1].filename}:{mine[-1].lineno}" if mine else None


def describe(error: BaseException, path: Path | None = None, what: str = "") -> str:
    """`file.py:12 in HingeLinear.partial_fit: RuntimeError: boom`, in one line."""
    where = location(error, path) if path is not None else None
    # No frame of the user's file (a call with missing arguments fails before its first
    # line): the deepest frame outside hpsearch, else the file itself.
    where = where or location(error) or (str(path) if path is not None else None)
    head = " ".join(part for part in (where, f"in {what}" if what else "") if part)
    return f"{head}: {_message(error)}" if head else _message(error)


def _signals_are_ours() -> bool:
    """Whether hpsearch handles SIGINT now (then a plain KeyboardInterrupt is the user's)."""
    try:
        return signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    except ValueError:  # no signal handling in this interpreter
        return False


@contextlib.contextmanager
def calling(what: str, path: Path | None = None) -> Iterator[None]:
    """Run the user's code: its stdout goes to stderr, whatever it raises becomes a
    UserCodeError naming `what` (e.g. "HingeLinear.partial_fit") and the user's line."""
    before = whereabouts.enter(what or "importing it")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (UserCodeError, Interrupted):
        raise
    except KeyboardInterrupt as e:
        if not _signals_are_ours():
            raise  # a real Ctrl-C where hpsearch does not handle signals (a notebook cell)
        raise UserCodeError(describe(e, path, what)) from e
    except BaseException as e:  # noqa: B036 (sys.exit() and GeneratorExit are the user's too)
        raise UserCodeError(describe(e, path, what)) from e
    finally:
        whereabouts.leave(before)


def _shown(value: Any) -> str:
    """A returned value in a few words: its type, shape and a sample."""
    if value is None:
        return "None"
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if array.ndim == 0:
        return f"{type(value).__name__} {value!r}"[:80]
    sample = ", ".join(repr(v) for v in array.reshape(-1)[:3].tolist())
    kind = type(value).__name__
    return f"{kind} of shape {array.shape} and dtype {array.dtype} ([{sample}, ...])"


def check_labels(value: Any, n: int, classes: np.ndarray, what: str) -> np.ndarray:
    """`predict`'s answer: n labels, each one of the classes (sorted, as np.unique gives)."""
    expected = f"expected {n} labels, one per row, each one of the classes {classes.tolist()}"
    if value is None:
        raise UserCodeError(f"{what} returned None; {expected}")
    labels = np.asarray(value)
    if labels.shape != (n,):
        raise UserCodeError(f"{what} returned {_shown(value)}; {expected}")
    try:
        index = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
        known = classes[index] == labels
    except (TypeError, ValueError):  # labels of another type than the classes (strings)
        known = np.zeros(n, dtype=bool)
    if not np.all(known):
        first = labels[np.argmin(known)]
        first = first.item() if isinstance(first, np.generic) else first
        raise UserCodeError(f"{what} returned the label {first!r}; {expected}")
    return labels


def check_scores(value: Any, n: int, n_classes: int, what: str) -> np.ndarray:
    """Class scores: shape (n, n_classes), or (n,) for two classes, numbers."""
    expected = f"expected numbers of shape ({n}, {n_classes})" + (
        f" or ({n},)" if n_classes == 2 else ""
    )
    try:
        scores = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserCodeError(f"{what} returned {_shown(value)}; {expected}") from None
    ok = scores.shape == (n, n_classes) or (n_classes == 2 and scores.shape == (n,))
    if not ok:
        raise UserCodeError(f"{what} returned {_shown(value)}; {expected}")
    return scores


def check_evaluation(value: Any, what: str) -> tuple[float, float]:
    """`evaluate`'s answer: (loss, accuracy), accuracy a number in [0, 1]."""
    expected = "expected (loss, accuracy) with the accuracy in [0, 1]"
    try:
        loss, accuracy = value
        loss, accuracy = float(loss), float(accuracy)
    except (TypeError, ValueError):
        raise UserCodeError(f"{what} returned {_shown(value)}; {expected}") from None
    if not 0.0 <= accuracy <= 1.0:  # also refuses NaN
        raise UserCodeError(f"{what} returned the accuracy {accuracy!r}; {expected}")
    return loss, accuracy
