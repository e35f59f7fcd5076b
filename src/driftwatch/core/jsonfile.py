"""JSON from import files and recordings, with a nesting limit.

Python's decoder recurses: 100,000 nested brackets raise RecursionError, and a few hundred
levels that it still accepts can overflow the recursion of code further on (attribute
flattening, monitors, ``json.dumps`` into the store). Every JSON value an importer reads —
a file, a line, a tool call's argument string — comes through :func:`loads`, which refuses
anything nested deeper than :data:`MAX_DEPTH` with a ``ValueError`` naming the line.
Recorded agent runs nest about ten levels deep (OTLP attributes a few more).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

__all__ = ["MAX_DEPTH", "JsonDepthError", "loads"]

MAX_DEPTH: Final = 100
_TOKENS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JsonDepthError(ValueError):
    """JSON nested deeper than :data:`MAX_DEPTH`. ``line`` is 1-based within the text."""

    def __init__(self, line: int) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels (line {line})")
        self.line = line


def loads(text: str) -> Any:
    """``json.loads`` that raises :class:`JsonDepthError` past :data:`MAX_DEPTH` levels and
    ``json.JSONDecodeError`` for invalid JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonDepthError(_deep_line(text)) from None
    if _too_deep(value):
        raise JsonDepthError(_deep_line(text))
    return value


def _too_deep(value: Any) -> bool:
    """Whether containers nest past the limit; iterative, so it cannot overflow itself."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        item, depth = stack.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                if depth >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _deep_line(text: str) -> int:
    """The line where nesting first passes the limit (only on the error path: a scan of
    the text that skips string contents)."""
    depth = 0
    for match in _TOKENS.finditer(text):
        found = match.group()
        if found in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif found in "]}":
            depth -= 1
    return 1
