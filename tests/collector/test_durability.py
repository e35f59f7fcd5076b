"""``kill -9`` in the middle of a stream, restart: every acknowledged span is stored
exactly once, and a client's retry of acknowledged spans stores nothing twice."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from serve_process import ServeProcess, wait_for

from driftwatch.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.network_loopback]

SPANS_PER_REQUEST = 64


def request_body(batch: int) -> tuple[bytes, list[tuple[str, str]]]:
    """One protobuf request of unique spans; returns it and its (trace, span) keys."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    trace = batch.to_bytes(16, "big")
    keys = []
    for index in range(1, SPANS_PER_REQUEST + 1):
        span = spans.add(trace_id=trace, span_id=index.to_bytes(8, "big"),
                         name="execute_tool shell", start_time_unix_nano=1_000 + index,
                         end_time_unix_nano=2_000 + index)
        attribute = span.attributes.add(key="gen_ai.operation.name")
        attribute.value.string_value = "execute_tool"
        keys.append((trace.hex(), index.to_bytes(8, "big").hex()))
    return request.SerializeToString(), keys


class Sender(threading.Thread):
    """Sends requests one after another until the server goes away; remembers which
    requests were acknowledged (200)."""

    def __init__(self, url: str, first_batch: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.batch = first_batch
        self.acked: list[int] = []

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                body, _ = request_body(self.batch)
                try:
                    response = client.post(f"{self.url}/v1/traces", content=body,
                                           headers={"content-type": "application/x-protobuf"})
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    self.acked.append(self.batch)
                self.batch += 1


def test_kill_9_mid_stream_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    rng = random.Random(5)
    acked: list[int] = []
    next_batch = 1
    for _ in range(3):
        server = ServeProcess(db, "--idle-timeout", "1")
        sender = Sender(server.url, next_batch)
        sender.start()
        assert wait_for(lambda s=sender: s.acked, timeout_s=60), "no request was acknowledged"
        time.sleep(rng.uniform(0.0, 1.5))  # then a random point in the stream
        server.kill()
        sender.join(30)
        assert not sender.is_alive()
        acked += sender.acked
        next_batch = sender.batch + 1
    server = ServeProcess(db)
    try:  # the client retries what it was told was stored: stored once anyway
        with httpx.Client(timeout=10) as client:
            for batch in acked[-3:]:
                response = client.post(f"{server.url}/v1/traces", content=request_body(batch)[0],
                                       headers={"content-type": "application/x-protobuf"})
                assert response.status_code == 200
    finally:
        server.stop()
    expected = {key for batch in acked for key in request_body(batch)[1]}
    with Store(db, read_only=True) as store:
        rows = store.query("select trace_id, span_id, count(*) from spans group by all").rows
    counts = {(trace, span): n for trace, span, n in rows}
    assert expected <= counts.keys()
    assert all(n == 1 for n in counts.values())
    # nothing half-written: every stored span belongs to a request that was sent whole
    stored_batches = {int(trace, 16) for trace, _ in counts}
    for batch in stored_batches:
        assert sum(1 for trace, _ in counts if int(trace, 16) == batch) == SPANS_PER_REQUEST
