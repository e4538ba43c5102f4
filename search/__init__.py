"""hpsearch: hyperparameter search for small image classifiers (study files -> Optuna)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
