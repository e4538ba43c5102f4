"""The one exception type that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a study file, a flag, a storage URL, a study name.

    The message is complete on its own: it names the file, key or flag, says what was wrong and
    what is allowed. The CLI prints it as one line, without a traceback, and exits with 2.
    """
