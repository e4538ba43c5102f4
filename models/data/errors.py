"""The error a bad or missing dataset file ends in: one line, the cache left unchanged."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset file is missing, unreachable, corrupt or malformed; the message names it."""
