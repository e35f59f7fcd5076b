"""``import openai-jsonl`` and ``import otlp-json``: fixtures, round trips, bad lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.core.records import SpanRecord
from driftwatch.importers import conversation_spans
from driftwatch.importers.taubench import read_taubench
from driftwatch.store import Store

runner = CliRunner()
OTEL_FIXTURE = (Path(__file__).resolve().parents[1] / "data" / "importers"
                / "otel-file-exporter.jsonl")


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _otlp_line(records: list[SpanRecord]) -> str:
    """What the collector's file exporter writes for these spans (one request)."""
    kinds = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3}
    spans = [{
        "traceId": r.trace_id, "spanId": r.span_id, "parentSpanId": r.parent_span_id or "",
        "name": r.name, "kind": kinds[r.kind], "startTimeUnixNano": str(r.start_time_ns),
        "endTimeUnixNano": str(r.end_time_ns),
        "attributes": [{"key": k, "value": _any_value(v)} for k, v in r.attributes.items()],
        "status": {},
    } for r in records]
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"scope": {"name": "driftwatch"},
                                                          "spans": spans}]}]})


def _span_rows(db: Path) -> list[tuple[Any, ...]]:
    with Store(db, read_only=True) as store:
        return store.query(
            "select run_id, turn, name, kind, operation, model, tool_name, start_time, "
            "end_time, parent_span_id, attributes from spans order by start_time, span_id").rows


def test_otlp_json_of_an_imported_run_stores_the_same_spans(excerpt: Path,
                                                            tmp_path: Path) -> None:
    code, _, err = _run("import", "tau-bench", str(excerpt), "--db", str(tmp_path / "a.duckdb"))
    assert code == 0, err
    runs = [conversation_spans(c, i) for i, c in enumerate(read_taubench(excerpt))]
    otlp = tmp_path / "traces.jsonl"
    # spans of one run split over two requests, as a batching exporter does
    lines = [line for run in runs for line in (_otlp_line(run.spans[:10]),
                                               _otlp_line(run.spans[10:]))]
    otlp.write_text("\n".join(lines) + "\n")
    code, _, err = _run("import", "otlp-json", str(otlp), "--db", str(tmp_path / "b.duckdb"))
    assert code == 0, err
    assert _span_rows(tmp_path / "a.duckdb") == _span_rows(tmp_path / "b.duckdb")
    with Store(tmp_path / "b.duckdb", read_only=True) as store:
        rows = store.query("select run_id, scenario_id, variant, model, seed, turns "
                           "from runs order by run_id").rows
    assert len(rows) == 12
    assert all(r[1:4] == ("taubench-airline", "recorded", "openai/gpt-4o") for r in rows)


