"""The collector's network edge under attack, on a real uvicorn server: idle sockets,
slowloris heads and bodies, oversized heads and unauthenticated bodies do not lock out
a well-behaved client, and each is closed by the guard or the app."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from collector_helpers import TOKEN, json_body, make_collector, shell_span
from live_server import port_of, raw_request, read_response, served

from driftwatch.collector import CollectorLimits, GuardLimits

pytestmark = pytest.mark.network_loopback

JSON = {"content-type": "application/json"}
SHORT = CollectorLimits(
    max_body_bytes=64 * 1024, body_timeout_s=1.0,
    connections=GuardLimits(header_timeout_s=1.0, max_header_bytes=8 * 1024,
                            max_connections=200, max_connections_per_client=40),
)


def attacker(port: int, source: str) -> socket.socket:
    """A connection from another loopback address (Linux routes all of 127/8 to lo)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_by_server(sock: socket.socket, timeout_s: float = 10.0) -> bool:
    """True once the server closed ``sock`` (reset, or end of stream after any answer)."""
    sock.settimeout(timeout_s)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    collector = make_collector(tmp_path, limits=SHORT)
    try:
        with served(collector) as base:
            yield base
    finally:
        collector.close()


def post_spans(url: str, n: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/v1/traces", content=json_body(shell_span(n, "ls")),
                      headers={**JSON, **(headers or {})}, timeout=5)


def test_idle_and_slowloris_sockets_do_not_lock_out_a_real_client(url: str) -> None:
    port = port_of(url)
    sockets: list[socket.socket] = []
    try:
        # 300 idle sockets from five addresses: past the per-client cap and the total cap
        for index in range(300):
            with contextlib.suppress(OSError):  # refused outright: as good
                sockets.append(attacker(port, f"127.0.0.{2 + index % 5}"))
        # slowloris: heads that never end, and a body that never comes
        for index in range(20):
            sock = attacker(port, f"127.0.1.{1 + index}")
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            sockets.append(sock)
        for index in range(20):
            sock = attacker(port, f"127.0.2.{1 + index}")
            sock.sendall(raw_request("POST /v1/traces HTTP/1.1", "Host: 127.0.0.1",
                                     "Content-Type: application/json",
                                     "Content-Length: 60000", body=b"{"))
            sockets.append(sock)
        # during the attack, a well-behaved client is served
        for n in range(1, 4):
            assert post_spans(url, n).status_code == 200
        # and every attacking socket is closed by the server, none left open
        for sock in sockets:
            assert closed_by_server(sock), "an attacking connection was left open"
        assert post_spans(url, 9).status_code == 200
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'driftwatch_connections_refused_total{reason="per_client"}' in metrics
        assert 'driftwatch_connections_refused_total{reason="header_timeout"}' in metrics
        assert 'driftwatch_connections_refused_total{reason="evicted"}' in metrics
        assert 'driftwatch_http_requests_total{code="408",path="/v1/traces"}' in metrics
    finally:
        for sock in sockets:
            sock.close()


def test_a_dripping_head_is_closed_after_the_head_timeout(url: str) -> None:
    """One byte every 0.2 s for 3 s never completes a head within the 1 s limit: the
    server closes the connection without answering a request."""
    sock = attacker(port_of(url), "127.0.0.9")
    try:
        head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-slow: " + b"a" * 100
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in head[:15]:
                sock.send(bytes([byte]))
                time.sleep(0.2)
        assert read_response(sock) == b""
    finally:
        sock.close()


def test_an_oversized_head_is_431(url: str) -> None:
    sock = attacker(port_of(url), "127.0.0.5")
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     + b"X-pad: " + b"a" * 20_000 + b"\r\n\r\n")
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 431")
    finally:
        sock.close()


def test_a_slow_body_is_408_and_closed(url: str) -> None:
    sock = attacker(port_of(url), "127.0.0.6")
    try:
        sock.sendall(raw_request("POST /v1/traces HTTP/1.1", "Host: 127.0.0.1",
                                 "Content-Type: application/json", "Content-Length: 1000",
                                 body=b'{"resourceSpans":'))
        answer = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"connection: close" in answer.lower()
    finally:
        sock.close()


def test_a_request_without_the_token_is_refused_before_its_body(tmp_path: Path) -> None:
    """401 as soon as the head is in, and the connection closed: the 10 MB body is never
    sent and never waited for."""
    collector = make_collector(tmp_path, token=TOKEN, limits=SHORT)
    try:
        with served(collector) as base:
            sock = attacker(port_of(base), "127.0.0.7")
            try:
                sock.sendall(raw_request("POST /v1/traces HTTP/1.1", "Host: 127.0.0.1",
                                         "Content-Type: application/json",
                                         "Authorization: Bearer wrong",
                                         "Content-Length: 10000000"))
                answer = read_response(sock, timeout_s=0.9)  # under the body timeout
                assert answer.startswith(b"HTTP/1.1 401")
                assert b"connection: close" in answer.lower()
            finally:
                sock.close()
            lower = {"authorization": f"bearer {TOKEN}"}
            assert post_spans(base, 1, lower).status_code == 200
            upper = {"authorization": f"BEARER {TOKEN}"}
            assert post_spans(base, 2, upper).status_code == 200
            assert post_spans(base, 3, {"authorization": f"Basic {TOKEN}"}).status_code == 401
    finally:
        collector.close()
