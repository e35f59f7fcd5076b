"""The collector's HTTP surface, as one raw ASGI callable (served by uvicorn).

Routes:

- ``POST /v1/traces``: OTLP/HTTP, protobuf (``application/x-protobuf``) or JSON
  (``application/json``) bodies, optionally gzip. Answers as the OTLP specification
  says: 200 with an ``ExportTraceServiceResponse`` in the request's encoding (with
  ``partial_success`` when spans were rejected), 400 for a body that is not a trace
  request, 401 without the right bearer token, 413 for a body over the size limit
  (compressed or not), 415 for another content type or encoding, 503 with Retry-After
  when the ingest queue is full or the store failed (the client retries; retries store
  nothing twice). Errors carry a ``google.rpc.Status``.
- ``POST /v1/logs``: OTLP logs, the same encodings, limits and answers
  (``ExportLogsServiceResponse``); the records are stored and GenAI events joined to
  their spans (:mod:`driftwatch.collector.logs`).
- ``POST /v1/metrics``: OTLP metrics, the same encodings, limits and answers
  (``ExportMetricsServiceResponse``); data points are counted
  (``driftwatch_metric_points_received_total``), not stored.
- ``POST /v1/sql`` (``application/json`` only): ``{"sql": "...", "timeout_s": 30,
  "max_rows": 10000, "params": [...]}`` (``params``: values for ``?`` placeholders) →
  read-only user SQL on the live store, through the same guard
  as ``driftwatch sql``.
- ``GET /v1/findings/stream[?min_severity=low]``: findings as JSON lines, live.
- ``GET /metrics`` (Prometheus text), ``GET /healthz`` (no token needed).

Every route but ``/healthz`` needs ``Authorization: Bearer <token>`` when the collector
has a token. A 200 on ``/v1/traces`` (``/v1/logs``) means the spans (log records) are
committed to the store.

Before a body is read, in this order: the route (404/405), the Host and Origin checks
(403, :mod:`driftwatch.collector.origin`), the token (401), the content type (415), the
declared size (413) and the memory budget (503, :mod:`driftwatch.collector.budget`).
The body must arrive within ``body_timeout_s`` (else 408). Every error answer closes
the connection, so an unread body is not read on. Connection-level limits (idle and
slow sockets, head size, connections per client) are the guard's
(:mod:`driftwatch.collector.guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import pyarrow as pa

from driftwatch.collector.body import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    Held,
    HttpError,
    Receive,
    Scope,
    Send,
    header,
    parse_json,
    read_body,
)
from driftwatch.collector.budget import ByteBudget
from driftwatch.collector.guard import ConnectionGuard, GuardLimits
from driftwatch.collector.ingest import IngestQueue
from driftwatch.collector.metrics import CollectorMetrics
from driftwatch.collector.origin import RequestOrigin, is_loopback
from driftwatch.collector.signals import SIGNALS, Export, Signal, Signals
from driftwatch.collector.stream import FindingBroadcast
from driftwatch.core.errors import DriftwatchError
from driftwatch.core.logging import get_logger
from driftwatch.core.records import Severity
from driftwatch.tracing.otlp import OtlpDecodeError

__all__ = ["CollectorApp", "CollectorLimits", "GuardLimits"]

log = get_logger(__name__)

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
# Bytes reserved per body byte while decoding: a JSON body becomes Python objects and
# then Arrow columns, a protobuf body a message and then the columns (measured: a 15 MB
# one-span JSON body peaks near 3x its size during decoding).
_DECODE_FACTOR: Final = 3


@dataclass(frozen=True, slots=True)
class CollectorLimits:
    """Size limits and timeouts. ``max_body_bytes`` applies to the body as sent and,
    separately, after gunzip (a gzip bomb stops at the limit). ``max_inflight_bytes``
    bounds the memory of every request in flight together (bodies, decoding, decoded
    spans until acknowledged). ``allowed_hosts``/``allowed_origins``: see
    :mod:`driftwatch.collector.origin`; ``connections``: see
    :mod:`driftwatch.collector.guard`."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_inflight_bytes: int = 128 * 1024 * 1024
    monitor_inflight_bytes: int = 128 * 1024 * 1024
    body_timeout_s: float = 30.0
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    connections: GuardLimits = field(default_factory=GuardLimits)
    retry_after_s: int = 1
    sql_timeout_s: float = 30.0
    sql_max_rows: int = 100_000
    sql_memory_bytes: int = 512 * 1024 * 1024
    sql_max_result_bytes: int = 64 * 1024 * 1024
    stream_keepalive_s: float = 15.0
    stream_max_lines: int = 1000


