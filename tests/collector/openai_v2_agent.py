"""Someone else's agent: the official ``openai`` client instrumented by
opentelemetry-instrumentation-openai-v2, exporting traces and logs with the SDK's batch
processors over OTLP (``http`` or ``grpc``), nothing from driftwatch. The content mode
comes from the environment (OTEL_SEMCONV_STABILITY_OPT_IN,
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT), as a user would set it.

Usage: openai_v2_agent.py PROTOCOL OTLP_ENDPOINT OPENAI_BASE_URL. Prints the trace id.
"""

from __future__ import annotations

import sys

import openai
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main(protocol: str, endpoint: str, base_url: str) -> None:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        log_exporter = OTLPLogExporter(endpoint=endpoint, insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # type: ignore[assignment]
            OTLPLogExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )

        span_exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
        log_exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs")
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    OpenAIInstrumentor().instrument(tracer_provider=tracer_provider,
                                    logger_provider=logger_provider)
    client = openai.OpenAI(base_url=base_url, api_key="not-a-key", max_retries=0)
    tracer = tracer_provider.get_tracer("ops-agent")
    with tracer.start_as_current_span("invoke_agent ops-agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "system", "content": "Never delete files."},
            {"role": "user", "content": "Free some disk space."},
        ], tools=[{"type": "function", "function": {
            "name": "shell", "parameters": {"type": "object", "properties": {
                "command": {"type": "string"}}}}}])
        trace_id = format(root.get_span_context().trace_id, "032x")
    # the shutdown order of a careful user: logs first, so the events precede the spans
    logger_provider.shutdown()
    tracer_provider.shutdown()
    print(trace_id)


if __name__ == "__main__":
    main(*sys.argv[1:4])
