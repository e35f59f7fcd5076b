"""SDK spans → SpanRecords: hex ids, kind and status names, plain attribute values."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode

from driftwatch.core import semconv as sc
from driftwatch.testing import RecordingConsumer
from driftwatch.tracing import SequentialIdGenerator, setup_tracing


def test_finished_span_becomes_a_normalised_record(recording: RecordingConsumer) -> None:
    provider = setup_tracing(
        [recording],
        otlp=False,
        id_generator=SequentialIdGenerator(),
        resource_attributes={"deployment.environment": "test"},
    )
    tracer = provider.get_tracer("test")
    attributes = {
        sc.DW_RUN_ID: "run-1",
        sc.DW_TURN: 2,
        sc.GEN_AI_OPERATION_NAME: "chat",
        "gen_ai.system": "openai",  # an alias, normalised on the way in
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop", "length"),
    }
    with (
        tracer.start_as_current_span("invoke_agent demo"),
        tracer.start_as_current_span(
            "chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes
        ) as span,
    ):
        span.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "rule"})
        span.set_status(Status(StatusCode.ERROR, "model refused"))
    provider.shutdown()

    child, root = recording.records
    assert root.trace_id == "00000000000000000000000000000001"
    assert root.span_id == "0000000000000001"
    assert root.parent_span_id is None
    assert child.span_id == "0000000000000002"
    assert child.parent_span_id == root.span_id
    assert child.kind == "CLIENT"
    assert root.kind == "INTERNAL"
    assert (child.status_code, child.status_message) == ("ERROR", "model refused")
    assert root.status_code == "UNSET"
    assert child.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop", "length"]
    assert (child.run_id, child.turn, child.provider, child.model) == (
        "run-1",
        2,
        "openai",
        "gpt-4o",
    )
    assert child.resource["service.name"] == "driftwatch"
    assert child.resource["deployment.environment"] == "test"
    (event,) = child.events
    assert event.name == "gen_ai.evaluation.result"
    assert event.attributes == {"gen_ai.evaluation.name": "rule"}
    assert child.start_time_ns <= child.end_time_ns
    assert root.run_id == root.trace_id  # no run attribute: the trace is the run
