"""OpenAI chat conversations as JSON lines: one ``{"messages": [...], ...}`` per line.

Optional keys per line: ``id`` (the run id; default ``<file stem>-<line>``), ``model``,
``scenario_id``, ``seed``, and ``metadata`` / ``labels`` (objects whose scalar values become
run attributes). See ``docs/importers.md``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from driftwatch.core import jsonfile
from driftwatch.core.conversation import Conversation
from driftwatch.core.importer import KEYS_MATCH, SHAPE_MATCHES, ImportFormatError, importer
from driftwatch.importers.conversation import check_messages, scalar_items

__all__ = ["OpenAIJsonlImporter", "read_openai_jsonl"]

DEFAULT_SCENARIO: Final = "imported"
DEFAULT_MODEL: Final = "unknown/unknown"
# the first line is an object with a messages key (a key inside a JSON string is escaped)
_FIRST_LINE: Final = re.compile(r'\s*\{[^\n]*?"messages"\s*:')


@importer("openai-jsonl")
class OpenAIJsonlImporter:
    """OpenAI chat conversations, one ``{"messages": [...], ...}`` object per line."""

    def detect(self, path: Path, head: str) -> float:
        """Also any other JSON-lines file of objects (``otlp-json`` outscores it on its
        own files), so a malformed chat line gets this importer's error for its line."""
        if _FIRST_LINE.match(head):
            return KEYS_MATCH
        return SHAPE_MATCHES if head.lstrip().startswith("{") else 0.0

    def load(self, path: Path, *, scenario_id: str | None = None,
             model: str | None = None) -> list[Conversation]:
        return read_openai_jsonl(path, scenario_id=scenario_id, model=model)


def read_openai_jsonl(path: Path, *, scenario_id: str | None = None,
                      model: str | None = None) -> list[Conversation]:
    """Parse and check every line (blank lines skipped); raises
    :class:`ImportFormatError` naming the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(str(path), None, "", f"cannot read: {exc}") from None
    batch_id = f"import-openai-jsonl-{path.stem}"
    out: list[Conversation] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            conversation = _conversation(line, number, path.stem, batch_id, scenario_id, model)
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            raise ImportFormatError(str(path), number, field, problem) from None
        if conversation.run_id in seen:
            first = seen[conversation.run_id]
            raise ImportFormatError(str(path), number, "id",
                                    f"{conversation.run_id!r} repeats record {first}")
        seen[conversation.run_id] = number
        out.append(conversation)
    if not out:
        raise ImportFormatError(str(path), None, "", "no conversations")
    return out


def _conversation(line: str, number: int, stem: str, batch_id: str,
                  scenario_id: str | None, model: str | None) -> Conversation:
    try:
        item = jsonfile.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line: not valid JSON ({exc.msg})") from None
    except jsonfile.JsonDepthError:
        raise ValueError(f"line: nested deeper than {jsonfile.MAX_DEPTH} levels") from None
    if not isinstance(item, dict):
        raise ValueError("line: must be a JSON object")
    messages = check_messages(item.get("messages"), "messages")
    run_id = _text(item, "id", f"{stem}-{number}")
    seed = item.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("seed: must be an integer")
    labels: dict[str, Any] = {"source": "openai-jsonl"}
    for key in ("metadata", "labels"):
        extra = item.get(key, {})
        if not isinstance(extra, dict):
            raise ValueError(f"{key}: must be an object")
        labels.update(scalar_items(extra))
    return Conversation(
        run_id=run_id, messages=messages,
        scenario_id=scenario_id or _text(item, "scenario_id", DEFAULT_SCENARIO),
        model=model or _text(item, "model", DEFAULT_MODEL), seed=seed, batch_id=batch_id,
        labels=labels,
    )


def _text(item: dict[str, Any], key: str, default: str) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: must be a non-empty string")
    return value

