"""A loopback webhook for sink tests, and helpers to read what the store recorded."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from driftwatch.core import Finding
from driftwatch.store import Store


@dataclass(frozen=True)
class Reply:
    """One scripted webhook answer: a status (with ``Retry-After``), or a delay before
    answering 200 (so a client with a shorter timeout gives up first)."""

    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    body: str = "ok"


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


class WebhookServer:
    """A loopback webhook on a thread per connection. Answers the n-th POST with
    ``script[n]`` and 200 after the script ends; ``received`` holds every request (a
    delayed one too). ``stop()`` and ``start()`` take it down and up on the same port."""

    def __init__(self, script: list[Reply] | None = None, port: int = 0) -> None:
        self.script = list(script or [])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookServer:
        self._closing.clear()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = owner._take(json.loads(raw or b"{}"), dict(self.headers.items()))
                if reply.delay_s:
                    owner._closing.wait(reply.delay_s)
                body = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    if reply.retry_after is not None:
                        self.send_header("Retry-After", reply.retry_after)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout) and closed
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _take(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            index = len(self.received)
            self.received.append(Received(body, headers, time.monotonic()))
            return self.script[index] if index < len(self.script) else Reply()

    @property
    def texts(self) -> list[str]:
        with self._lock:
            return [str(item.body.get("text")) for item in self.received]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def store_finding(store: Store, finding: Finding) -> Finding:
    """Store ``finding`` as the engine would before handing it to sinks."""
    store.write_findings([finding])
    return finding


def alert_rows(store: Store, sink: str = "webhook") -> list[tuple[Any, ...]]:
    """(finding_id, status, attempts) of one sink's alerts, by finding_id."""
    return store.query(
        "SELECT finding_id, status, attempts FROM alerts WHERE sink = ? ORDER BY finding_id",
        [sink],
    ).rows


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
