"""Real SDK spans of an agent-shaped trace → StoreWriter → the store's public views."""

from __future__ import annotations

import json
from pathlib import Path

from driftwatch.core import semconv as sc
from driftwatch.store import Store, safe_query
from driftwatch.tracing import SequentialIdGenerator, StoreWriter, setup_tracing

RUN = "run-000001"


def _emit_run(db_path: Path) -> None:
    with Store(db_path) as store:
        writer = StoreWriter(store)
        provider = setup_tracing([writer], otlp=False, id_generator=SequentialIdGenerator())
        tracer = provider.get_tracer("driftwatch")
        run_attributes = {sc.DW_RUN_ID: RUN, sc.DW_SCENARIO_ID: "inbox-cleanup"}
        with tracer.start_as_current_span(
            "invoke_agent demo",
            attributes={
                **run_attributes,
                sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
                sc.GEN_AI_AGENT_NAME: "demo",
                sc.GEN_AI_CONVERSATION_ID: RUN,
            },
        ):
            for turn in range(2):
                in_turn = {**run_attributes, sc.DW_TURN: turn}
                with tracer.start_as_current_span(
                    sc.SPAN_TURN, attributes={**in_turn, sc.GEN_AI_OPERATION_NAME: sc.OP_TURN}
                ):
                    if turn == 1:
                        with tracer.start_as_current_span(
                            f"{sc.SPAN_EVENT_PREFIX} pressure",
                            attributes={
                                **in_turn,
                                sc.GEN_AI_OPERATION_NAME: sc.OP_EVENT,
                                sc.DW_EVENT_KIND: "pressure",
                            },
                        ):
                            pass
                    with tracer.start_as_current_span(
                        "chat simulated/drifter",
                        attributes={
                            **in_turn,
                            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                            sc.GEN_AI_PROVIDER_NAME: "simulated",
                            sc.GEN_AI_REQUEST_MODEL: "simulated/drifter",
                            sc.GEN_AI_USAGE_INPUT_TOKENS: 100 + turn,
                            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 10,
                        },
                    ):
                        pass
                    with tracer.start_as_current_span(
                        "execute_tool delete_file",
                        attributes={
                            **in_turn,
                            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                            sc.GEN_AI_TOOL_NAME: "delete_file",
                            sc.GEN_AI_TOOL_CALL_ID: f"call-{turn}",
                            sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps({"path": f"/p/{turn}.txt"}),
                            sc.GEN_AI_TOOL_CALL_RESULT: "deleted",
                        },
                    ):
                        pass
        assert provider.force_flush()
        provider.shutdown()
        assert (writer.written, writer.failed) == (8, 0)


def test_spans_of_a_run_land_in_the_spans_tool_calls_and_turns_views(tmp_path: Path) -> None:
    db_path = tmp_path / "traces" / "driftwatch.duckdb"
    _emit_run(db_path)

    spans = safe_query(
        db_path, "SELECT name, operation, turn, run_id, parent_span_id FROM spans ORDER BY span_id"
    ).rows
    assert [name for name, *_ in spans] == [
        "invoke_agent demo",
        "driftwatch.turn",
        "chat simulated/drifter",
        "execute_tool delete_file",
        "driftwatch.turn",
        "driftwatch.event pressure",
        "chat simulated/drifter",
        "execute_tool delete_file",
    ]
    assert {run_id for _, _, _, run_id, _ in spans} == {RUN}
    assert [turn for _, _, turn, _, _ in spans] == [None, 0, 0, 0, 1, 1, 1, 1]
    root = safe_query(db_path, "SELECT * FROM spans WHERE parent_span_id IS NULL").to_dicts()
    assert [row["name"] for row in root] == ["invoke_agent demo"]
    assert root[0]["trace_id"] == "00000000000000000000000000000001"
    assert root[0]["span_id"] == "0000000000000001"

    tool_calls = safe_query(
        db_path,
        "SELECT turn, tool_name, call_id, arguments->>'path' AS path, result "
        "FROM tool_calls ORDER BY turn",
    ).rows
    assert tool_calls == [
        (0, "delete_file", "call-0", "/p/0.txt", "deleted"),
        (1, "delete_file", "call-1", "/p/1.txt", "deleted"),
    ]

    turns = safe_query(
        db_path,
        "SELECT run_id, turn, model_calls, tool_calls, events, input_tokens, output_tokens "
        "FROM turns ORDER BY turn",
    ).rows
    assert turns == [(RUN, 0, 1, 1, 0, 100, 10), (RUN, 1, 1, 1, 1, 101, 10)]
