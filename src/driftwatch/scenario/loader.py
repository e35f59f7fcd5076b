"""Finding and loading scenarios: built-in ids, the working directory's ``scenarios/``,
or a path to a YAML file."""

from __future__ import annotations

from pathlib import Path

from driftwatch.core.errors import NotFoundError, SpecError
from driftwatch.core.resources import builtin_dir
from driftwatch.core.yamlfile import load_model
from driftwatch.scenario.spec import Scenario


def scenario_dirs() -> list[Path]:
    """Built-in first, then ``./scenarios`` (user scenarios may not shadow built-ins)."""
    dirs = []
    builtin = builtin_dir("scenarios")
    if builtin is not None:
        dirs.append(builtin)
    local = Path.cwd() / "scenarios"
    if local.is_dir() and (builtin is None or local.resolve() != builtin.resolve()):
        dirs.append(local)
    return dirs


def discover() -> dict[str, Path]:
    """Scenario id → file. The id is the file's stem; it must match the ``id`` field."""
    found: dict[str, Path] = {}
    for directory in scenario_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def load_scenario_file(path: str | Path) -> Scenario:
    return load_model(Scenario, path)


def load_scenario(id_or_path: str | Path) -> Scenario:
    """A built-in/local scenario id, or a path to a YAML file."""
    text = str(id_or_path)
    candidate = Path(text)
    if text.endswith((".yaml", ".yml")) or candidate.is_file():
        if not candidate.is_file():
            raise SpecError(text, None, "", "file not found")
        return load_scenario_file(candidate)
    known = discover()
    if text not in known:
        names = ", ".join(sorted(known)) or "none"
        raise NotFoundError(f"unknown scenario {text!r} (known: {names})")
    scenario = load_scenario_file(known[text])
    if scenario.id != text:
        raise SpecError(str(known[text]), 1, "id", f"must match the file name {text!r}")
    return scenario


def list_scenarios() -> list[Scenario]:
    return [load_scenario_file(path) for path in discover().values()]
