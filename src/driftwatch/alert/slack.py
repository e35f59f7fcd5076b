"""Slack-compatible message bodies: ``{"text": ..., "blocks": [...]}``.

Messages and evidence may hold text a model wrote. Every piece of text goes through
:func:`mrkdwn_escape` (Slack's own rule: ``&``, ``<``, ``>`` as entities, so nothing
becomes a link, a ``<!channel>`` mention or a user ping), loses its control characters,
and is trimmed to stay inside Slack's block limits.
"""

from __future__ import annotations

import json
from typing import Any, Final

from driftwatch.core.records import Finding, Severity

__all__ = ["finding_payload", "mrkdwn_escape", "trim"]

SECTION_LIMIT: Final = 3000  # Slack: section text ≤ 3000 characters
FIELD_LIMIT: Final = 2000  # Slack: each field ≤ 2000 characters
MESSAGE_LIMIT: Final = 1500
EVIDENCE_VALUE_LIMIT: Final = 200
EVIDENCE_KEYS: Final = 8

_SEVERITY_MARK: Final = {
    Severity.INFO: ":information_source:",
    Severity.LOW: ":small_blue_diamond:",
    Severity.MEDIUM: ":warning:",
    Severity.HIGH: ":red_circle:",
    Severity.CRITICAL: ":rotating_light:",
}
_CONTROL: Final[dict[int, str | None]] = dict.fromkeys((*range(0x20), 0x7F, *range(0x80, 0xA0)))
_CONTROL.update({ord("\n"): "\n", ord("\t"): " "})
_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def mrkdwn_escape(text: str) -> str:
    """``text`` safe to place in Slack mrkdwn: entities for ``&<>``, no control
    characters (newlines kept)."""
    return text.translate(_CONTROL).translate(_ESCAPES)


def trim(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(text: str, limit: int = 200) -> str:
    """Inline code, escaped; backticks in the text would end the code span early."""
    quoted = mrkdwn_escape(trim(text.replace("`", "'"), limit))
    return f"`{quoted}`"


def evidence_summary(evidence: dict[str, Any]) -> str:
    """``key: value`` lines for the first few evidence keys, values trimmed."""
    lines = []
    for key, value in list(evidence.items())[:EVIDENCE_KEYS]:
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"{_code(str(key), 60)}: {mrkdwn_escape(trim(shown, EVIDENCE_VALUE_LIMIT))}")
    if len(evidence) > EVIDENCE_KEYS:
        lines.append(f"… and {len(evidence) - EVIDENCE_KEYS} more")
    return "\n".join(lines)


def finding_payload(finding: Finding) -> dict[str, Any]:
    """The webhook body for one finding: a plain ``text`` fallback (notifications) and
    blocks with rule, severity, run, turn, message and an evidence summary."""
    severity = finding.severity.label.upper()
    turn = "-" if finding.turn is None else str(finding.turn)
    message = mrkdwn_escape(trim(finding.message, MESSAGE_LIMIT))
    text = trim(
        f"[{severity}] {mrkdwn_escape(finding.rule_id)} run={mrkdwn_escape(finding.run_id)}"
        f" turn={turn}: {message}",
        SECTION_LIMIT,
    )
    fields = [
        ("Rule", _code(finding.rule_id)),
        ("Severity", severity),
        ("Run", _code(finding.run_id)),
        ("Turn", turn),
        ("Monitor", _code(finding.monitor)),
        ("Kind", finding.kind.value),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{_SEVERITY_MARK.get(finding.severity, '')} *{severity}* "
                f"{_code(finding.rule_id)}",
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": trim(f"*{name}*\n{value}", FIELD_LIMIT)}
                for name, value in fields
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": message or "_(no message)_"}},
    ]
    summary = evidence_summary(finding.evidence)
    if summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": trim(summary, SECTION_LIMIT)}}
        )
    context = f"finding {_code(finding.finding_id)} · {finding.detected_at.isoformat()}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": text, "blocks": blocks}
