"""The ``tool_calls`` view holds requested calls (chat spans' output messages) and
executed ones (``execute_tool`` spans), one row per call and source, linked by call id;
checked on the spans real instrumentations sent (tests/data/instrumentations)."""

from __future__ import annotations

import json

import pytest
from tests.instrumentation_fixtures import ALL, CALLS, LANGGRAPH, OPENAI_LOOP, RESULTS, load

from driftwatch.store import Store

_ROWS = ("SELECT source, tool_name, call_id, arguments, result, span_id, requested_span_id, "
         "executed_span_id FROM tool_calls ORDER BY start_time, source DESC")


def _rows(name: str) -> list[tuple[object, ...]]:
    with Store() as store:
        store.write_spans(load(name))
        return store.query(_ROWS).rows


@pytest.mark.parametrize("name", ALL)
def test_every_requested_call_is_a_row_with_object_arguments(name: str) -> None:
    requested = [row for row in _rows(name) if row[0] == "requested"]
    assert [(row[1], json.loads(str(row[3]))) for row in requested] == CALLS
    assert all(row[4] is None and row[6] == row[5] for row in requested)


@pytest.mark.parametrize("name", OPENAI_LOOP)
def test_an_untraced_tool_loop_has_only_requested_calls(name: str) -> None:
    rows = _rows(name)
    assert {row[0] for row in rows} == {"requested"}
    assert all(row[7] is None for row in rows)


@pytest.mark.parametrize("name", LANGGRAPH)
def test_executed_calls_are_linked_to_their_request(name: str) -> None:
    rows = _rows(name)
    requested = [row for row in rows if row[0] == "requested"]
    executed = [row for row in rows if row[0] == "executed"]
    assert [(row[1], json.loads(str(row[3])), row[4]) for row in executed] == [
        (tool, arguments, result) for (tool, arguments), result in zip(CALLS, RESULTS,
                                                                      strict=True)]
    for asked, done in zip(requested, executed, strict=True):
        assert asked[2] == done[2]  # the call id
        assert asked[7] == done[5]
        assert done[6] == asked[5]


def test_openinference_bare_input_takes_the_requested_arguments() -> None:
    """OpenInference stores a one-argument LangChain tool's input as a bare string; the
    view gives the arguments the model sent for that call id (the declared name)."""
    executed = [row for row in _rows("openinference-langchain") if row[0] == "executed"]
    assert json.loads(str(executed[2][3])) == {"command": "rm -rf build"}
    with Store() as store:
        store.write_spans([r for r in load("openinference-langchain")
                           if r.operation == "execute_tool"])  # no chat spans: no request
        alone = store.query("SELECT arguments FROM tool_calls WHERE tool_name = 'shell'").rows
    assert [json.loads(str(row[0])) for row in alone] == [{"input": "rm -rf build"}]
