"""Detection in the importer registry: the highest score wins, a tie at the top is
ambiguous (one line naming the matches and the formats tried), a detector that raises
counts as "no". The importers here claim only files with their own magic first line, so
they stay registered for the session without touching other tests' files."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwatch.core.errors import NotFoundError, UsageError
from driftwatch.core.importer import (
    KEYS_MATCH,
    SHAPE_MATCHES,
    ImportedRun,
    detect_importer,
    get_importer,
    importer,
    registered_importers,
)


class _Toy:
    magic = ""
    score = KEYS_MATCH

    def detect(self, path: Path, head: str) -> float:
        return self.score if head.startswith(self.magic) else 0.0

    def load(self, path: Path, *, scenario_id: str | None = None,
             model: str | None = None) -> list[ImportedRun]:
        return []


@importer("toy-twice-a")
class _TwiceA(_Toy):
    magic = "#toy-twice"


@importer("toy-twice-b")
class _TwiceB(_Toy):
    magic = "#toy-twice"


@importer("toy-sure")
class _Sure(_Toy):
    magic = "#toy-maybe"


@importer("toy-maybe")
class _Maybe(_Toy):
    magic = "#toy-maybe"
    score = SHAPE_MATCHES


@importer("toy-broken")
class _Broken(_Toy):
    def detect(self, path: Path, head: str) -> float:
        if head.startswith("#toy-broken"):
            raise RuntimeError("detector bug")
        return 0.0


def _file(tmp_path: Path, first_line: str) -> Path:
    path = tmp_path / "runs.toy"
    path.write_text(f"{first_line}\n", encoding="utf-8")
    return path


def test_a_tie_at_the_top_is_ambiguous_and_names_the_matches(tmp_path: Path) -> None:
    path = _file(tmp_path, "#toy-twice")
    tried = ", ".join(sorted(registered_importers()))
    with pytest.raises(UsageError) as caught:
        detect_importer(path)
    assert str(caught.value) == (f"{path}: ambiguous format (matches toy-twice-a, toy-twice-b; "
                                 f"tried {tried})")


def test_the_highest_score_wins(tmp_path: Path) -> None:
    assert detect_importer(_file(tmp_path, "#toy-maybe")).name == "toy-sure"


def test_a_detector_that_raises_counts_as_no(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown format"):
        detect_importer(_file(tmp_path, "#toy-broken"))


def test_an_unreadable_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        detect_importer(tmp_path)


def test_an_importer_by_name_gets_its_registered_name() -> None:
    assert get_importer("toy-sure").name == "toy-sure"
    with pytest.raises(NotFoundError, match=r"unknown importer 'nope' \(known: .*toy-sure"):
        get_importer("nope")
