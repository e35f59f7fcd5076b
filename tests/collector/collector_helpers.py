"""Collector test helpers: an in-process collector on a temp database, an ASGI caller,
and OTLP request builders."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

from driftwatch.alert import AlertConfig
from driftwatch.collector import Collector, CollectorConfig, CollectorLimits
from driftwatch.monitor import RulePackMonitor

DATA = Path(__file__).parent / "data"
POLICY = DATA / "agent-policy.yaml"
TOKEN = "s3cret-token"


def make_collector(tmp_path: Path, **overrides: Any) -> Collector:
    limits = overrides.pop("limits", CollectorLimits(max_body_bytes=64 * 1024))
    config = CollectorConfig(db=tmp_path / "c.duckdb", alerts=AlertConfig(), limits=limits,
                             **overrides)
    return Collector(config, monitors=[RulePackMonitor([POLICY])])


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: Any, method: str, path: str, body: bytes = b"",
         headers: dict[str, str | None] | None = None, query: str = "") -> Response:
    """One request through the ASGI app, in a fresh event loop (a header given as None
    is left out)."""
    given = {"host": "127.0.0.1:4318", **(headers or {})}  # what any HTTP/1.1 client sends
    scope = {"type": "http", "method": method, "path": path,
             "query_string": query.encode(), "client": ("127.0.0.1", 50000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in given.items()
                         if v is not None]}
    sent: list[dict[str, Any]] = []
    chunks = [body[i:i + 8192] for i in range(0, len(body), 8192)] or [b""]

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    headers_out = {k.decode(): v.decode() for k, v in start["headers"]}
    return Response(start["status"], headers_out,
                    b"".join(m.get("body", b"") for m in sent[1:]))


def attribute(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def shell_span(n: int, command: str, *, trace: str = "ab" * 16, run: str = "run-a",
               parent: str | None = "f" * 16) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": trace, "spanId": f"{n:016x}", "name": "execute_tool shell",
        "startTimeUnixNano": str(1_767_225_600_000_000_000 + n * 1000),
        "endTimeUnixNano": str(1_767_225_600_000_000_000 + n * 1000 + 500),
        "attributes": [attribute("gen_ai.operation.name", "execute_tool"),
                       attribute("gen_ai.tool.name", "shell"),
                       attribute("gen_ai.tool.call.arguments", json.dumps({"command": command})),
                       attribute("gen_ai.conversation.id", run),
                       attribute("driftwatch.turn", n)],
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def json_body(*spans: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"spans": list(spans)}]}]}).encode()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)
