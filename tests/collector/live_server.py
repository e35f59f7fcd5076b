"""A collector served by uvicorn in a thread of this process, on a free loopback port,
configured exactly as ``driftwatch serve`` configures it (``uvicorn_config``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from driftwatch.collector import Collector
from driftwatch.collector.server import uvicorn_config


@contextmanager
def served(collector: Collector, host: str = "127.0.0.1") -> Iterator[str]:
    """Yields the base URL; stops the server (not the collector) on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(collector, host, 0))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def raw_request(*lines: str, body: bytes = b"") -> bytes:
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode() + body


def read_response(sock: Any, timeout_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or the timeout)."""
    sock.settimeout(timeout_s)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        pass
    return out
