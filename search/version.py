"""hpsearch's version, as installed (a module of its own, so that the modules that store or
print it need not import the package root, which imports the API and everything below it)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version

try:
    VERSION = version("hpsearch")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0+unknown"
