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


def _module_name(path: Path) -> str:
    """The import name of a file of the package: search/x.py is hpsearch.x, models/x.py is
    hpsearch.models.x (pyproject.toml maps the folders into the one package)."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    parts = ["hpsearch", *parts[1:]] if parts[0] == "search" else ["hpsearch", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PACKAGE = {_module_name(p): p for d in ("search", "models") for p in (ROOT / d).rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Modules of the package this file imports, at the top or inside functions (lazily),
    anywhere but under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & set(PACKAGE)
            found.update(submodules)  # `from hpsearch import api` imports hpsearch.api
            if module in PACKAGE and len(submodules) < len(node.names):
                found.add(module)  # a name defined in the module itself

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names if alias.name in PACKAGE)

    Visitor().visit(ast.parse(path.read_text()))
    return found


def test_every_import_of_the_package_is_of_the_one_name():
    """No module of the package imports `search` or `models` as top-level names."""
    for path in PACKAGE.values():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in filter(None, names):
                assert name.split(".")[0] not in ("search", "models"), f"{path}: {name}"


def test_no_import_circle_inside_the_package():
    """Lazy imports included, and a name taken from a package's __init__ (`from hpsearch
    import __version__` in a module the package's __init__ imports, indirectly, is a circle).
    A submodule taken from its package (`from hpsearch import jobs`) is an edge to the
    submodule, not to the package."""
    graph = {name: _imports(path) - {name} for name, path in PACKAGE.items()}
    circles = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                circles.append(" -> ".join([*path, start]))
            elif nxt not in path:
                walk(start, nxt, [*path, nxt])

    for module in graph:
        walk(module, module, [module])
    assert circles == [], circles[:5]


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
                if node.module.split(".")[0] == "hpsearch":
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), (
                            f"{path.name}: {node.module}.{alias.name}"
                        )


def test_private_names_of_optuna_and_scikit_learn_stay_in_one_module():
    """Optuna's underscore names (a private module, attribute or method) only in
    search/optuna_internals.py, whose test fails on an Optuna that changes them; none of
    scikit-learn's anywhere."""
    allowed = PACKAGE["hpsearch.optuna_internals"]
    for path in PACKAGE.values():
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module:
                private = any(p.startswith("_") for p in node.module.split("."))
                private |= any(a.name.startswith("_") for a in node.names)
                if node.module.split(".")[0] == "sklearn":
                    assert not private, where
                if node.module.split(".")[0] == "optuna" and path != allowed:
                    assert not private, where
            # (AccuracyView sets its own _storage: it stands in for a study, which Optuna's
            # successive halving reads through that name; setting it reads nothing private.)
            if (
                isinstance(node, ast.Attribute)
                and path != allowed
                and isinstance(node.ctx, ast.Load)
            ):
                name = node.attr
                # `study._storage`, `trial._trial_id`, `storage._get_stale_trial_ids`, ...
                optuna_private = name in ("_storage", "_study_id", "_trial_id", "_backend")
                assert not (optuna_private or name.startswith("_get_stale")), where
                assert not (name.startswith("_") and _under_optuna(node)), where


def _under_optuna(node: ast.Attribute) -> bool:
    """`optuna.x._y`: an attribute chain rooted at the name optuna."""
    value = node.value
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id == "optuna"


def test_test_modules_share_helpers_through_helper_modules_not_each_other():
    """Shared fixtures live in conftest.py, shared helpers in modules that are not tests."""
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.rsplit(".", 1)[-1]
                assert not last.startswith("test_"), f"{path.relative_to(ROOT)}: {node.module}"


def test_no_function_over_60_lines_without_a_reason():
    """A longer function says why in a comment starting "# Over 60 lines"."""
    for path in PACKAGE.values():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = lines[node.lineno - 1 : node.end_lineno]
                if len(body) > 60:
                    assert any(line.strip().startswith("# Over 60 lines") for line in body), (
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {len(body)} lines"
                    )


def test_no_module_over_450_lines():
    for path in PACKAGE.values():
        n = len(path.read_text().splitlines())
        assert n <= 450, f"{path.relative_to(ROOT)}: {n} lines"
