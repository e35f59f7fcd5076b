"""tau-bench files → runs, turns, spans and labels in the store, as the loop would write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.importers import conversation_spans, store_runs
from driftwatch.importers.taubench import read_taubench
from driftwatch.store import Store

runner = CliRunner()
SHARED_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "tau-bench" / \
    "gpt-4o-airline.json"


def _import(path: Path, db: Path, *extra: str) -> dict[str, int]:
    result = runner.invoke(app, ["import", "tau-bench", str(path), "--db", str(db), "--json",
                                 *extra])
    assert result.exit_code == 0, result.stderr
    summary: dict[str, int] = json.loads(result.stdout)
    return summary


def test_every_trajectory_becomes_one_completed_run_with_its_labels(excerpt: Path,
                                                                     db: Path) -> None:
    items = json.loads(excerpt.read_text())
    summary = _import(excerpt, db)
    assert (summary["runs"], summary["imported"], summary["skipped"]) == (12, 12, 0)
    with Store(db, read_only=True) as store:
        rows = store.query(
            "select run_id, scenario_id, model, variant, seed, status, turns, batch_id, "
            "attributes from runs order by run_id").rows
    assert len(rows) == 12
    by_id = {row[0]: row for row in rows}
    for item in items:
        run_id = f"taubench-gpt-4o-airline-excerpt-{item['task_id']}-{item['trial']}"
        _, scenario, model, variant, seed, status, turns, batch, attributes = by_id[run_id]
        assert (scenario, model, variant, seed, status) == (
            "taubench-airline", "openai/gpt-4o", "recorded", item["trial"], "completed")
        assert turns == sum(1 for m in item["traj"] if m["role"] == "assistant")
        assert batch == "import-tau-bench-gpt-4o-airline-excerpt"
        labels = json.loads(attributes) if isinstance(attributes, str) else attributes
        assert labels["reward"] == item["reward"]
        assert labels["label.success"] is (item["reward"] == 1.0)
        assert (labels["task_id"], labels["trial"]) == (item["task_id"], item["trial"])
        assert labels["tool_calls"] == sum(len(m.get("tool_calls") or []) for m in item["traj"])


def test_spans_follow_the_loop_shape_turn_by_turn(excerpt: Path) -> None:
    item = json.loads(excerpt.read_text())[0]
    run = conversation_spans(read_taubench(excerpt)[0])
    root = run.spans[-1]
    assert root.name == "invoke_agent taubench-agent"
    assert root.parent_span_id is None
    assert root.attributes["gen_ai.system_instructions"] == item["traj"][0]["content"]
    turn_ids = {s.span_id: s.turn for s in run.spans if s.operation == "driftwatch.turn"}
    assert all(s.parent_span_id == root.span_id for s in run.spans
               if s.operation == "driftwatch.turn")
    inner = [s for s in run.spans if s.operation not in ("driftwatch.turn", "invoke_agent")]
    assert all(turn_ids[s.parent_span_id] == s.turn for s in inner)
    # replay the conversation from the spans: user events, replies, tool calls in order
    rebuilt: list[tuple[str, str | None]] = []
    for span in sorted(inner, key=lambda s: s.start_time_ns):
        if span.operation == "driftwatch.event":
            rebuilt.append(("user", span.attributes["driftwatch.event.content"]))
        elif span.operation == "chat":
            message = json.loads(span.attributes["gen_ai.output.messages"])[0]
            rebuilt.append(("assistant", message["content"]))
        else:
            rebuilt.append(("tool", span.attributes["gen_ai.tool.call.result"]))
    trailing = 1 if item["traj"][-1]["role"] == "user" else 0
    expected = [(m["role"], m["content"]) for m in item["traj"][1:len(item["traj"]) - trailing]]
    assert rebuilt == expected
    starts = [s.start_time_ns for s in sorted(run.spans, key=lambda s: s.start_time_ns)]
    assert len(set(starts)) == len(starts)


def test_chat_spans_carry_the_reply_shape_and_tool_spans_the_call(excerpt: Path) -> None:
    conversations = read_taubench(excerpt)
    spans = [s for c in conversations for s in conversation_spans(c).spans]
    chats = [s for s in spans if s.operation == "chat"]
    both = [s for s in chats if s.attributes["driftwatch.reply.tool_calls"] > 0
            and s.attributes["driftwatch.reply.has_text"]]
    assert len(both) == 3  # the excerpt holds three runs that talk and act in one message
    for chat in chats:
        message = json.loads(chat.attributes["gen_ai.output.messages"])[0]
        calls = message.get("tool_calls", [])
        assert chat.attributes["driftwatch.reply.tool_calls"] == len(calls)
        assert chat.attributes["gen_ai.response.finish_reasons"] == (
            ["tool_calls"] if calls else ["stop"])
        assert all(isinstance(c["function"]["arguments"], str) for c in calls)
    tool = next(s for s in spans if s.tool_name == "cancel_reservation")
    assert tool.name == "execute_tool cancel_reservation"
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"])["reservation_id"]
    assert tool.attributes["gen_ai.tool.call.id"].startswith("call_")


def test_repeated_tool_call_ids_get_their_own_results(excerpt: Path) -> None:
    """Recorded ids repeat within a run (OpenAI reuses them): results pair per turn."""
    item = next(i for i in json.loads(excerpt.read_text())
                if (i["task_id"], i["trial"]) == (39, 1))
    conversation = next(c for c in read_taubench(excerpt) if c.run_id.endswith("-39-1"))
    tools = [s for s in conversation_spans(conversation).spans if s.operation == "execute_tool"]
    recorded = [m["content"] for m in item["traj"] if m["role"] == "tool"]
    assert len({s.attributes["gen_ai.tool.call.id"] for s in tools}) < len(tools)
    assert [s.attributes.get("gen_ai.tool.call.result") for s in tools] == recorded


def test_views_show_turns_tool_calls_and_user_events(excerpt: Path, db: Path) -> None:
    _import(excerpt, db)
    with Store(db, read_only=True) as store:
        turns = store.query("select count(*), sum(model_calls), sum(tool_calls) from turns").rows
        calls = store.query("select count(*) from tool_calls where source = 'executed' "
                            "and arguments is not null").rows
        events = store.query("select count(*) from spans where operation = 'driftwatch.event' "
                             "and attributes->>'$.\"driftwatch.event.kind\"' = 'user_message'"
                             ).rows
    items = json.loads(excerpt.read_text())
    assistants = sum(1 for i in items for m in i["traj"] if m["role"] == "assistant")
    tools = sum(1 for i in items for m in i["traj"] if m["role"] == "tool")
    users = sum(1 for i in items for m in i["traj"] if m["role"] == "user")
    trailing = sum(1 for i in items if i["traj"][-1]["role"] == "user")  # start no turn
    assert turns == [(assistants, assistants, tools)]
    assert calls == [(tools,)]
    assert events == [(users - trailing,)]


def test_reimporting_the_same_file_stores_nothing_twice(excerpt: Path, db: Path) -> None:
    first = _import(excerpt, db)
    second = _import(excerpt, db)
    assert (second["imported"], second["skipped"], second["spans"]) == (0, 12, 0)
    with Store(db, read_only=True) as store:
        counts = store.query("select (select count(*) from runs), (select count(*) from spans),"
                             " (select count(*) from batches)").rows
    assert counts == [(12, first["spans"], 1)]


def test_the_chosen_pack_runs_over_the_imported_runs(excerpt: Path, db: Path,
                                                      shape_pack: Path) -> None:
    summary = _import(excerpt, db, "--pack", str(shape_pack))
    with Store(db, read_only=True) as store:
        rows = store.query("select rule_id, count(distinct run_id) from violations "
                           "group by 1 order by 1").rows
    assert rows == [("shape-booking-change", 6), ("shape-change-without-yes", 1),
                    ("shape-tool-call-with-text", 3), ("shape-tool-error", 1)]
    assert summary["violations"] == 11


@pytest.mark.skipif(not SHARED_FILE.exists(), reason="shared tau-bench data not present")
def test_the_full_airline_set_imports_with_its_84_successes(tmp_path: Path) -> None:
    conversations = read_taubench(SHARED_FILE)
    runs = [conversation_spans(c, i) for i, c in enumerate(conversations)]
    summary = store_runs(runs, source="tau-bench", path=SHARED_FILE,
                         db_path=tmp_path / "full.duckdb")
    assert summary.imported == 200
    with Store(tmp_path / "full.duckdb", read_only=True) as store:
        rows = store.query("select attributes->>'$.\"label.success\"', count(*) from runs "
                           "group by 1 order by 1").rows
    assert rows == [("false", 116), ("true", 84)]
