"""Web pages cannot use a token-less loopback collector, in real Chromium: a page from
another loopback origin cannot run SQL or send spans (not even a "simple" request that
needs no preflight), and a DNS-rebinding page (its own name resolving to 127.0.0.1, so
the collector looks same-origin to the browser) reads nothing back."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_helpers import json_body, make_collector, shell_span
from live_server import port_of, served

from browser_helpers import chromium
from driftwatch.collector import Collector, CollectorLimits

pytestmark = pytest.mark.network_loopback

REBIND = "rebind.test"
EXTRA_ARGS = [f"--host-resolver-rules=MAP {REBIND} 127.0.0.1",
               # Chromium's own private-network checks would stop the rebinding page
               # before it reaches the collector; the collector must not rely on them
               # (other browsers, older versions, a page served from loopback)
               "--disable-features=BlockInsecurePrivateNetworkRequests,"
               "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,"
               "LocalNetworkAccessChecks"]

# What the attacker's page tries; each attempt reports what the page could see.
ATTACK_JS = """
async (target) => {
  const sql = JSON.stringify({sql: "select count(*) as n, min(tool_name) from spans"});
  const spans = %s;
  const out = {};
  const attempt = async (name, url, init) => {
    try {
      const response = await fetch(url, init);
      out[name] = {status: response.status, type: response.type,
                   text: response.type === "opaque" ? "" : await response.text()};
    } catch (error) { out[name] = {error: String(error)}; }
  };
  await attempt("sql_simple", target + "/v1/sql",
                {method: "POST", mode: "no-cors", body: sql,
                 headers: {"content-type": "text/plain"}});
  await attempt("sql_json", target + "/v1/sql",
                {method: "POST", body: sql, headers: {"content-type": "application/json"}});
  await attempt("traces_simple", target + "/v1/traces",
                {method: "POST", mode: "no-cors", body: spans,
                 headers: {"content-type": "text/plain"}});
  await attempt("traces_json", target + "/v1/traces",
                {method: "POST", body: spans, headers: {"content-type": "application/json"}});
  await attempt("metrics", target + "/metrics", {});
  return out;
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(*EXTRA_ARGS) as launched:
        yield launched


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    collector = make_collector(tmp_path, limits=CollectorLimits(max_body_bytes=64 * 1024))
    try:
        yield collector
    finally:
        collector.close()


@pytest.fixture
def attacker_origin() -> Iterator[str]:
    """Another loopback origin (127.0.0.2) serving an empty page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>attacker</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sql_requests(url: str) -> dict[str, float]:
    """The collector's own count of /v1/sql and /v1/traces answers, by code."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("driftwatch_http_requests_total{") and "/metrics" not in line:
            counts[line.split("{", 1)[1].split("}", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return counts


def spans_json() -> str:
    return json.dumps(json_body(shell_span(7, "curl evil")).decode())


def test_a_page_from_another_loopback_origin_cannot_use_the_collector(
    browser: Any, collector: Collector, attacker_origin: str
) -> None:
    with served(collector) as url:
        assert httpx.post(f"{url}/v1/traces", content=json_body(shell_span(1, "ls")),
                          headers={"content-type": "application/json"}).status_code == 200
        page = browser.new_page()
        try:
            page.goto(attacker_origin)
            seen = page.evaluate(ATTACK_JS % spans_json(), url)
        finally:
            page.close()
        answered = sql_requests(url)
    # the page learned nothing: blocked by CORS, or an opaque answer it cannot read
    for name, result in seen.items():
        assert "error" in result or result["type"] == "opaque", (name, result)
    # and nothing ran: no query answered 200 to the page, no span of the page stored
    assert not any('path="/v1/sql"' in key and 'code="200"' in key for key in answered), \
        answered
    assert collector.store.query("select count(*) from spans").scalar() == 1


def test_a_dns_rebinding_page_reads_nothing_back(browser: Any, collector: Collector) -> None:
    """The page is served as http://rebind.test:<collector port>/ and rebind.test
    resolves to 127.0.0.1: its fetches are same-origin to the browser and reach the
    collector with ``Host: rebind.test:<port>``."""
    with served(collector) as url:
        assert httpx.post(f"{url}/v1/traces", content=json_body(shell_span(1, "ls")),
                          headers={"content-type": "application/json"}).status_code == 200
        origin = f"http://{REBIND}:{port_of(url)}"
        page = browser.new_page()
        try:
            page.route(f"{origin}/", lambda route: route.fulfill(
                status=200, content_type="text/html",
                body="<!doctype html><title>rebound</title>"))
            page.goto(f"{origin}/")
            seen = page.evaluate(ATTACK_JS % spans_json(), origin)
        finally:
            page.close()
    assert seen["sql_json"].get("status") == 403, seen
    assert "shell" not in json.dumps(seen)  # the stored span's tool name never got out
    assert seen["metrics"].get("status") == 403, seen
    assert seen["traces_json"].get("status") == 403, seen
    assert collector.store.query("select count(*) from spans").scalar() == 1
