"""SpanRecords and Findings → Arrow tables with the store's column sets."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from driftwatch.core.records import Finding, SpanEvent, SpanRecord
from driftwatch.store import FINDING_SCHEMA, SPAN_SCHEMA, findings_to_arrow, records_to_arrow
from driftwatch.store.arrow import to_json


def test_records_become_one_table_in_span_schema(make_span: Callable[..., SpanRecord]) -> None:
    table = records_to_arrow([make_span(1), make_span(2, turn=None)])
    assert table.schema == SPAN_SCHEMA
    assert table.column("turn").to_pylist() == [0, None]
    assert table.column("duration_ms").to_pylist() == [10.0, 10.0]
    assert json.loads(table.column("resource")[0].as_py()) == {"service.name": "driftwatch-tests"}


def test_events_are_stored_as_a_json_list() -> None:
    record = SpanRecord.create(
        trace_id="1" * 32,
        span_id="2" * 16,
        name="chat",
        start_time_ns=1,
        end_time_ns=2,
        events=(SpanEvent("gen_ai.evaluation.result", 5, {"score": 1}),),
    )
    events = json.loads(records_to_arrow([record]).column("events")[0].as_py())
    assert events == [
        {"name": "gen_ai.evaluation.result", "time_ns": 5, "attributes": {"score": 1}}
    ]


def test_json_encoding_never_raises_on_odd_values() -> None:
    circular: dict[str, object] = {}
    circular["self"] = circular
    assert json.loads(to_json({"tuple": (1, 2), "int-key": {1: "a"}})) == {
        "tuple": [1, 2],
        "int-key": {"1": "a"},
    }
    assert json.loads(to_json({(1, 2): "tuple key", "kept": 1})) == {"kept": 1}
    assert isinstance(json.loads(to_json(circular)), str)
    assert to_json({"x": object()}).startswith('{"x":"<object object')
    assert to_json({"é": "ü"}) == '{"é":"ü"}'
    assert to_json({"x": math.nan}) in {'{"x":NaN}', '{"x":null}'}  # stdlib or orjson


def test_findings_become_one_table_in_finding_schema(
    make_finding: Callable[..., Finding],
) -> None:
    table = findings_to_arrow([make_finding("f1")])
    assert table.schema == FINDING_SCHEMA
    row = table.to_pylist()[0]
    assert (row["kind"], row["severity"], row["severity_level"]) == ("violation", "high", 40)
