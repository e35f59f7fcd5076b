"""OTLP/gRPC (``serve --grpc-port``): the SDK's gRPC exporters, the token in the
metadata, ``kill -9`` loses no acknowledged span, and gRPC sent to the HTTP port gets a
one-line hint in the collector's log."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from serve_process import ServeProcess, wait_for
from test_durability import SPANS_PER_REQUEST, request_body

from driftwatch.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.network_loopback]

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _export(channel: grpc.Channel, method: str, body: bytes,
            metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    call = channel.unary_unary(method)  # raw bytes both ways
    return bytes(call(body, metadata=metadata, timeout=10))


def test_the_token_is_checked_in_the_metadata(tmp_path: Path) -> None:
    port = free_port()
    server = ServeProcess(tmp_path / "c.duckdb", "--grpc-port", str(port), "--token", "tok")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            body, keys = request_body(7)
            with pytest.raises(grpc.RpcError) as refused:
                _export(channel, TRACE_EXPORT, body)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as wrong:
                _export(channel, TRACE_EXPORT, body, (("authorization", "Bearer nope"),))
            assert wrong.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert _export(channel, TRACE_EXPORT, body, (("authorization", "Bearer tok"),)) == b""
            with pytest.raises(grpc.RpcError) as invalid:
                _export(channel, LOGS_EXPORT, b"\xff\x00junk", (("authorization", "Bearer tok"),))
            assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert _export(channel, LOGS_EXPORT, ExportLogsServiceRequest().SerializeToString(),
                           (("authorization", "Bearer tok"),)) == b""
        # the SDK's own gRPC exporter, with its headers option
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{port}", insecure=True,
            headers=(("authorization", "Bearer tok"),))))
        with provider.get_tracer("agent").start_as_current_span("chat x"):
            pass
        provider.shutdown()
    finally:
        server.stop()
    with Store(tmp_path / "c.duckdb", read_only=True) as store:
        assert store.query("select count(*) from spans").scalar() == len(keys) + 1


class GrpcSender(threading.Thread):
    """Sends requests until the server goes away; remembers the acknowledged ones."""

    def __init__(self, port: int, first_batch: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.batch = first_batch
        self.acked: list[int] = []

    def run(self) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            while True:
                try:
                    _export(channel, TRACE_EXPORT, request_body(self.batch)[0])
                except grpc.RpcError:
                    return
                self.acked.append(self.batch)
                self.batch += 1


def test_kill_9_mid_grpc_stream_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    rng = random.Random(7)
    acked: list[int] = []
    next_batch = 1
    for _ in range(3):
        port = free_port()
        server = ServeProcess(db, "--idle-timeout", "1", "--grpc-port", str(port))
        sender = GrpcSender(port, next_batch)
        sender.start()
        assert wait_for(lambda s=sender: s.acked, timeout_s=60), "no request was acknowledged"
        time.sleep(rng.uniform(0.0, 1.5))
        server.kill()
        sender.join(30)
        assert not sender.is_alive()
        acked += sender.acked
        next_batch = sender.batch + 1
    expected = {key for batch in acked for key in request_body(batch)[1]}
    with Store(db, read_only=True) as store:
        rows = store.query("select trace_id, span_id, count(*) from spans group by all").rows
    counts = {(trace, span): n for trace, span, n in rows}
    assert expected <= counts.keys()
    assert all(n == 1 for n in counts.values())
    for batch in {int(trace, 16) for trace, _ in counts}:
        assert sum(1 for trace, _ in counts if int(trace, 16) == batch) == SPANS_PER_REQUEST


def test_grpc_on_the_http_port_logs_a_hint(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "c.duckdb")
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as refused:
                _export(channel, TRACE_EXPORT, request_body(1)[0])
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        metrics = server.metrics()
    finally:
        _, err = server.stop()
    hints = [line for line in err.splitlines() if "--grpc-port" in line]
    assert len(hints) == 1, err
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in hints[0]
    assert "Invalid HTTP request received" not in err
    assert 'driftwatch_connections_refused_total{reason="http2"}' in metrics
