"""Function-level imports in src/driftwatch and whether each says why it is there."""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "driftwatch"
MODULE_REASON = "# function-level imports:"  # one reason for every lazy import of a module


@dataclass(frozen=True)
class LazyImport:
    path: Path
    line: int
    text: str


def _comments(source: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                lines.add(getattr(child, "lineno", 0))
    return lines


def lazy_imports(path: Path) -> list[tuple[ast.stmt, bool]]:
    """Every import inside a function of ``path``, with whether a reason comes with it: a
    comment on one of its lines, on the line just above its block of imports, or the
    module's ``# function-level imports:`` line."""
    source = path.read_text()
    tree = ast.parse(source)
    comments = _comments(source)
    module_reason = any(text.startswith(MODULE_REASON) for text in comments.values())
    skip = _type_checking_lines(tree)
    out: list[tuple[ast.stmt, bool]] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in skip:
                continue
            out.append((node, module_reason or _has_reason(node, function, comments)))
    return out


def _has_reason(node: ast.stmt, function: ast.AST, comments: dict[int, str]) -> bool:
    end = node.end_lineno or node.lineno
    if any(line in comments for line in range(node.lineno, end + 1)):
        return True
    # walk up the block of imports this one belongs to; a comment above it covers all
    imports = {
        n.lineno: (n.end_lineno or n.lineno)
        for n in ast.walk(function)
        if isinstance(n, ast.Import | ast.ImportFrom)
    }
    ends = {last: first for first, last in imports.items()}
    line = node.lineno - 1
    while True:
        if line in comments:
            return True
        if line in ends:
            first = ends[line]
            if any(n in comments for n in range(first, line + 1)):
                return True
            line = first - 1
            continue
        return False


def unexplained() -> list[LazyImport]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node, explained in lazy_imports(path):
            if not explained:
                found.append(LazyImport(path.relative_to(SRC.parent), node.lineno,
                                        ast.unparse(node)))
    return found


if __name__ == "__main__":
    for item in unexplained():
        print(f"{item.path}:{item.line}: {item.text}")
