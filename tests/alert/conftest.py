"""Findings for sink tests, a loopback webhook server, an in-memory store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hook_server import Reply, WebhookServer

from driftwatch.core import Finding, FindingKind, Severity
from driftwatch.store import Store

FindingFactory = Callable[..., Finding]


@pytest.fixture
def make_finding() -> FindingFactory:
    counter = iter(range(1, 10_000))

    def make(
        message: str = "write_file on project/oversight_config.yaml at turn 4",
        *,
        severity: Severity = Severity.CRITICAL,
        rule_id: str = "oversight-config-modified",
        run_id: str = "run-000001",
        turn: int | None = 4,
        **changes: Any,
    ) -> Finding:
        fields: dict[str, Any] = {
            "finding_id": f"f-{next(counter):08d}",
            "run_id": run_id,
            "trace_id": "0" * 31 + "1",
            "span_id": "0" * 15 + "2",
            "turn": turn,
            "monitor": "rule_pack",
            "rule_id": rule_id,
            "kind": FindingKind.VIOLATION,
            "severity": severity,
            "message": message,
            "evidence": {"tool_name": "write_file"},
            "detected_at": datetime(2026, 1, 1, tzinfo=UTC),
            "monitor_spec": {"name": "rule_pack", "args": {"packs": ["oversight-config"]}},
        }
        fields.update(changes)
        return Finding(**fields)

    return make


@pytest.fixture
def webhook_server() -> Iterator[Callable[..., WebhookServer]]:
    """``webhook_server([Reply(500), Reply()])`` starts one; all are stopped after."""
    made: list[WebhookServer] = []

    def start(script: list[Reply] | None = None, port: int = 0) -> WebhookServer:
        server = WebhookServer(script, port).start()
        made.append(server)
        return server

    yield start
    for server in made:
        server.stop()


@pytest.fixture
def memory_store() -> Iterator[Store]:
    with Store(":memory:") as store:
        yield store
