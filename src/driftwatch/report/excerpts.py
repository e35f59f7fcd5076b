"""Excerpts of individual findings and runs, read from the store for the report: each
rule's example finding with its evidence, and a run's turns (events, the agent's text,
tool calls, findings).

All of it is model or user text: it is returned as plain strings, cut to a bounded
length, and escaped by the template (never marked safe).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from driftwatch.report.contents import FindingExample, RuleSummary, RunDetail, ToolCall, TurnDetail
from driftwatch.report.summary import FINISHED, QueryableStore

__all__ = ["TEXT_LIMIT", "agent_text", "clip", "load_rule_summaries", "load_run_details"]

TEXT_LIMIT = 2000
"""Characters kept of any one message, argument list or tool result."""

_FINISHED_SQL = ", ".join(repr(status) for status in FINISHED)


def clip(text: str | None, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if text is None:
        return ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def _pretty_json(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return clip(value)
    return clip(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def agent_text(output_messages: str | None) -> str:
    """The text of an agent's reply from ``gen_ai.output.messages`` (GenAI JSON: a list
    of messages whose ``content`` is a string or a list of parts); '' when absent."""
    if not output_messages:
        return ""
    try:
        messages = json.loads(output_messages)
    except ValueError:
        return clip(output_messages)
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else [messages]:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        parts += message.get("parts") or []
        for part in parts:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                text = part.get("content", part.get("text"))
                if isinstance(text, str):
                    texts.append(text)
    return clip("\n".join(text for text in texts if text))


_RULES_SQL = f"""
    SELECT r.scenario_id, r.model, f.rule_id, any_value(f.kind), max(f.severity_level),
           arg_max(f.severity, f.severity_level), count(*), count(DISTINCT f.run_id)
    FROM findings f JOIN runs r USING (run_id)
    WHERE r.batch_id = ? AND r.status IN ({_FINISHED_SQL})
    GROUP BY ALL
"""

_EXAMPLES_SQL = f"""
    SELECT r.scenario_id, r.model, f.rule_id, f.run_id, r.variant, f.turn, f.message,
           f.evidence->>'tool_name', f.evidence->'tool_arguments', f.evidence
    FROM findings f JOIN runs r USING (run_id)
    WHERE r.batch_id = ? AND r.status IN ({_FINISHED_SQL})
    QUALIFY row_number() OVER (PARTITION BY r.scenario_id, r.model, f.rule_id
                               ORDER BY f.severity_level DESC, f.turn NULLS LAST,
                                        f.finding_id) = 1
"""

_AGENT_TEXT_SQL = """
    SELECT run_id, turn, attributes->>'$."gen_ai.output.messages"'
    FROM spans
    WHERE operation = 'chat' AND list_contains(?::VARCHAR[], run_id)
"""


def load_rule_summaries(
    store: QueryableStore, batch_id: str
) -> dict[tuple[str, str], list[RuleSummary]]:
    """Per (scenario, model), every rule that fired in the batch, ranked, each with its
    most severe (then earliest) finding and the agent's text at that turn."""
    examples = {
        (row[0], row[1], row[2]): row for row in store.query(_EXAMPLES_SQL, [batch_id]).rows
    }
    texts = _agent_texts(store, sorted({row[3] for row in examples.values()}))
    rules: dict[tuple[str, str], list[RuleSummary]] = defaultdict(list)
    for scenario_id, model, rule_id, kind, level, severity, count, runs in store.query(
        _RULES_SQL, [batch_id]
    ).rows:
        example = examples[(scenario_id, model, rule_id)]
        _, _, _, run_id, variant, turn, message, tool_name, arguments, evidence = example
        rules[(scenario_id, model)].append(RuleSummary(
            scenario_id=scenario_id, model=model, rule_id=rule_id, kind=kind,
            severity=severity, severity_level=int(level), findings=int(count), runs=int(runs),
            example=FindingExample(
                run_id=run_id, variant=variant or "", turn=turn, message=clip(message),
                tool_name=tool_name or "", tool_arguments=_pretty_json(arguments),
                evidence=_pretty_json(evidence), agent_text=texts.get((run_id, turn), ""),
            ),
        ))
    for summaries in rules.values():
        summaries.sort(key=lambda rule: rule.rank)
    return dict(rules)


