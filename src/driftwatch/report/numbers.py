"""How the reports print numbers, shared by the HTML page and the Markdown summary so the
two always agree. ``None`` (not estimable, not reached) prints as an en dash."""

from __future__ import annotations

__all__ = ["MISSING", "p_value", "percent", "signed", "turn"]

MISSING = "–"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.0f}%"


def turn(value: float | None) -> str:
    return MISSING if value is None else f"{value:g}"


def p_value(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3g}"


def signed(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return MISSING if value is None else f"{scale * value:+.{digits}f}"