class CollectorApp:
    """The ASGI application. ``query(sql, timeout_s, max_rows, params)`` runs user SQL (blocking;
    called in a worker thread) and returns ``(columns, rows, truncated)``.
    ``write_logs(table)`` stores a logs request's records on the writer thread (see
    :class:`~driftwatch.collector.logs.LogJoin`)."""

    def __init__(
        self,
        ingest: IngestQueue,
        *,
        metrics: CollectorMetrics,
        broadcast: FindingBroadcast,
        query: Callable[..., tuple[list[str], list[Any], bool]],
        token: str | None = None,
        limits: CollectorLimits | None = None,
        write_logs: Callable[[pa.Table], int] | None = None,
    ) -> None:
        self._ingest = ingest
        self._signals = Signals(ingest, metrics, write_logs or _no_log_store)
        self._metrics = metrics
        self._broadcast = broadcast
        self._query = query
        self._token = token.encode() if token else None
        self.limits = limits or CollectorLimits()
        self.stopping = False  # set by the server on shutdown: streams end
        self.budget = ByteBudget(self.limits.max_inflight_bytes)
        metrics.inflight_bytes.set_function(lambda: self.budget.used)
        self.guard = ConnectionGuard(
            self.limits.connections,
            on_refused=lambda reason: metrics.connections_refused.labels(reason).inc())
        self.origin = RequestOrigin(loopback=True, allowed_hosts=self.limits.allowed_hosts,
                                    allowed_origins=self.limits.allowed_origins)

    def bind(self, host: str) -> None:
        """The address the server listens on decides the Host policy (loopback or not)."""
        self.origin = RequestOrigin(loopback=is_loopback(host),
                                    allowed_hosts=self.limits.allowed_hosts,
                                    allowed_origins=self.limits.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        method = scope["method"]
        status = 500
        try:
            status = await self._route(path, method, scope, receive, send)
        except HttpError as error:
            status = error.status
            await _send_status(send, scope, error)
        finally:
            self._metrics.requests.labels(_path_label(path), str(status)).inc()
            self.guard.response_done(scope.get("client"))

    async def _route(self, path: str, method: str, scope: Scope, receive: Receive,
                     send: Send) -> int:
        if path == "/healthz":
            await _respond(send, 200, b"ok\n", "text/plain")
            return 200
        routes = {
            ("POST", "/v1/traces"): self._traces,
            ("POST", "/v1/logs"): self._logs,
            ("POST", "/v1/metrics"): self._metrics_export,
            ("POST", "/v1/sql"): self._sql,
            ("GET", "/v1/findings/stream"): self._stream,
            ("GET", "/metrics"): self._metrics_page,
        }
        handler = routes.get((method, path))
        if handler is None:
            known = {route_path for _, route_path in routes}
            if path in known:
                raise HttpError(405, INVALID_ARGUMENT, f"{method} is not allowed on {path}")
            raise HttpError(404, NOT_FOUND, f"no such path: {path}")
        refusal = self.origin.refusal(header(scope, b"host"), header(scope, b"origin"),
                                      header(scope, b"sec-fetch-site"))
        if refusal is not None:
            raise HttpError(403, PERMISSION_DENIED, refusal)
        self._authorize(scope)
        return await handler(scope, receive, send)

    def _authorize(self, scope: Scope) -> None:
        if self._token is None:
            return
        # RFC 9110: the scheme is case-insensitive; the credentials are not
        scheme, _, given = (header(scope, b"authorization") or b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self._token):
            raise HttpError(401, UNAUTHENTICATED, "missing or wrong bearer token",
                             ((b"www-authenticate", b"Bearer"),))

    # --- /v1/traces, /v1/logs, /v1/metrics ----------------------------------------------

    async def _traces(self, scope: Scope, receive: Receive, send: Send) -> int:
        return await self._export(SIGNALS["traces"], scope, receive, send)

    async def _logs(self, scope: Scope, receive: Receive, send: Send) -> int:
        return await self._export(SIGNALS["logs"], scope, receive, send)

    async def _metrics_export(self, scope: Scope, receive: Receive, send: Send) -> int:
        return await self._export(SIGNALS["metrics"], scope, receive, send)

    async def _export(self, signal: Signal, scope: Scope, receive: Receive, send: Send) -> int:
        content_type = _content_type(scope)
        if content_type not in (PROTOBUF, JSON):
            raise HttpError(415, INVALID_ARGUMENT,
                             f"unsupported content type {content_type or '(none)'!r}; "
                             f"use {PROTOBUF} or {JSON}")
        held = self._held()
        try:
            body = await read_body(scope, receive, held, self.limits.max_body_bytes,
                                   self.limits.body_timeout_s)
            held.reserve(_DECODE_FACTOR * len(body))
            export = self._decode(signal, body, content_type)
            # from here on the body and the decoding's garbage are gone: the table stays
            # until it is committed (and the spans handed to the monitors)
            del body
            held.release_all()
            if export.table is not None:
                held.reserve(export.table.nbytes)
            future = self._signals.submit(signal, export)
            if future is None:
                raise HttpError(503, UNAVAILABLE, "ingest queue is full; retry later",
                                 self._retry_after())
            try:
                await asyncio.wrap_future(future)
            except Exception as error:
                raise HttpError(503, UNAVAILABLE, f"{signal.name} not stored ({error}); "
                                 "retry later", self._retry_after()) from None
        finally:
            held.release_all()
        self._signals.acknowledged(signal, export)
        await _respond(send, 200, self._signals.response(signal, export,
                                                         content_type == PROTOBUF),
                       content_type)
        return 200

    def _retry_after(self) -> tuple[tuple[bytes, bytes], ...]:
        return ((b"retry-after", str(self.limits.retry_after_s).encode()),)

    def _held(self) -> Held:
        return Held(self.budget, self._retry_after(), self._metrics.budget_refusals.inc)

    def _decode(self, signal: Signal, body: bytes, content_type: str) -> Export:
        try:
            return self._signals.decode(signal, body, content_type == PROTOBUF)
        except OtlpDecodeError as error:
            raise HttpError(400, INVALID_ARGUMENT, str(error)) from None
        except RecursionError:
            raise HttpError(400, INVALID_ARGUMENT, "body nested too deeply") from None

    # --- /v1/sql -------------------------------------------------------------------------

    async def _sql(self, scope: Scope, receive: Receive, send: Send) -> int:
        if _content_type(scope) != JSON:
            raise HttpError(415, INVALID_ARGUMENT, f"/v1/sql takes {JSON} only")
        held = self._held()
        try:
            body = await read_body(scope, receive, held, self.limits.max_body_bytes,
                                   self.limits.body_timeout_s)
        finally:
            held.release_all()
        try:
            request = parse_json(body)
        except OtlpDecodeError as error:
            raise HttpError(400, INVALID_ARGUMENT, str(error)) from None
        sql = request.get("sql") if isinstance(request, dict) else None
        if not isinstance(sql, str):
            raise HttpError(400, INVALID_ARGUMENT, 'expected {"sql": "<one statement>"}')
        timeout = _number(request.get("timeout_s"), self.limits.sql_timeout_s)
        max_rows = int(_number(request.get("max_rows"), self.limits.sql_max_rows))
        params = request.get("params")
        if params is not None and not isinstance(params, list):
            raise HttpError(400, INVALID_ARGUMENT, '"params" must be a list')
        timeout = min(timeout, self.limits.sql_timeout_s)
        max_rows = max(0, min(max_rows, self.limits.sql_max_rows))
        try:
            columns, rows, truncated = await asyncio.to_thread(
                self._query, sql, timeout, max_rows, params
            )
        except DriftwatchError as error:
            raise HttpError(400, INVALID_ARGUMENT, str(error)) from None
        payload = {"columns": columns, "rows": [list(row) for row in rows],
                   "truncated": truncated}
        text = json.dumps(payload, default=str, ensure_ascii=False)
        await _respond(send, 200, text.encode(), JSON)
        return 200

    # --- /v1/findings/stream -------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> int:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            severity = Severity.parse(query.get("min_severity", ["info"])[0])
        except ValueError as error:
            raise HttpError(400, INVALID_ARGUMENT, str(error)) from None
        subscription = self._broadcast.subscribe(asyncio.get_running_loop(), severity)
        disconnected = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", NDJSON.encode()),
                                    (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            idle = 0.0
            while not self.stopping and not disconnected.done():
                try:
                    line = await asyncio.wait_for(subscription.queue.get(), 0.5)
                except TimeoutError:
                    idle += 0.5
                    if idle >= self.limits.stream_keepalive_s:
                        idle = 0.0
                        await send({"type": "http.response.body", "body": b"\n",
                                    "more_body": True})
                    continue
                idle = 0.0
                await send({"type": "http.response.body", "body": line, "more_body": True})
            if not disconnected.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write
            pass
        finally:
            self._broadcast.unsubscribe(subscription)
            disconnected.cancel()
        return 200

    # --- /metrics ------------------------------------------------------------------------

    async def _metrics_page(self, scope: Scope, receive: Receive, send: Send) -> int:
        body, content_type = self._metrics.render()
        await _respond(send, 200, body, content_type)
        return 200


def _no_log_store(table: pa.Table) -> int:
    raise RuntimeError("this collector stores no log records")


# --- helpers --------------------------------------------------------------------------------


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _content_type(scope: Scope) -> str:
    raw = header(scope, b"content-type") or b""
    return raw.split(b";", 1)[0].strip().lower().decode("latin-1")


def _path_label(path: str) -> str:
    known = ("/v1/traces", "/v1/logs", "/v1/metrics", "/v1/sql", "/v1/findings/stream",
             "/metrics", "/healthz")
    return path if path in known else "other"


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


async def _send_status(send: Send, scope: Scope, error: HttpError) -> None:
    """A ``google.rpc.Status`` body, protobuf when the request was protobuf."""
    if _content_type(scope) == PROTOBUF:
        # start-up: protobuf response types load on the first protobuf request
        from google.rpc.status_pb2 import Status

        body = bytes(Status(code=error.code, message=error.message).SerializeToString())
        content_type = PROTOBUF
    else:
        body = json.dumps({"code": error.code, "message": error.message}).encode()
        content_type = JSON
    # close: the client may still be sending a body nobody will read
    with contextlib.suppress(OSError, RuntimeError):
        await _respond(send, error.status, body, content_type,
                       (*error.headers, (b"connection", b"close")))


async def _respond(send: Send, status: int, body: bytes, content_type: str,
                   headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})
