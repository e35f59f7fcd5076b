"""The layering contract ([tool.importlinter] in pyproject.toml, docs/architecture.md) holds,
it fails on a new back-edge, and every function-level import says why it is there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from import_scan import SRC, lazy_imports, unexplained

ROOT = Path(__file__).parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_the_layering_contract_holds() -> None:
    result = _lint(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The package and its contract, copied, so a test can add a violation to the copy."""
    shutil.copytree(SRC, tmp_path / "src" / "driftwatch",
                    ignore=shutil.ignore_patterns("__pycache__", "_builtin"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_new_back_edge_breaks_the_contract(copy: Path) -> None:
    assert _lint(copy, copy / "src").returncode == 0  # the copy is clean before the edit
    # a back-edge hidden in a function, the way cycles used to be hidden
    _append(copy / "src/driftwatch/core/clock.py",
            "\n\ndef _back_edge() -> None:\n    from driftwatch.cli import app  # noqa\n")
    result = _lint(copy, copy / "src")
    assert result.returncode != 0
    assert "driftwatch.core is not allowed to import driftwatch.cli" in result.stdout
    assert "driftwatch.core.clock -> driftwatch.cli" in result.stdout


def test_duckdb_outside_the_store_breaks_the_contract(copy: Path) -> None:
    _append(copy / "src/driftwatch/monitor/base.py", "\nimport duckdb  # noqa\n")
    result = _lint(copy, copy / "src")
    assert result.returncode != 0
    assert "only the store imports duckdb BROKEN" in result.stdout


def test_every_function_level_import_says_why() -> None:
    missing = [f"{item.path}:{item.line}: {item.text}" for item in unexplained()]
    assert not missing, "function-level imports without a reason:\n" + "\n".join(missing)


def test_the_scan_sees_an_unexplained_import_and_a_reason(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "import os\n\n"
        "def bare():\n    import json\n\n"
        "def commented():\n    # start-up: heavy\n    import csv\n    import decimal\n\n"
        "def inline():\n    import uuid  # optional dependency\n"
    )
    found = {node.lineno: explained for node, explained in lazy_imports(module)}
    assert found == {4: False, 8: True, 9: True, 12: True}
    module.write_text("# function-level imports: start-up\n" + module.read_text())
    assert all(explained for _, explained in lazy_imports(module))


def _cycles(graph: object) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):  # type: ignore[attr-defined]
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]  # type: ignore[attr-defined]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(
                        graph.find_modules_directly_imported_by(child)))))  # type: ignore[attr-defined]
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    """No import cycle at all, inside packages too (every import, functions included)."""
    import grimp  # import-linter's graph builder

    assert _cycles(grimp.build_graph("driftwatch")) == []


def test_the_cycle_check_sees_a_cycle(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import grimp

    _append(copy / "src/driftwatch/core/clock.py",
            "\n\ndef _back() -> None:\n    from driftwatch.core import ids  # noqa\n")
    _append(copy / "src/driftwatch/core/ids.py",
            "\n\ndef _forth() -> None:\n    from driftwatch.core import clock  # noqa\n")
    monkeypatch.syspath_prepend(str(copy / "src"))
    for name in [m for m in sys.modules if m == "driftwatch" or m.startswith("driftwatch.")]:
        monkeypatch.delitem(sys.modules, name)
    cycles = grimp.build_graph("driftwatch", cache_dir=None)
    assert ["driftwatch.core.clock", "driftwatch.core.ids"] in _cycles(cycles)
