"""Text output: the number format, parameter lists and tables, in one place.

Commands return values; the CLI (and the HTML report, for its numbers) formats them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any


def format_value(value: Any) -> str:
    """Floats with four significant digits (0.001773, 64, 'l2'), everything else as is."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_params(params: Mapping[str, Any]) -> str:
    """`learning_rate=0.1773, batch_size=16, reg=none`."""
    return ", ".join(f"{name}={format_value(value)}" for name, value in params.items())


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, a header row first."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
