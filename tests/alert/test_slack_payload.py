"""The webhook body: Slack's text + blocks shape, with model-written text escaped and
trimmed to Slack's limits."""

from __future__ import annotations

import json
from collections.abc import Callable

from driftwatch.alert.slack import FIELD_LIMIT, SECTION_LIMIT, finding_payload, mrkdwn_escape
from driftwatch.core import Finding, Severity

FindingFactory = Callable[..., Finding]


def all_texts(payload: dict[str, object]) -> list[str]:
    """Every ``text`` string anywhere in the payload."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)
    return found


def test_payload_has_text_and_blocks_with_rule_severity_run_turn_and_evidence(
    make_finding: FindingFactory,
) -> None:
    finding = make_finding(severity=Severity.HIGH, turn=7, evidence={"path": "a.yaml", "n": 2})
    payload = finding_payload(finding)
    assert set(payload) == {"text", "blocks"}
    assert payload["text"] == (
        "[HIGH] oversight-config-modified run=run-000001 turn=7: "
        "write_file on project/oversight_config.yaml at turn 4"
    )
    types = [block["type"] for block in payload["blocks"]]
    assert types == ["section", "section", "section", "section", "context"]
    fields = [field["text"] for field in payload["blocks"][1]["fields"]]
    assert fields == [
        "*Rule*\n`oversight-config-modified`",
        "*Severity*\nHIGH",
        "*Run*\n`run-000001`",
        "*Turn*\n7",
        "*Monitor*\n`rule_pack`",
        "*Kind*\nviolation",
    ]
    assert payload["blocks"][3]["text"]["text"] == "`path`: a.yaml\n`n`: 2"
    assert finding.finding_id in payload["blocks"][4]["elements"][0]["text"]
    json.dumps(payload)  # serialisable as is


def test_model_text_cannot_mention_link_or_break_code_spans(
    make_finding: FindingFactory,
) -> None:
    hostile = "<!channel> see <https://evil.example|here> & `rm -rf` \x1b[31m\x00done"
    finding = make_finding(hostile, run_id="run-`<@U123>`", evidence={"<x>": "<!here>"})
    payload = finding_payload(finding)
    for text in all_texts(payload):
        assert "<" not in text
        assert ">" not in text
        assert "\x1b" not in text
        assert "\x00" not in text
    assert (
        "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; `rm -rf`"
        in (payload["blocks"][2]["text"]["text"])
    )
    assert "*Run*\n`run-'&lt;@U123&gt;'`" in [
        field["text"] for field in payload["blocks"][1]["fields"]
    ]


def test_long_text_is_trimmed_to_slack_limits(make_finding: FindingFactory) -> None:
    finding = make_finding(
        "x" * 10_000, rule_id="r" * 5000, evidence={f"k{n}": "v" * 5000 for n in range(20)}
    )
    payload = finding_payload(finding)
    assert len(payload["text"]) <= SECTION_LIMIT
    for block in payload["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= SECTION_LIMIT
        for field in block.get("fields", []):
            assert len(field["text"]) <= FIELD_LIMIT
    assert payload["blocks"][2]["text"]["text"].endswith("…")
    assert payload["blocks"][3]["text"]["text"].endswith("… and 12 more")


def test_mrkdwn_escape_is_slack_entity_escaping() -> None:
    assert mrkdwn_escape("a & b < c > d\nnext\tcol") == "a &amp; b &lt; c &gt; d\nnext col"
