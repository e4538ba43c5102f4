"""hpsearch: hyperparameter search for small image classifiers (study files -> Optuna).

The Python API (search/api.py) is loaded on first use, so that `hpsearch --help` stays quick:
`search.run`, `search.load`, `search.figures`, `search.report`, `search.export`,
`search.retrain`, `search.confirm`, and `search.UsageError` (what bad input raises).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("run", "load", "figures", "report", "export", "retrain", "confirm")
__all__ = ["UsageError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from search import api

        return getattr(api, name)
    if name == "UsageError":
        from search.errors import UsageError

        return UsageError
    raise AttributeError(f"module 'search' has no attribute {name!r}")
