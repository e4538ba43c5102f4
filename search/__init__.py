"""hpsearch: hyperparameter search for small image classifiers (study files -> Optuna).

The Python API (search/api.py) is loaded on first use, so that `hpsearch --help` stays quick:
`search.run`, `search.load`, `search.figures`, `search.report`, `search.export`,
`search.retrain`, `search.confirm`, and `search.UsageError` (what bad input raises).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def _check_not_shadowed() -> None:
    """A `models.py` or `models/` of the user's (in a notebook's folder, which Python searches
    first) would stand in for hpsearch's package of that name: say so, instead of failing
    later with an AttributeError."""
    spec = importlib.util.find_spec("models")
    ours = Path(__file__).resolve().parent.parent
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    if origin is not None and ours not in origin.parents:
        raise ImportError(
            f"{origin} shadows hpsearch's package 'models': Python finds it first (it is in "
            "the current folder or on sys.path). Rename it, or work from another folder"
        )


_check_not_shadowed()

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
