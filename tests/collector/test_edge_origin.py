"""Host, Origin and Content-Type checks on every state-reading or writing endpoint: a
rebinding name or a web page's request is refused before the token and the body."""

from __future__ import annotations

from pathlib import Path

import pytest
from collector_helpers import call, json_body, make_collector, shell_span

from driftwatch.collector import Collector, CollectorLimits

JSON = {"content-type": "application/json"}
SQL = b'{"sql": "select count(*) from spans"}'
ENDPOINTS = [
    ("POST", "/v1/traces", json_body(shell_span(1, "ls")), JSON),
    ("POST", "/v1/sql", SQL, JSON),
    ("GET", "/metrics", b"", {}),
    ("GET", "/v1/findings/stream", b"", {}),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), ENDPOINTS)
@pytest.mark.parametrize(
    "refused",
    [
        {"host": "attacker.example:4318"},  # DNS rebinding: the page's own name
        {"host": "attacker.example"},
        {"host": "127.0.0.1.nip.io:4318"},
        {"host": None},
        {"origin": "http://127.0.0.2:8000"},  # another loopback origin
        {"origin": "http://localhost:4318"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
def test_requests_from_other_hosts_or_pages_are_403(
    collector: Collector, method: str, path: str, body: bytes, headers: dict[str, str],
    refused: dict[str, str | None],
) -> None:
    response = call(collector.app, method, path, body, {**headers, **refused})
    assert response.status == 403, response.body
    assert response.headers["connection"] == "close"
    assert collector.store.query("select count(*) from spans").scalar() == 0


@pytest.mark.parametrize("host", ["127.0.0.1:4318", "localhost:4318", "[::1]:4318",
                                  "127.0.0.5", "LOCALHOST"])
def test_loopback_names_are_accepted(collector: Collector, host: str) -> None:
    response = call(collector.app, "POST", "/v1/sql", SQL, {**JSON, "host": host})
    assert response.status == 200


def test_allowed_hosts_and_a_non_loopback_bind(tmp_path: Path) -> None:
    limits = CollectorLimits(allowed_hosts=("collector.internal",))
    collector = make_collector(tmp_path, limits=limits)
    try:
        named = {**JSON, "host": "collector.internal:4318"}
        assert call(collector.app, "POST", "/v1/sql", SQL, named).status == 200
        other = {**JSON, "host": "attacker.example"}
        assert call(collector.app, "POST", "/v1/sql", SQL, other).status == 403
        collector.app.bind("0.0.0.0")
        assert call(collector.app, "POST", "/v1/sql", SQL, other).status == 403
    finally:
        collector.close()
    collector = make_collector(tmp_path / "open")
    try:
        collector.app.bind("0.0.0.0")
        # an open bind needs a token (serve enforces it): any name reaches it
        assert call(collector.app, "POST", "/v1/sql", SQL,
                    {**JSON, "host": "collector.example"}).status == 200
        # but a web page's request is still refused
        assert call(collector.app, "POST", "/v1/sql", SQL,
                    {**JSON, "origin": "https://collector.example"}).status == 403
    finally:
        collector.close()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_sql_needs_a_json_content_type(collector: Collector, content_type: str | None) -> None:
    """The types a browser sends without a preflight are refused (415)."""
    response = call(collector.app, "POST", "/v1/sql", SQL, {"content-type": content_type})
    assert response.status == 415


def test_unknown_fields_in_an_attribute_value_are_ignored(collector: Collector) -> None:
    """OTLP: receivers ignore unknown fields (a newer sender's value kinds)."""
    span = shell_span(1, "ls")
    span["attributes"] += [
        {"key": "extra.known", "value": {"stringValue": "kept", "futureField": {"a": 1}}},
        {"key": "extra.unknown", "value": {"futureValue": 1}},
    ]
    response = call(collector.app, "POST", "/v1/traces", json_body(span), JSON)
    assert response.status == 200
    assert response.json() == {}
    row = collector.store.query(
        "select attributes->>'$.\"extra.known\"' from spans").scalar()
    assert row == "kept"
