"""The collector's connection guard: what uvicorn does not bound, bounded per connection.

uvicorn arms no timer on a new connection (an idle socket is kept forever), has no
header size limit with httptools, and counts idle sockets against ``limit_concurrency``
so a few hundred of them make it answer 503 to everyone. :class:`ConnectionGuard` wraps
uvicorn's HTTP protocol (``uvicorn.Config(http=guard.protocol_class())``, the public way
to give uvicorn a protocol class) and, before uvicorn sees a byte:

- refuses a connection (closes it) past ``max_connections_per_client`` from one
  address;
- at ``max_connections`` in all, closes the oldest connection that is not serving a
  request to make room (an idle or half-sent one), so a well-behaved client that
  connects during a flood is served;
- closes a connection whose request head (request line and headers) is not complete
  ``header_timeout_s`` after its first byte, or after the connection opened (slowloris,
  idle sockets);
- answers 431 and closes when a request head grows past ``max_header_bytes``;
- closes a connection that opens with the HTTP/2 preface (gRPC sent to the HTTP port)
  and logs a one-line hint (``--grpc-port``; or the exporter's ``http/protobuf``
  protocol), where uvicorn would only log "Invalid HTTP request received".

The body is the ASGI app's part (:mod:`driftwatch.collector.app` reads it under a
deadline and after authentication); the app tells the guard when a response is done
(:meth:`ConnectionGuard.response_done`), which re-arms the head timer for the next
request on a kept-alive connection. Event-loop thread only.
"""

# function-level imports: optional dependency — uvicorn is the [collector] extra
from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from driftwatch.core.logging import get_logger

__all__ = ["ConnectionGuard", "GuardLimits"]

log = get_logger(__name__)

_HEAD_END: Final = b"\r\n\r\n"
_HTTP2_PREFACE: Final = b"PRI * HTTP/2.0"
_HINT_EVERY_S: Final = 60.0  # one hint a minute at most: a retrying exporter reconnects often
_TOO_LARGE: Final = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                     b"content-type: text/plain\r\ncontent-length: 28\r\n"
                     b"connection: close\r\n\r\nrequest header is too large\n")
# connection states
_HEAD: Final = "head"  # waiting for a complete request head (timer armed)
_BUSY: Final = "busy"  # head complete: the app has the request (body, response)
_IDLE: Final = "idle"  # response sent, kept alive (uvicorn's keep-alive timer)


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Per-connection bounds (see the module docstring)."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 32 * 1024
    max_connections: int = 1024
    max_connections_per_client: int = 64


class ConnectionGuard:
    """Shared state of every guarded connection of one server. ``on_refused(reason)``
    counts connections closed by the guard (``per_client``, ``evicted``,
    ``header_timeout``, ``header_too_large``)."""

    def __init__(self, limits: GuardLimits | None = None,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self.limits = limits or GuardLimits()
        self._on_refused = on_refused or (lambda reason: None)
        self._by_client: Counter[str] = Counter()
        self._live: dict[tuple[Any, ...], _Guarded] = {}
        self._hinted_at = -_HINT_EVERY_S
        self.http2_refused = 0

    @property
    def connections(self) -> int:
        return len(self._live)

    def protocol_class(self, inner: str = "httptools") -> type[asyncio.Protocol]:
        """A protocol class for ``uvicorn.Config(http=...)`` that wraps uvicorn's own
        ``inner`` implementation (``httptools`` or ``h11``)."""
        inner_class: type[asyncio.Protocol]
        if inner == "h11":
            from uvicorn.protocols.http.h11_impl import H11Protocol

            inner_class = H11Protocol
        else:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            inner_class = HttpToolsProtocol
        guard = self

        class GuardedHttp(_Guarded):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(guard, inner_class(*args, **kwargs))

        return GuardedHttp

    def response_done(self, client: Any) -> None:
        """The app finished a response on the connection from ``client`` (the ASGI
        scope's ``client``): the next request's head is timed again."""
        if client is None:
            return
        connection = self._live.get(tuple(client))
        if connection is not None:
            connection.response_done()

    # --- called by the connections -------------------------------------------------------

    def _admit(self, connection: _Guarded) -> bool:
        limits = self.limits
        if self._by_client[connection.address] >= limits.max_connections_per_client:
            self._on_refused("per_client")
            return False
        if len(self._live) >= limits.max_connections and not self._evict_one():
            self._on_refused("evicted")
            return False
        self._by_client[connection.address] += 1
        self._live[connection.peer] = connection
        return True

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest without a request in service."""
        waiting = [c for c in self._live.values() if c.state != _BUSY]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.since)
        self._on_refused("evicted")
        oldest.abort()
        return True

    def _forget(self, connection: _Guarded) -> None:
        if self._live.get(connection.peer) is connection:
            del self._live[connection.peer]
            self._by_client[connection.address] -= 1
            if self._by_client[connection.address] <= 0:
                del self._by_client[connection.address]

    def _refused(self, reason: str) -> None:
        self._on_refused(reason)

    def _http2(self, address: str) -> None:
        self.http2_refused += 1
        self._on_refused("http2")
        now = time.monotonic()
        if now - self._hinted_at >= _HINT_EVERY_S:
            self._hinted_at = now
            log.warning("an OTLP/gRPC (HTTP/2) client connected to the OTLP/HTTP port; start "
                        "`driftwatch serve --grpc-port 4317` and point it there, or set "
                        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", client=address)


class _Guarded(asyncio.Protocol):
    """One connection: forwards everything to uvicorn's protocol, watching the heads."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._tail = b""
        self.state = _HEAD
        self.since = time.monotonic()
        self.peer: tuple[Any, ...] = ()
        self.address = ""
        self._admitted = False

    # asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = tuple(peer) if isinstance(peer, tuple | list) else (str(peer),)
        self.address = str(self.peer[0]) if self.peer else ""
        if not self._guard._admit(self):
            transport.abort()
            return
        self._admitted = True
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted or self._transport is None or self._transport.is_closing():
            return
        if self.state == _IDLE:
            self._enter(_HEAD)
            self._arm()
        if (self.state == _HEAD and self._head_bytes == 0 and not self._tail
                and data.startswith(_HTTP2_PREFACE[:len(data)]) and len(data) >= 3):
            self._guard._http2(self.address)
            self._transport.close()
            self._disarm()
            return
        if self.state == _HEAD and not self._watch_head(data):
            return
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if not self._admitted:
            return None
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard._forget(self)
        if self._admitted:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    # the guard ----------------------------------------------------------------------------

    def response_done(self) -> None:
        if self.state == _BUSY:
            self._enter(_IDLE)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _watch_head(self, data: bytes) -> bool:
        """Count head bytes until the blank line; False when the connection was closed."""
        window = self._tail + data
        end = window.find(_HEAD_END)
        if end >= 0:
            self._head_bytes += end + len(_HEAD_END) - len(self._tail)
        else:
            self._head_bytes += len(data)
        if self._head_bytes > self._guard.limits.max_header_bytes:
            self._guard._refused("header_too_large")
            assert self._transport is not None
            self._transport.write(_TOO_LARGE)
            self._transport.close()
            self._disarm()
            return False
        if end >= 0:
            self._enter(_BUSY)
            self._disarm()
        else:
            self._tail = window[-(len(_HEAD_END) - 1):]
        return True

    def _enter(self, state: str) -> None:
        self.state = state
        self.since = time.monotonic()
        self._head_bytes = 0
        self._tail = b""

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.limits.header_timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timeout(self) -> None:
        self._timer = None
        if self.state == _HEAD and self._transport is not None:
            self._guard._refused("header_timeout")
            self._transport.abort()
