"""Rules of the codebase that a change could quietly break."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = "../" + "shared"  # the workplace's folder beside the repository, not part of it
SOURCES = [
    p for d in ("search", "models", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")
]


def _imports_at_run_time(path: Path, package: str) -> set[str]:
    """Modules of `package` this file imports, anywhere but under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.module.startswith(package + "."):
                found.add(node.module.split(".")[1])

    Visitor().visit(ast.parse(path.read_text()))
    return found


def test_no_import_circle_inside_search():
    graph = {p.stem: _imports_at_run_time(p, "search") for p in (ROOT / "search").glob("*.py")}
    circles = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                circles.append(" -> ".join([*path, start]))
            elif nxt not in path:
                walk(start, nxt, [*path, nxt])

    for module in graph:
        walk(module, module, [module])
    assert circles == []


def test_the_formatter_decides_and_comments_stay_inside_the_repository():
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            where = f"{path.relative_to(ROOT)}:{number}"
            # A layout kept by hand says why: "# fmt: skip (reason)".
            assert not re.search(r"#\s*fmt:\s*(skip|off)\s*$", line), where
            assert OUTSIDE not in line, where


def test_benchmarks_import_what_exists():
    """Benchmarks run by hand, not in the suite: their imports must follow the code."""
    import importlib

    for path in (ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in ("search", "models"):
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), (
                            f"{path.name}: {node.module}.{alias.name}"
                        )
