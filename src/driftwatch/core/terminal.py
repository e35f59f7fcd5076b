"""Text for a terminal: control characters shown, never obeyed.

Anything a model wrote or an OTLP sender sent (messages, tool arguments, rule ids of
imported packs, error text from a provider) may hold escape sequences: OSC 52 writes the
clipboard, OSC 8 hides a link behind innocent text, CSI clears the screen or moves the
cursor, and the 8-bit C1 forms (``\\x9b`` is CSI) work in many terminals too. Every place
the CLI prints such text goes through :func:`printable`, which replaces each C0 control
(except newline and tab where the layout has room for them), DEL, each C1 control and
the bidirectional overrides (which reorder what is shown) with a visible escape such as
``\\x1b``. JSON output needs none of this: ``json.dumps`` already writes them as ``\\u001b``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["printable"]

_BIDI: Final = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _table() -> dict[int, str]:
    table = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
    table |= {code: f"\\u{code:04x}" for code in _BIDI}
    table[ord("\r")] = "\\r"
    del table[ord("\n")], table[ord("\t")]
    return table


_MULTILINE: Final = _table()
_ONE_LINE: Final[dict[int, str]] = {**_MULTILINE, ord("\n"): "\\n", ord("\t"): " "}


def printable(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character replaced by a visible escape. With
    ``multiline`` newlines and tabs stay (a Markdown report, a table cell); without, the
    result is always one line (a finding, an error)."""
    return text.translate(_MULTILINE if multiline else _ONE_LINE)
