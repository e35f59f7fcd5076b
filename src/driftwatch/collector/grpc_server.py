"""OTLP/gRPC: the trace, logs and metrics export services (``driftwatch serve
--grpc-port``), on grpcio's asyncio server in the collector's event loop.

The services are the ones opentelemetry-proto defines (``…TraceService/Export``,
``…LogsService/Export``, ``…MetricsService/Export``); requests reach
:class:`~driftwatch.collector.signals.Signals` as the bytes sent, so they decode, store
and answer exactly as over HTTP: OK only once what a request carried is committed
(metrics: counted), ``partial_success`` for rejected items, ``INVALID_ARGUMENT`` for a
request that does not decode, ``UNAUTHENTICATED`` without the collector's token in the
``authorization: Bearer <token>`` metadata, ``UNAVAILABLE`` (the exporter retries) when
the queue or the memory budget is full or the store failed, ``RESOURCE_EXHAUSTED`` for
a message over the size limit (after decompression; grpcio enforces it). The server
listens on the HTTP server's address (loopback by default).
"""

# function-level imports: none; this module is imported only when --grpc-port is given
from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any, Final

import grpc

from driftwatch.collector.signals import SIGNALS, Signal, Signals
from driftwatch.core.logging import get_logger
from driftwatch.tracing.otlp import OtlpDecodeError

if TYPE_CHECKING:
    from driftwatch.collector.app import CollectorApp

__all__ = ["GrpcReceiver"]

log = get_logger(__name__)

# bytes reserved per request byte while decoding (as the HTTP app reserves)
_DECODE_FACTOR: Final = 3


class GrpcReceiver:
    """The gRPC server of one collector app (its signals, token, limits and budget)."""

    def __init__(self, app: CollectorApp) -> None:
        self._app = app
        self._signals: Signals = app._signals
        self._token = app._token
        self._server: Any = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        limit = self._app.limits.max_body_bytes
        server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ])
        server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler(signal.service, {
                "Export": grpc.unary_unary_rpc_method_handler(self._handler(signal)),
            })
            for signal in SIGNALS.values()
        ])
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bound = server.add_insecure_port(address)
        if not bound:
            raise OSError(f"cannot listen on {address} (gRPC)")
        await server.start()
        self._server, self.port = server, int(bound)
        return int(bound)

    async def stop(self, grace_s: float = 3.0) -> None:
        """Stop taking requests; those in progress get ``grace_s`` to be committed."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    def _handler(self, signal: Signal) -> Any:
        async def export(request: bytes, context: Any) -> bytes:
            code = "OK"
            try:
                return await self._export(signal, request, context)
            except _Refused as refused:
                code = refused.code.name
                await context.abort(refused.code, refused.message)
                raise  # pragma: no cover - abort raises
            finally:
                self._app._metrics.grpc_requests.labels(signal.name, code).inc()

        return export

    async def _export(self, signal: Signal, request: bytes, context: Any) -> bytes:
        self._authorize(context)
        budget = self._app.budget
        reserved = _DECODE_FACTOR * len(request)
        if not budget.reserve(reserved, reserved):
            self._app._metrics.budget_refusals.inc()
            raise _Refused(grpc.StatusCode.UNAVAILABLE, "memory budget full; retry later")
        try:
            try:
                export = self._signals.decode(signal, request, protobuf=True)
            except OtlpDecodeError as error:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
            del request
            future = self._signals.submit(signal, export)
            if future is None:
                raise _Refused(grpc.StatusCode.UNAVAILABLE, "ingest queue is full; retry later")
            try:
                await asyncio.wrap_future(future)
            except Exception as error:
                raise _Refused(grpc.StatusCode.UNAVAILABLE,
                               f"{signal.name} not stored ({error}); retry later") from None
        finally:
            budget.release(reserved)
        self._signals.acknowledged(signal, export)
        return self._signals.response(signal, export, protobuf=True)

    def _authorize(self, context: Any) -> None:
        if self._token is None:
            return
        given = b""
        for key, value in context.invocation_metadata() or ():
            if key.lower() == "authorization":
                given = value.encode() if isinstance(value, str) else bytes(value)
        scheme, _, credentials = given.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(),
                                                                  self._token):
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class _Refused(Exception):
    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
