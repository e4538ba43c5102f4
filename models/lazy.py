"""Registries that name classes by "module:Name" and import them on first use, so that
`hpsearch --help` and study-file checks never load torch, scipy or a sampler they do not use."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(target: str) -> Any:
    """The object `target` ("package.module:Name") names, its module imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
