"""The README, the docs and the package's docstrings point only to files that exist
(tutorial files a reader is told to create are not references)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# a repo path: docs/x.md, bench/x.py, monitors/x.yaml, scenarios/x.yaml, or a top-level
# SOMETHING.md
REFERENCE = re.compile(
    r"(?<![\w./-])((?:docs|bench|\.ci)/[\w./-]+?\.(?:md|py)|(?:monitors|scenarios)/[\w-]+\.yaml"
    r"|[A-Z][A-Z_]+\.md|Dockerfile|pyproject\.toml)(?![\w/-])")


def _sources() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "src" / "driftwatch").rglob("*.py"))]


def _references(path: Path) -> set[str]:
    text = path.read_text()
    if path.parent.name == "docs":
        # tutorials tell the reader to save their own monitors/… and scenarios/… files
        return {ref for ref in REFERENCE.findall(text)
                if not ref.startswith(("monitors/", "scenarios/"))}
    return set(REFERENCE.findall(text))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_referenced_file_exists(path: Path) -> None:
    missing = sorted(ref for ref in _references(path) if not (ROOT / ref).exists())
    assert not missing, f"{path.relative_to(ROOT)} points to files that do not exist: {missing}"
