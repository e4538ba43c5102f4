"""hpsearch: hyperparameter search for small image classifiers (study files -> Optuna).

The Python API (search/api.py) is loaded on first use, so that `hpsearch --help` stays quick:
`search.run`, `search.load`, `search.figures`, `search.report`, `search.export`,
`search.retrain`, `search.confirm`, and `search.UsageError` (what bad input raises).
`import hpsearch` gives the same names, and names a user's `search.py` that would shadow this.
"""

from __future__ import annotations

from typing import Any

from hpsearch import check_packages

__version__ = "0.1.0"


# A `models.py` or `models/` of the user's (in a notebook's folder, which Python searches first)
# would stand in for hpsearch's package of that name: say so now, not with an AttributeError
# later. (A `search.py` there is loaded instead of this file: `import hpsearch` catches that.)
check_packages()

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
