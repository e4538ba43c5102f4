"""How a command ends: its exit code, and one line on stderr when it did not succeed.

0 success, 2 bad input (one line naming the file, key or flag), 1 an internal error, 128 +
signal number when interrupted. `debug` adds the traceback. Used by the CLI and by the worker
processes of `run --workers` (search/spawned.py).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from hpsearch.errors import UsageError


def guarded(command: Callable[[], int], *, debug: bool, storage: str | None = None) -> int:
    """Run `command` and turn whatever it raises into one line and an exit code.

    `storage`: the --storage URL given, for the line about a read-only database.
    """
    try:
        return command()
    except BrokenPipeError:
        # `hpsearch show x | head`: the reader has gone; stop quietly, as other CLIs do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # SIGPIPE
    except UsageError as e:
        if debug:
            traceback.print_exc()
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug in hpsearch, not bad input
        if debug:
            traceback.print_exc()
        return _unexpected(e, debug, storage)


def _unexpected(e: Exception, debug: bool, storage: str | None) -> int:
    from hpsearch.errors import TrainingEnded
    from hpsearch.errors import read_only_error
    from hpsearch.errors import read_only_problem
    from hpsearch.models.usercode import UserCodeError
    from hpsearch.storage import resolve_url

    if isinstance(e, UserCodeError):  # the user's model failed outside a trial (retrain)
        print(f"your code: {e}", file=sys.stderr)
        return 2
    if isinstance(e, TrainingEnded):  # its training process ended (confirm, retrain)
        print(str(e), file=sys.stderr)
        return 1
    problem = read_only_problem(e)
    if problem is not None:  # a write refused by a read-only database file or folder
        target = resolve_url(storage)
        print(read_only_error(target.shown, problem, target.url), file=sys.stderr)
        return 2
    if not debug:
        print(
            f"hpsearch: internal error: {type(e).__name__}: {e} (run again with --debug "
            "for the traceback, and please report it)",
            file=sys.stderr,
        )
    return 1