def test_otel_file_exporter_output_from_another_instrumentation(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    code, out, err = _run("import", "otlp-json", str(OTEL_FIXTURE), "--db", str(db), "--json")
    assert code == 0, err
    assert json.loads(out)["imported"] == 2
    with Store(db, read_only=True) as store:
        runs = store.query("select run_id, model, status, attributes->>'tool_calls' "
                           "from runs order by run_id").rows
        spans = store.query(
            "select run_id, name, kind, provider, input_tokens, output_tokens, status_code, "
            "status_message, attributes->>'$.\"gen_ai.request.temperature\"', events "
            "from spans order by start_time").rows
    # the root's session.id names the run; its children (no id of their own) join it
    assert runs == [("0af7651916cd43dd8448eb211c80319c", None, "completed", "0"),
                    ("conv-0042", "gpt-4o-mini", "completed", "1")]
    root, chat, tool, other = spans
    assert root[:3] == ("conv-0042", "invoke_agent support-bot", "INTERNAL")
    assert chat[1:8] == ("chat gpt-4o-mini", "CLIENT", "openai", 812, 42, "UNSET", None)
    assert chat[8] == "0.2"
    assert tool[:2] == ("conv-0042", "execute_tool lookup_order")
    assert tool[6:8] == ("ERROR", "order service timed out")
    events = json.loads(tool[9]) if isinstance(tool[9], str) else tool[9]
    assert events[0]["name"] == "exception"
    assert other[0] == "0af7651916cd43dd8448eb211c80319c"


_SPAN = ('"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", '
         '"name": "x", "endTimeUnixNano": "2"')
_WHERE = "record 2: resourceSpans[0].scopeSpans[0].spans[0]: "


@pytest.mark.parametrize(("line", "problem"), [
    ("{not json", "record 2: line: not valid JSON (Expecting property name enclosed in "
                  "double quotes)"),
    ('{"resourceSpans": {}}', "record 2: request: resourceSpans must be a list"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abc", "spanId": '
     '"b7ad6b7169203331", "name": "x", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}',
     _WHERE + "traceId must be 32 hex digits, got 'abc'"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [{' + _SPAN + ', '
     '"startTimeUnixNano": "soon"}]}]}]}',
     _WHERE + "startTime must be an integer, got 'soon'"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": '
     '"0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "x", '
     '"startTimeUnixNano": "1"}]}]}]}',
     _WHERE + "endTime is missing"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [{' + _SPAN + ', '
     '"startTimeUnixNano": "1", "attributes": [{"key": "a", "value": {"intValue": "many"}}]'
     '}]}]}]}',
     _WHERE + "intValue of 'a' must be an integer, got 'many'"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": [{' + _SPAN + ', '
     '"startTimeUnixNano": "1", "kind": 9}]}]}]}',
     _WHERE + "kind: unknown value 9"),
])
def test_a_bad_otlp_line_is_named_and_nothing_is_imported(tmp_path: Path, line: str,
                                                           problem: str) -> None:
    good = OTEL_FIXTURE.read_text().splitlines()[0]
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n{line}\n")
    db = tmp_path / "s.duckdb"
    code, _, err = _run("import", "otlp-json", str(path), "--db", str(db))
    assert (code, err) == (2, f"error: {path}: {problem}\n")
    assert not db.exists()


def _chat(**extra: Any) -> dict[str, Any]:
    return {"messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Refund order A-17 please."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "refund", "arguments": "{\"order\": \"A-17\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "refunded"},
        {"role": "assistant", "content": "Done: order A-17 is refunded."},
    ], **extra}


def test_openai_jsonl_lines_become_runs_with_their_labels(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join([
        json.dumps(_chat(id="conv-1", model="openai/gpt-4o-mini", labels={"resolved": True})),
        "",
        json.dumps(_chat(metadata={"customer": "acme", "nested": {"dropped": 1}}, seed=4)),
    ]) + "\n")
    db = tmp_path / "s.duckdb"
    code, _, err = _run("import", "openai-jsonl", str(path), "--db", str(db),
                        "--scenario-id", "support")
    assert code == 0, err
    with Store(db, read_only=True) as store:
        runs = store.query("select run_id, scenario_id, model, seed, turns, "
                           "attributes->>'resolved', attributes->>'customer', "
                           "attributes->>'nested', batch_id from runs order by run_id").rows
        tools = store.query("select run_id, turn, tool_name, arguments->>'order', result "
                            "from tool_calls where source = 'executed' order by run_id").rows
        linked = store.query("select count(*) from tool_calls where source = 'requested' "
                             "and executed_span_id is not null").rows
    assert runs == [
        ("chats-3", "support", "unknown/unknown", 4, 2, None, "acme", None,
         "import-openai-jsonl-chats"),
        ("conv-1", "support", "openai/gpt-4o-mini", 0, 2, "true", None, None,
         "import-openai-jsonl-chats"),
    ]
    assert tools == [("chats-3", 1, "refund", "A-17", "refunded"),
                     ("conv-1", 1, "refund", "A-17", "refunded")]
    assert linked == [(2,)]  # each recorded call was also requested, with its call id


@pytest.mark.parametrize(("line", "problem"), [
    ("[1, 2]", "record 1: line: must be a JSON object"),
    (json.dumps({"messages": []}), "record 1: messages: must be a non-empty list of messages"),
    (json.dumps(_chat(seed="x")), "record 1: seed: must be an integer"),
    (json.dumps(_chat(labels=[1])), "record 1: labels: must be an object"),
    (json.dumps(_chat(id="")), "record 1: id: must be a non-empty string"),
])
def test_a_bad_openai_jsonl_line_is_named(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    code, _, err = _run("import", "openai-jsonl", str(path), "--db", str(tmp_path / "s.duckdb"))
    assert (code, err) == (2, f"error: {path}: {problem}\n")


def test_the_same_openai_jsonl_id_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(_chat(id="a")) + "\n" + json.dumps(_chat(id="a")) + "\n")
    code, _, err = _run("import", "openai-jsonl", str(path), "--db", str(tmp_path / "s.duckdb"))
    assert (code, err) == (2, f"error: {path}: record 2: id: 'a' repeats record 1\n")
