"""The real thing: opentelemetry-instrumentation-openai-v2 in its event modes drives the
official openai client against the loopback fake server and exports traces and logs
with the SDK's batch processors, over OTLP/HTTP and OTLP/gRPC, to ``driftwatch serve``
(a subprocess). The message content, sent only as GenAI events, is in the chat span's
messages and the monitors flag the tool call it asked for."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_process import ServeProcess

from driftwatch.store import Store
from driftwatch.testing.fake_openai import FakeOpenAIServer


def _absent(name: str) -> bool:
    try:  # find_spec imports the parents: a missing parent package raises
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True


_MISSING = [name for name in ("opentelemetry.instrumentation.openai_v2",
                              "opentelemetry.util.genai",
                              "opentelemetry.exporter.otlp.proto.grpc") if _absent(name)]
if _MISSING and os.environ.get("DRIFTWATCH_CONFORMANCE") == "1":  # .ci/run's step
    raise RuntimeError(f"conformance extra missing: {', '.join(_MISSING)}")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.network_loopback,
    pytest.mark.skipif(bool(_MISSING), reason="the conformance extra is not installed "
                       f"(pip install -e '.[conformance]'); missing: {', '.join(_MISSING)}"),
]

HERE = Path(__file__).parent
PACK = """\
pack: proposed-rm
rules:
  - id: proposed-rm
    severity: high
    when: >-
      operation = 'chat'
      AND regexp_matches(coalesce(CAST(output_messages AS VARCHAR), ''), 'rm -rf')
    message: "the model asked for rm -rf"
"""
MODES = {
    # util-genai's current conventions: one gen_ai.client.inference.operation.details event
    "event_only": {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                   "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only"},
    # both: the content is in the span and in the event (the span's own wins)
    "span_and_event": {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
                       "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event"},
}
# The older per-message events (gen_ai.user.message, gen_ai.choice) are not reachable
# with the pinned openai-v2 2.4b0 + util-genai 1.1b0 (its legacy path refuses "true"
# as a capture mode); tests/collector/test_otlp_logs.py sends those shapes with the SDK.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _texts(messages: list[dict[str, object]]) -> str:
    return json.dumps(messages)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("mode", list(MODES))
def test_openai_v2_event_content_reaches_the_span_and_the_monitors(
        tmp_path: Path, mode: str, protocol: str) -> None:
    pack = tmp_path / "proposed-rm.yaml"
    pack.write_text(PACK)
    grpc_port = free_port()
    db = tmp_path / "c.duckdb"
    server = ServeProcess(db, "--grpc-port", str(grpc_port), "--pack", str(pack))
    try:
        script = [{"content": "Clearing the cache.",
                   "tool_calls": [{"name": "shell", "arguments": {"command": "rm -rf /var/cache"},
                                   "id": "call_7"}]}]
        with FakeOpenAIServer(script) as fake:
            endpoint = server.url if protocol == "http" else f"http://127.0.0.1:{grpc_port}"
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith("OTEL_")}
            agent = subprocess.run(
                [sys.executable, str(HERE / "openai_v2_agent.py"), protocol, endpoint,
                 fake.base_url], env={**env, **MODES[mode]}, capture_output=True, text=True,
                timeout=120, check=False)
        assert agent.returncode == 0, agent.stderr
        assert "Failed to export" not in agent.stderr
        assert "error" not in agent.stderr.lower()
        trace_id = agent.stdout.strip()
    finally:
        server.stop()
    with Store(db, read_only=True) as store:
        attributes = json.loads(store.query(
            "select attributes from spans where trace_id = ? and operation = 'chat'",
            [trace_id]).scalar())
        events = store.query("select event_name from logs where trace_id = ?",
                             [trace_id]).column("event_name")
        findings = store.query("select rule_id from findings where trace_id = ?",
                               [trace_id]).column("rule_id")
    inputs = json.loads(attributes["gen_ai.input.messages"])
    outputs = json.loads(attributes["gen_ai.output.messages"])
    assert "Never delete files." in _texts(inputs)
    assert "Free some disk space." in _texts(inputs)
    calls = [part for message in outputs for part in message["parts"]
             if part["type"] == "tool_call"]
    assert [(call["name"], call["arguments"]) for call in calls] == [
        ("shell", {"command": "rm -rf /var/cache"})]
    assert ("driftwatch.content.from_logs" in attributes) == (mode == "event_only")
    assert events  # stored as sent, too
    assert findings == ["proposed-rm"]