def _agent_texts(store: QueryableStore, run_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    if not run_ids:
        return {}
    texts: dict[tuple[str, int], list[str]] = defaultdict(list)
    for run_id, turn, output in store.query(_AGENT_TEXT_SQL, [list(run_ids)]).rows:
        text = agent_text(output)
        if text:
            texts[(run_id, turn)].append(text)
    return {key: "\n".join(value) for key, value in texts.items()}


_RUNS_SQL = """
    SELECT run_id, variant, seed, status, turns FROM runs
    WHERE list_contains(?::VARCHAR[], run_id)
"""

_SPANS_SQL = """
    SELECT run_id, turn, operation, coalesce(attributes->>'$."driftwatch.phase"', ''),
           attributes->>'$."gen_ai.output.messages"',
           tool_name,
           attributes->>'$."gen_ai.tool.call.arguments"',
           attributes->>'$."gen_ai.tool.call.result"',
           attributes->>'$."driftwatch.event.kind"',
           attributes->>'$."driftwatch.event.content"'
    FROM spans
    WHERE list_contains(?::VARCHAR[], run_id)
      AND operation IN ('chat', 'execute_tool', 'driftwatch.event')
    ORDER BY run_id, start_time, span_id
"""

_RUN_FINDINGS_SQL = """
    SELECT run_id, turn, severity, rule_id, message, kind FROM findings
    WHERE list_contains(?::VARCHAR[], run_id)
    ORDER BY run_id, turn NULLS LAST, severity_level DESC, finding_id
"""


def load_run_details(store: QueryableStore, run_ids: Sequence[str]) -> dict[str, RunDetail]:
    """Each run's turns in order: injected events, the agent's text, its tool calls
    (arguments and result) and the findings at that turn. Three queries in all."""
    if not run_ids:
        return {}
    ids = list(run_ids)
    turns: dict[str, dict[tuple[str, int | None], TurnDetail]] = defaultdict(dict)

    def at(run_id: str, turn: int | None, phase: str = "") -> TurnDetail:
        key = (phase, turn)
        if key not in turns[run_id]:
            turns[run_id][key] = TurnDetail(turn=turn, phase=phase)
        return turns[run_id][key]

    for (run_id, turn, operation, phase, output, tool, arguments, result, event_kind,
         event_content) in store.query(_SPANS_SQL, [ids]).rows:
        detail = at(run_id, turn, phase)
        if operation == "chat":
            text = agent_text(output)
            if text:
                detail.agent_texts.append(text)
        elif operation == "execute_tool":
            detail.tool_calls.append(ToolCall(tool or "", _pretty_json(arguments), clip(result)))
        else:
            detail.events.append((event_kind or "", clip(event_content)))
    first_violation: dict[str, int] = {}
    counts: dict[str, int] = defaultdict(int)
    for run_id, turn, severity, rule_id, message, kind in store.query(
        _RUN_FINDINGS_SQL, [ids]
    ).rows:
        at(run_id, turn).findings.append((severity, rule_id, clip(message)))
        counts[run_id] += 1
        if kind == "violation" and turn is not None:
            first_violation[run_id] = min(turn, first_violation.get(run_id, turn))
    details = {}
    for run_id, variant, seed, status, run_turns in store.query(_RUNS_SQL, [ids]).rows:
        ordered = sorted(turns[run_id].values(),
                         key=lambda d: (d.phase != "", d.turn is None, d.turn or 0))
        details[run_id] = RunDetail(
            run_id=run_id, variant=variant or "", seed=seed, status=status,
            turns=int(run_turns or 0), first_violation=first_violation.get(run_id),
            findings=counts[run_id], turn_details=ordered,
        )
    return details
