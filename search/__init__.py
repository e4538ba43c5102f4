"""hpsearch: hyperparameter search for small image classifiers (study files -> Optuna).

The Python API (`hpsearch.api`): `run`, `load`, `figures`, `report`, `export`, `retrain`,
`confirm`, and `UsageError` (what bad input raises). It imports nothing heavy (numpy, optuna,
torch and plotly load inside the functions), so `hpsearch --help` stays quick.

In the repository the package's modules live in `search/` and its models in `models/`
(`hpsearch.models`); the wheel installs them under the one import name `hpsearch`.
"""

from __future__ import annotations

import warnings

# Optuna imports tqdm.auto, which in a notebook without ipywidgets warns at import that
# "IProgress" is missing; hpsearch's bars are text bars on stderr and need no widgets.
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

from hpsearch.api import confirm  # noqa: E402
from hpsearch.api import export  # noqa: E402
from hpsearch.api import figures  # noqa: E402
from hpsearch.api import load  # noqa: E402
from hpsearch.api import report  # noqa: E402
from hpsearch.api import retrain  # noqa: E402
from hpsearch.api import run  # noqa: E402
from hpsearch.errors import UsageError  # noqa: E402
from hpsearch.version import VERSION as __version__  # noqa: E402

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
