"""The importer contract and registry: each file format of recorded agent runs is one
class with a name, a detector and a loader.

``@importer("name")`` registers a class (see :class:`Importer`); ``driftwatch import`` and
the ``replay/*`` model find formats here, by name or by :func:`detect_importer`. The
registry sits in ``core`` because the replay model (the model layer) reads recordings and
must not import :mod:`driftwatch.importers`, a layer above it: the built-in importers
register themselves when that package is imported, and it is reached from below through
driftwatch's own entry point in the ``driftwatch.importers`` group (pyproject.toml), where
third-party importers are found as well (loaded once, lazily; see
:mod:`driftwatch.core.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from driftwatch.core.conversation import Conversation
from driftwatch.core.errors import UsageError
from driftwatch.core.logging import get_logger
from driftwatch.core.records import RunInfo, SpanRecord
from driftwatch.core.registry import Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "HEAD_BYTES",
    "KEYS_MATCH",
    "SHAPE_MATCHES",
    "ImportFormatError",
    "ImportedRun",
    "Importer",
    "detect_importer",
    "get_importer",
    "importer",
    "read_conversations",
    "registered_importers",
]

F = TypeVar("F", bound=Callable[..., Any])

ENTRY_POINT_GROUP: Final = "driftwatch.importers"
HEAD_BYTES: Final = 64 * 1024  # what detection sees: enough for the first record's keys
# the two usual detector answers (0 is "not this format"): the first record has the
# format's keys; only the file's shape fits (e.g. a JSON list), so a malformed file of
# the format still reaches its loader and gets that loader's precise error
KEYS_MATCH: Final = 1.0
SHAPE_MATCHES: Final = 0.1

log = get_logger(__name__)
_importers = Registry("importer", ENTRY_POINT_GROUP)


class ImportFormatError(UsageError):
    """A record of an import file is malformed: ``path: record N: field: problem``.

    ``record`` is 1-based (the item of a JSON list, the line of a JSON-lines file)."""

    def __init__(self, path: str, record: int | None, field: str, problem: str) -> None:
        self.path, self.record, self.field, self.problem = path, record, field, problem
        where = f"{path}: record {record}" if record is not None else path
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True)
class ImportedRun:
    """A run ready to store: its row and its spans in end order (children first, the root
    last), the order the live tracer hands them to the monitors."""

    info: RunInfo
    spans: list[SpanRecord]


class Importer(Protocol):
    """One file format. ``name`` is the registered name (``@importer`` sets it).

    ``detect`` says how surely a file is in this format, from ``head``, its first
    :data:`HEAD_BYTES` bytes decoded as UTF-8 (a record may be cut off at the end): 0 for
    no, :data:`KEYS_MATCH` when the first record has the format's keys,
    :data:`SHAPE_MATCHES` when only the file's shape fits. Detection picks the importer
    with the highest score; a tie at the top is ambiguous. It must be cheap, must not
    read the file itself and should not raise (an exception counts as 0 and is logged).

    ``load`` reads and checks the whole file and returns its runs: :class:`Conversation`
    objects (chat recordings; these can also be replayed) or :class:`ImportedRun` objects
    (spans as they are). ``scenario_id`` and ``model``, when given, override the file's own
    values; a format whose records name their own may refuse them with a
    :class:`UsageError`. A bad record raises :class:`ImportFormatError` naming it; nothing
    is written anywhere. Called from any thread, once per file.
    """

    name: str

    def detect(self, path: Path, head: str) -> float: ...

    def load(self, path: Path, *, scenario_id: str | None = None,
             model: str | None = None) -> Sequence[Conversation | ImportedRun]: ...


def importer(name: str) -> Callable[[F], F]:
    """Class decorator: ``@importer("tau-bench")``."""
    return _importers.decorator(name)


def registered_importers() -> dict[str, Callable[..., Importer]]:
    """Name → importer class, built-in and entry-point importers alike."""
    return _importers.entries()


def get_importer(name: str) -> Importer:
    """The importer registered as ``name``; unknown names raise :class:`NotFoundError`
    listing the known ones."""
    found: Importer = _importers.create(name, {})
    return found


def detect_importer(path: Path) -> Importer:
    """The registered importer whose detector scores ``path`` highest. Raises
    :class:`UsageError` (one line naming the file and the formats tried) when none scores
    above 0 or several tie; an unreadable file raises :class:`ImportFormatError`."""
    try:
        with path.open("rb") as file:
            head = file.read(HEAD_BYTES).decode("utf-8", errors="ignore")
    except OSError as exc:
        raise ImportFormatError(str(path), None, "", f"cannot read: {exc}") from None
    candidates = {name: factory() for name, factory in sorted(registered_importers().items())}
    scores = {name: _score(name, found, path, head) for name, found in candidates.items()}
    best = max(scores.values(), default=0.0)
    matches = [name for name, score in scores.items() if score == best]
    tried = ", ".join(candidates) or "none registered"
    if best <= 0:
        raise UsageError(f"{path}: unknown format (tried {tried})")
    if len(matches) > 1:
        raise UsageError(f"{path}: ambiguous format (matches {', '.join(matches)}; "
                         f"tried {tried})")
    return candidates[matches[0]]


def _score(name: str, found: Importer, path: Path, head: str) -> float:
    try:
        return float(found.detect(path, head))
    except Exception as exc:  # a broken plugin's detector must not stop the others
        log.warning("importer detection failed", importer=name, path=str(path), error=str(exc))
        return 0.0


def read_conversations(path: Path) -> list[Conversation]:
    """The conversations of a recording, its format detected (what ``replay/*`` reads).
    A format that holds spans rather than conversations, or a file without any, is
    refused with a :class:`UsageError`."""
    found = detect_importer(path)
    loaded = found.load(path)
    conversations = [item for item in loaded if isinstance(item, Conversation)]
    if len(conversations) != len(loaded):
        raise UsageError(f"{path}: {found.name} files hold spans, not conversations; "
                         "they can be imported but not replayed")
    if not conversations:
        raise UsageError(f"{path}: no conversations")
    return conversations
