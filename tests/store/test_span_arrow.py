"""SpanRecords and Findings → Arrow tables with the store's column sets."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.core.records import Finding, SpanEvent, SpanRecord
from driftwatch.store import FINDING_SCHEMA, SPAN_SCHEMA, findings_to_arrow, records_to_arrow
from driftwatch.store.arrow import exact_span_table, records_from_arrow, to_json


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


# --- back from Arrow (the collector's monitor process) ----------------------------------

_json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                 | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)
_hex = st.text("0123456789abcdef", min_size=1, max_size=16)


@st.composite
def _records(draw: st.DrawFn) -> SpanRecord:
    start = draw(st.integers(0, 2**62))
    attributes = draw(st.dictionaries(st.text(max_size=12), _json_values, max_size=6))
    attributes.update(draw(st.fixed_dictionaries({}, optional={
        "driftwatch.turn": st.integers(0, 500),
        "gen_ai.operation.name": st.sampled_from(["chat", "execute_tool"]),
        "gen_ai.tool.name": st.text(max_size=8),
        "gen_ai.usage.input_tokens": st.integers(0, 10**6),
        "gen_ai.conversation.id": st.text(min_size=1, max_size=8),
    })))
    events = tuple(
        SpanEvent(name, time_ns, attrs)
        for name, time_ns, attrs in draw(st.lists(st.tuples(
            st.text(max_size=8), st.integers(0, 2**62),
            st.dictionaries(st.text(max_size=6), _json_values, max_size=2)), max_size=2))
    )
    return SpanRecord.create(
        trace_id=draw(_hex).rjust(32, "0"), span_id=draw(_hex).rjust(16, "0"),
        parent_span_id=draw(st.none() | _hex.map(lambda h: h.rjust(16, "0"))),
        name=draw(st.text(max_size=20)), start_time_ns=start,
        end_time_ns=start + draw(st.integers(0, 10**12)),
        kind=draw(st.sampled_from(["INTERNAL", "CLIENT", "SERVER"])),
        status_code=draw(st.sampled_from(["UNSET", "OK", "ERROR"])),
        status_message=draw(st.none() | st.text(max_size=10)),
        attributes=attributes,
        resource=draw(st.dictionaries(st.text(max_size=8), _json_scalars, max_size=3)),
        events=events,
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_records(), max_size=12))
def test_records_come_back_from_arrow_unchanged(records: list[SpanRecord]) -> None:
    table = exact_span_table(records)
    assert records_from_arrow(table) == records


def test_without_exact_times_records_come_back_at_microseconds() -> None:
    record = SpanRecord.create(trace_id="a" * 32, span_id="b" * 16, name="x",
                               start_time_ns=1_000_001_999, end_time_ns=2_000_000_500)
    (back,) = records_from_arrow(records_to_arrow([record]))
    assert (back.start_time_ns, back.end_time_ns) == (1_000_001_000, 2_000_000_000)
    assert back.attributes == record.attributes
    assert back.run_id == record.run_id


def test_the_fast_constructor_makes_the_same_record_as_the_dataclass() -> None:
    import dataclasses

    from driftwatch.core.records import make_span_record

    record = SpanRecord.create(trace_id="a" * 32, span_id="b" * 16, name="chat x",
                               start_time_ns=5, end_time_ns=9,
                               attributes={"driftwatch.turn": 3, "gen_ai.operation.name": "chat"},
                               events=(SpanEvent("e", 6, {"k": 1}),))
    values = [getattr(record, item.name) for item in dataclasses.fields(SpanRecord)]
    made = make_span_record(*values)
    assert made == record == SpanRecord(*values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.turn = 4  # type: ignore[misc]
