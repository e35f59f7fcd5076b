"""report/'s modules import each other without a cycle, and the renderers depend only on
the report's contents: read statically from the source, counting every import (at module
level, under ``TYPE_CHECKING`` and inside functions, where a cycle hides)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import driftwatch.report

PACKAGE = "driftwatch.report"
SOURCE = Path(driftwatch.report.__file__).parent

RENDERERS = {"html", "markdown", "charts"}
"""Functions of the report's contents that return text (or SVG)."""

RENDERERS_MAY_IMPORT = RENDERERS | {"contents", "numbers"}
"""The contents (plain data) and the number formatting both renderers share."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def _imported(tree: ast.Module, package: tuple[str, ...], modules: set[str]) -> set[str]:
    """The report modules a module imports, by their names inside the package (the
    package's own ``__init__`` as ``"__init__"``); ``package`` is where the module sits
    (``()`` for report/ itself), for relative imports."""

    def inner(dotted: str) -> str | None:
        if dotted == PACKAGE:
            return "__init__"
        name = dotted.removeprefix(PACKAGE + ".")
        return name if dotted.startswith(PACKAGE + ".") and name in modules else None

    found: set[str | None] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(inner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                stem = ".".join([PACKAGE, *base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            for alias in node.names:  # a submodule by name, else a name from the stem
                found.add(inner(f"{stem}.{alias.name}") or inner(stem))
    return {name for name in found if name is not None}


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path) for path in SOURCE.rglob("*.py")}
    graph = {}
    for path in sorted(SOURCE.rglob("*.py")):
        name = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = _imported(tree, path.relative_to(SOURCE).parent.parts, modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, str] = {}  # "open" while on the stack, "done" after
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_sees_every_kind_of_import_and_finds_a_hidden_cycle() -> None:
    """The helpers on a hand-made package: a function-level and a TYPE_CHECKING import
    close a cycle that module-level imports alone would not show."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from driftwatch.report.numbers import percent\n"
        "if TYPE_CHECKING:\n"
        "    from driftwatch.report.batch import BatchReport\n"
        "def render() -> None:\n"
        "    from . import contents\n"
        "    import driftwatch.report.summary\n"
    )
    modules = {"__init__", "batch", "contents", "html", "numbers", "summary"}
    assert _imported(ast.parse(source), (), modules) == {"numbers", "batch", "contents",
                                                          "summary"}
    assert find_cycle({"batch": {"html"}, "html": {"numbers", "batch"}, "numbers": set()}) == [
        "batch", "html", "batch"]
    assert find_cycle({"batch": {"html"}, "html": {"numbers"}, "numbers": set()}) is None


def test_report_modules_import_each_other_without_a_cycle() -> None:
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
def test_renderers_import_only_the_contents_and_each_other(renderer: str) -> None:
    """A renderer is a function of :mod:`driftwatch.report.contents`: it never reaches
    for a builder (and through it the store)."""
    assert import_graph()[renderer] <= RENDERERS_MAY_IMPORT


def test_no_report_module_imports_driftwatch_inside_a_function() -> None:
    """Late imports are how the old cycle hid; report/ has no optional dependency of its
    own that would need one."""
    late = []
    for path in sorted(SOURCE.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = ["driftwatch" if node.level else node.module or ""]
                else:
                    continue
                if any(name.split(".")[0] == "driftwatch" for name in names):
                    late.append(f"{path.name}:{node.lineno}")
    assert late == []
