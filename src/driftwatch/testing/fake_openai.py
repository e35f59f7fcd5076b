"""A loopback fake of the OpenAI chat-completions endpoint, for tests of the real HTTP path.

:class:`FakeOpenAIServer` binds ``127.0.0.1`` on a free port and answers each
``POST /v1/chat/completions`` with the next item of its script: either a success (a dict,
see :func:`completion_body`) or a :class:`Fault` (an HTTP error status, optionally with
``Retry-After``; a delay long enough to provoke a client timeout; a dropped connection).
Streaming is not supported. Nothing leaves the machine.

Thread-safety: requests are served on a thread per connection; the script advances under a
lock, so concurrent clients each consume exactly one item. ``requests`` may be read from
the test thread at any time (it is appended to under the same lock).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = ["FakeOpenAIServer", "Fault", "completion_body"]

_COMPLETIONS_PATH = "/v1/chat/completions"
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True)
class Fault:
    """A scripted failure. Build with :meth:`status`, :meth:`delay` or :meth:`disconnect`."""

    kind: Literal["status", "delay", "disconnect"]
    status_code: int = 500
    retry_after: float | None = None
    message: str = ""
    seconds: float = 0.0
    then: Mapping[str, Any] | None = None

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, message: str = "") -> Fault:
        """Answer with HTTP ``code`` and an OpenAI-style error body; ``retry_after`` (seconds)
        becomes a ``Retry-After`` header."""
        return cls(
            "status",
            status_code=code,
            retry_after=retry_after,
            message=message or f"fake error {code}",
        )

    @classmethod
    def delay(cls, seconds: float, then: Mapping[str, Any] | None = None) -> Fault:
        """Wait ``seconds`` before answering with ``then`` (default: a short text reply), so a
        client with a shorter timeout gives up first."""
        return cls("delay", seconds=seconds, then=then)

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls("disconnect")


def completion_body(
    item: Mapping[str, Any], request: Mapping[str, Any], index: int
) -> dict[str, Any]:
    """Build a ``chat.completion`` body from a scripted success ``item``.

    An item holding ``choices`` is returned as is. Otherwise it is shorthand with optional
    keys ``content`` (str), ``tool_calls`` (list of ``{"name", "arguments", "id"?}``, where
    ``arguments`` is a dict or a JSON string), ``finish_reason``, ``usage``
    (``{"prompt_tokens", "completion_tokens"}``), ``model`` and ``id``.
    """
    if "choices" in item:
        return dict(item)
    tool_calls = [
        {
            "id": str(call.get("id", f"call_{index}_{position}")),
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": call["arguments"]
                if isinstance(call.get("arguments"), str)
                else json.dumps(call.get("arguments", {})),
            },
        }
        for position, call in enumerate(item.get("tool_calls", []))
    ]
    message: dict[str, Any] = {"role": "assistant", "content": item.get("content")}
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = dict(item.get("usage", {"prompt_tokens": 11, "completion_tokens": 7}))
    usage.setdefault(
        "total_tokens", usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    )
    return {
        "id": item.get("id", f"chatcmpl-fake-{index}"),
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": item.get("model", request.get("model", "fake-model")),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": item.get("finish_reason", "tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage,
    }


@dataclass
class _State:
    script: list[Fault | Mapping[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closing: threading.Event = field(default_factory=threading.Event)

    def take(
        self, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Fault | Mapping[str, Any] | None]:
        with self.lock:
            index = len(self.requests)
            self.requests.append(body)
            self.headers.append(headers)
            return index, self.script[index] if index < len(self.script) else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # tests read .requests; access logs would only add noise

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != _COMPLETIONS_PATH:
            self._send_error(404, f"no route {self.path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_error(400, "body is not JSON")
            return
        state = self.server.state
        index, item = state.take(body, dict(self.headers.items()))
        if item is None:
            self._send_error(400, "fake OpenAI server: script exhausted")
        elif isinstance(item, Fault):
            self._fault(item, body, index)
        else:
            self._send_json(200, completion_body(item, body, index))

    def _fault(self, fault: Fault, body: dict[str, Any], index: int) -> None:
        if fault.kind == "disconnect":
            self.close_connection = True
            return
        if fault.kind == "delay":
            # interruptible, so leaving the context manager does not wait for it
            self.server.state.closing.wait(fault.seconds)
            then = fault.then if fault.then is not None else {"content": "late reply"}
            self._send_json(200, completion_body(then, body, index))
            return
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        self._send_error(fault.status_code, fault.message, headers)

    def _send_error(
        self, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        error = {
            "message": message,
            "type": _ERROR_TYPES.get(code, "server_error"),
            "param": None,
            "code": None,
        }
        self._send_json(code, {"error": error}, headers)

    def _send_json(
        self, code: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(code, _REASONS.get(code))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout); nothing to tell it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hangs up mid-request is expected in fault tests


class FakeOpenAIServer:
    """Context manager: a scripted OpenAI-compatible server on ``127.0.0.1``.

    ``base_url`` ends in ``/v1`` (pass it as ``api_base``); ``requests`` holds the JSON body
    of every chat-completions request received, in arrival order. A request past the end of
    the script gets a 400 "script exhausted" error. Raises ``RuntimeError`` when used before
    ``__enter__``.
    """

    def __init__(self, script: Iterable[Fault | Mapping[str, Any]] = ()) -> None:
        self._state = _State(list(script))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        with self._state.lock:
            return list(self._state.headers)

    def __enter__(self) -> FakeOpenAIServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._state.closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
