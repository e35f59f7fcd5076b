"""Reading a request: its headers, its body under the size limit, the memory budget and
the body deadline, and the error every refusal becomes (an HTTP status and a
``google.rpc.Status`` code)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from driftwatch.collector.budget import ByteBudget
from driftwatch.tracing.otlp import OtlpDecodeError

__all__ = ["Held", "HttpError", "header", "parse_json", "read_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# google.rpc.Code values used in error bodies
INVALID_ARGUMENT: Final = 3
RESOURCE_EXHAUSTED: Final = 8
UNAVAILABLE: Final = 14
UNAUTHENTICATED: Final = 16
NOT_FOUND: Final = 5
PERMISSION_DENIED: Final = 7
DEADLINE_EXCEEDED: Final = 4


class HttpError(Exception):
    def __init__(self, status: int, code: int, message: str,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class Held:
    """What one request holds of the budget (released in its ``finally``)."""

    def __init__(self, budget: ByteBudget, retry_after: tuple[tuple[bytes, bytes], ...],
                 on_refused: Callable[[], None]) -> None:
        self._budget = budget
        self._retry_after = retry_after
        self._on_refused = on_refused
        self.size = 0

    def reserve(self, size: int) -> None:
        """Take ``size`` more bytes, or answer 503 with Retry-After."""
        if not self._budget.reserve(size, self.size + size):
            self._on_refused()
            raise HttpError(503, UNAVAILABLE, "collector memory budget is in use; retry "
                            "later", self._retry_after)
        self.size += max(0, size)

    def release_all(self) -> None:
        self._budget.release(self.size)
        self.size = 0


async def read_body(scope: Scope, receive: Receive, held: Held, limit: int,
                timeout_s: float) -> bytes:
    """The body, under the size limit, the memory budget and the body deadline."""
    encoding = (header(scope, b"content-encoding") or b"identity").strip().lower()
    if encoding not in (b"identity", b"", b"gzip"):
        raise HttpError(415, INVALID_ARGUMENT,
                         f"unsupported content encoding {encoding.decode(errors='replace')!r}")
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise HttpError(413, RESOURCE_EXHAUSTED, f"body over {limit} bytes")
        held.reserve(int(declared))  # before a byte of it is read
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise HttpError(408, DEADLINE_EXCEEDED, "request body not received within "
                             f"{timeout_s:g} s") from None
        if message["type"] == "http.disconnect":
            raise HttpError(400, INVALID_ARGUMENT, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, RESOURCE_EXHAUSTED, f"body over {limit} bytes")
        if size > held.size:  # no (or a wrong) Content-Length: reserve as it comes
            held.reserve(size - held.size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    del chunks
    if encoding == b"gzip":
        body = gunzip(body, limit)
        held.reserve(len(body))
    return body



def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes: a bomb is refused without being expanded."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise HttpError(413, RESOURCE_EXHAUSTED, f"body over {limit} bytes once inflated")
        out += inflater.flush()
    except zlib.error as error:
        raise HttpError(400, INVALID_ARGUMENT, f"bad gzip body: {error}") from None
    if len(out) > limit:
        raise HttpError(413, RESOURCE_EXHAUSTED, f"body over {limit} bytes once inflated")
    if not inflater.eof or inflater.unused_data:
        raise HttpError(400, INVALID_ARGUMENT, "bad gzip body: truncated or trailing data")
    return out


def parse_json(body: bytes) -> Any:
    """orjson refuses lone surrogates and invalid UTF-8, so no such string gets in."""
    import orjson  # start-up: only a JSON body needs orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise OtlpDecodeError(f"body is not valid JSON: {error}") from None


