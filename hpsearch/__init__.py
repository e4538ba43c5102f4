"""hpsearch's Python API under the product's own name: `import hpsearch` gives the functions
`import search` does (run, load, figures, report, export, retrain, confirm, UsageError).

Use it where a folder may hold its own `search.py` or `models.py` (a notebook's folder comes
first on `sys.path`): `import search` would then load the user's file before any of hpsearch's
code runs, and fail later with an AttributeError; `import hpsearch` names the clash instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

PACKAGES = ("search", "models")
_HOME = Path(__file__).resolve().parent.parent


def check_packages() -> None:
    """Raise ImportError naming the file when `search` or `models` would be found somewhere
    other than beside this package (which is where pip puts all three)."""
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        if origin is not None and _HOME not in origin.parents:
            raise ImportError(
                f"{origin} shadows hpsearch's package {name!r}: Python finds it first (it is "
                "in the current folder or on sys.path). Rename it, or work from another folder"
            )


check_packages()


def __getattr__(name: str) -> Any:
    import search

    if name in search.__all__:
        return getattr(search, name)
    raise AttributeError(f"module 'hpsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    import search

    return sorted([*globals(), *search.__all__])
