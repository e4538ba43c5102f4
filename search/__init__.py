"""hpsearch: hyperparameter search for small image classifiers (study files -> Optuna).

The Python API (`hpsearch.api`): `run`, `load`, `figures`, `report`, `export`, `retrain`,
`confirm`, and `UsageError` (what bad input raises). It imports nothing heavy (numpy, optuna,
torch and plotly load inside the functions), so `hpsearch --help` stays quick.

In the repository the package's modules live in `search/` and its models in `models/`
(`hpsearch.models`); the wheel installs them under the one import name `hpsearch`.
"""

from __future__ import annotations

from hpsearch.api import confirm
from hpsearch.api import export
from hpsearch.api import figures
from hpsearch.api import load
from hpsearch.api import report
from hpsearch.api import retrain
from hpsearch.api import run
from hpsearch.errors import UsageError
from hpsearch.version import VERSION as __version__

__all__ = [
    "UsageError",
    "__version__",
    "confirm",
    "export",
    "figures",
    "load",
    "report",
    "retrain",
    "run",
]
