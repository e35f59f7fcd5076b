"""Every third-party module that ``src/driftwatch`` imports comes from a distribution that
pyproject.toml declares (a direct import must not arrive only transitively)."""

from __future__ import annotations

import ast
import os
import re
import sys
import tomllib
from importlib.metadata import distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _imports() -> dict[str, Path]:
    """Full module names imported by the package (``from a import b`` may import the
    submodule ``a.b``: both are candidates, the longest that exists is resolved)."""
    found: dict[str, Path] = {}
    for path in sorted((ROOT / "src" / "driftwatch").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in sys.stdlib_module_names | {"driftwatch"}:
                    found.setdefault(name, path)
    return found


def _module_file(module: str) -> tuple[Path, str] | None:
    """The sys.path entry and relative file that define ``module`` or its closest
    existing parent, found without importing anything (litellm or ray take seconds)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        for entry in map(Path, sys.path):
            base = entry.joinpath(*parts[:end])
            candidates = [base.with_suffix(".py"), base / "__init__.py"]
            if base.parent.is_dir():
                candidates += base.parent.glob(f"{parts[end - 1]}.*.so")
            for candidate in candidates:
                if candidate.is_file():
                    return entry, candidate.relative_to(entry).as_posix()
    return None


def _owners() -> dict[str, str]:
    """Installed file (relative to site-packages) → the distribution that installed it."""
    owners = {}
    for dist in distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        for file in dist.files or ():
            owners[file.as_posix()] = name
    return owners


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra != "test":
            requirements += items
    return {re.split(r"[\s\[<>=!~;]", item, maxsplit=1)[0].lower().replace("_", "-")
            for item in requirements}


def _in_uninstalled_extra(module: str) -> bool:
    """``module`` belongs to a requirement of an optional extra other than ``test`` (a
    distribution named like it: ``llama_cpp`` → ``llama-cpp-python``). Under CI every
    extra is installed, so this is never consulted there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    top = module.split(".", maxsplit=1)[0].lower().replace("_", "-")
    return any(
        re.split(r"[\s\[<>=!~;]", item, maxsplit=1)[0].lower().replace("_", "-").startswith(top)
        for extra, items in project["optional-dependencies"].items() if extra != "test"
        for item in items)


def test_every_direct_import_is_declared() -> None:
    owners, declared = _owners(), _declared()
    undeclared = {}
    for module, where in _imports().items():
        found = _module_file(module)
        if found is None and not os.environ.get("CI") and _in_uninstalled_extra(module):
            continue  # e.g. llama_cpp of the [local] extra, which the test extra leaves out
        assert found is not None, f"{module} (imported in {where}) is not installed"
        entry, file = found
        if entry.resolve() == (ROOT / "src").resolve():
            continue
        owner = owners.get(file)
        assert owner is not None, f"no installed distribution owns {module} ({entry / file})"
        if owner not in declared:
            undeclared[module.rsplit(".", 1)[0]] = owner
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
