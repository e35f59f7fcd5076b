"""A stand-in for someone else's agent: the official OpenTelemetry SDK and OTLP/HTTP
exporter, nothing from driftwatch. Usage: otel_agent.py ENDPOINT TOKEN CONVERSATION_ID.
Prints the wall-clock time at which the violating tool call ended."""

from __future__ import annotations

import json
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind


def main(endpoint: str, token: str, conversation: str) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    provider = TracerProvider(resource=Resource.create({"service.name": "ops-agent"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, headers=headers), schedule_delay_millis=50))
    tracer = provider.get_tracer("ops-agent")
    violation_at = 0.0
    with tracer.start_as_current_span("invoke_agent ops-agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "ops-agent")
        root.set_attribute("gen_ai.conversation.id", conversation)
        for turn, command in enumerate(["ls /var/data", "du -sh /var/data",
                                        "rm -rf /var/data"], start=1):
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.request.model", "gpt-4o")
                chat.set_attribute("gen_ai.system", "openai")
                chat.set_attribute("gen_ai.conversation.id", conversation)
                chat.set_attribute("driftwatch.turn", turn)
            with tracer.start_as_current_span("execute_tool shell") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "shell")
                tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"command": command}))
                tool.set_attribute("gen_ai.conversation.id", conversation)
                tool.set_attribute("driftwatch.turn", turn)
            violation_at = time.time()
            time.sleep(0.05)
    provider.force_flush()
    provider.shutdown()
    print(violation_at)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
