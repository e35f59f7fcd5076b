"""``replay/<file>#<task>-<trial>``: a recorded run driven through the real loop gives the
spans and findings its import gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core.errors import UsageError
from driftwatch.importers import conversation_spans, monitor_runs
from driftwatch.importers.taubench import read_taubench
from driftwatch.model.replay import load_recording, replay_scenario
from driftwatch.runner.run import run_scenario
from driftwatch.store import Store

# talks and acts in one message; repeated call ids; an Error result and a change w/o "yes"
RUNS = ["38-2", "39-1", "32-2"]


def _normalise(name: str) -> str:
    return "chat <model>" if name.startswith("chat ") else name


def _finding_keys(findings: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((f.rule_id, f.turn, f.kind.value, f.severity.label) for f in findings)


@pytest.mark.parametrize("selector", RUNS)
def test_replayed_run_has_the_imported_spans_and_findings(excerpt: Path, shape_pack: Path,
                                                           tmp_path: Path, selector: str) -> None:
    model = f"replay/{excerpt}#{selector}"
    summary = run_scenario(replay_scenario(model), model=model, db_path=tmp_path / "r.duckdb",
                           packs=[str(shape_pack)])
    conversation = next(c for c in read_taubench(excerpt) if c.run_id.endswith(f"-{selector}"))
    imported = conversation_spans(conversation)
    assert summary.turns == imported.info.turns
    assert summary.tool_calls == imported.info.attributes["tool_calls"]
    assert summary.error is None
    assert summary.stopped_by == "max_turns"

    with Store(tmp_path / "r.duckdb", read_only=True) as store:
        replayed = store.query(
            "select turn, name, attributes->>'$.\"driftwatch.event.content\"', "
            "attributes->>'$.\"gen_ai.tool.call.result\"', "
            "attributes->>'$.\"gen_ai.tool.call.arguments\"', "
            "attributes->>'$.\"driftwatch.reply.tool_calls\"', "
            "attributes->>'$.\"driftwatch.reply.has_text\"', "
            "(attributes->>'$.\"gen_ai.output.messages\"')::json->0->>'content' "
            "from spans order by start_time, span_id").rows
    expected = [
        (s.turn, s.name, s.attributes.get("driftwatch.event.content"),
         s.attributes.get("gen_ai.tool.call.result"),
         s.attributes.get("gen_ai.tool.call.arguments"),
         _text(s.attributes.get("driftwatch.reply.tool_calls")),
         _text(s.attributes.get("driftwatch.reply.has_text")),
         _content(s.attributes.get("gen_ai.output.messages")))
        for s in sorted(imported.spans, key=lambda s: s.start_time_ns)]
    assert [(r[0], _normalise(r[1]), *r[2:]) for r in replayed] == [
        (e[0], _normalise(e[1]), *e[2:]) for e in expected]

    from_import = monitor_runs([imported], [str(shape_pack)])
    assert _finding_keys(summary.findings) == _finding_keys(from_import)
    assert summary.violations  # every chosen run breaks at least one shape rule


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _content(messages: Any) -> str | None:
    return None if messages is None else json.loads(messages)[0]["content"]


def test_replay_without_a_run_selector_takes_the_first_run(excerpt: Path) -> None:
    first = json.loads(excerpt.read_text())[0]
    assert load_recording(f"replay/{excerpt}").run_id.endswith(
        f"-{first['task_id']}-{first['trial']}")


def test_replay_of_an_unknown_run_or_file_is_a_usage_error(excerpt: Path,
                                                            tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"has no run '99-9'"):
        load_recording(f"replay/{excerpt}#99-9")
    with pytest.raises(UsageError, match="no such file"):
        load_recording(f"replay/{tmp_path / 'missing.json'}")
