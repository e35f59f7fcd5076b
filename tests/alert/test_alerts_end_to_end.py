"""Spans into a MonitorEngine with a rule pack, findings out to a webhook built from an
AlertConfig, delivery status read back with SQL from the alerts view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hook_server import Reply, WebhookServer
from prometheus_client import CollectorRegistry

from driftwatch.alert import AlertConfig, WebhookSink, build_sinks
from driftwatch.core import FrozenClock, SequentialIds
from driftwatch.monitor import MonitorEngine, RulePackMonitor, load_rule_pack
from driftwatch.store import Store
from driftwatch.testing import RecordFactory

pytestmark = pytest.mark.network_loopback

ServerFactory = Callable[..., WebhookServer]

PACK = """\
pack: files
rules:
  - id: no-deletes
    severity: high
    when: tool_name = 'delete_file'
    message: "deleted {tool_arguments[path]}"
  - id: no-reads-of-secrets
    severity: low
    when: tool_name = 'read_file' AND tool_arguments->>'path' LIKE '%secret%'
    message: "read {tool_arguments[path]}"
"""

ALERTS_SQL = """
SELECT f.run_id, f.rule_id, f.turn, a.status, a.attempts
FROM findings f LEFT JOIN alerts a ON a.finding_id = f.finding_id AND a.sink = 'webhook'
ORDER BY f.finding_id
"""


@pytest.fixture
def rule_pack(tmp_path: Path) -> RulePackMonitor:
    path = tmp_path / "files.yaml"
    path.write_text(PACK, encoding="utf-8")
    return RulePackMonitor([load_rule_pack(path)])


def test_engine_findings_reach_the_webhook_and_sql_tells_the_whole_story(
    webhook_server: ServerFactory, memory_store: Store, rule_pack: RulePackMonitor
) -> None:
    server = webhook_server([Reply(503), Reply(500)])
    config = AlertConfig.from_mapping(
        {
            "webhook": {"url": server.url, "backoff_s": 0.01, "max_backoff_s": 0.05},
            "min_severity": "medium",
            "dedupe": True,
        }
    )
    registry = CollectorRegistry()
    clock = FrozenClock()
    sinks = build_sinks(config, store=memory_store, registry=registry, clock=clock)
    run1, run2 = RecordFactory(run_id="run-1"), RecordFactory(run_id="run-2")
    spans = [
        run1.tool_call("delete_file", {"path": "a"}, turn=1),
        run1.tool_call("read_file", {"path": "secret.txt"}, turn=2),
        run1.tool_call("delete_file", {"path": "b"}, turn=3),
        run2.tool_call("delete_file", {"path": "c"}, turn=1),
    ]
    engine = MonitorEngine(
        [rule_pack],
        store=memory_store,
        sinks=sinks,
        ids=SequentialIds(),
        clock=clock,
        close_components=True,
    )
    with engine:
        engine.submit_many(spans)
        assert engine.flush(20)
        webhook = sinks[0].inner  # type: ignore[attr-defined]
        assert isinstance(webhook, WebhookSink)
        assert webhook.flush(20)
    rows = memory_store.query(ALERTS_SQL).rows
    assert rows == [
        ("run-1", "no-deletes", 1, "sent", 3),  # 503, then 500, then 200
        ("run-1", "no-reads-of-secrets", 2, None, None),  # below medium: not an alert
        ("run-1", "no-deletes", 3, "suppressed", 0),  # same rule, same run
        ("run-2", "no-deletes", 1, "sent", 1),
    ]
    assert server.texts == [
        "[HIGH] no-deletes run=run-1 turn=1: deleted a",
        "[HIGH] no-deletes run=run-1 turn=1: deleted a",
        "[HIGH] no-deletes run=run-1 turn=1: deleted a",
        "[HIGH] no-deletes run=run-2 turn=1: deleted c",
    ]
    sent = registry.get_sample_value(
        "driftwatch_alerts_total", {"sink": "webhook", "status": "sent"}
    )
    retrying = registry.get_sample_value(
        "driftwatch_alerts_total", {"sink": "webhook", "status": "retrying"}
    )
    assert (sent, retrying) == (2, 2)
    low = registry.get_sample_value(
        "driftwatch_findings_total", {"rule_id": "no-reads-of-secrets", "severity": "low"}
    )
    assert low == 1


def test_engine_offers_its_store_to_a_webhook_built_without_one(
    webhook_server: ServerFactory, memory_store: Store, rule_pack: RulePackMonitor
) -> None:
    server = webhook_server()
    webhook = WebhookSink(server.url)
    run = RecordFactory(run_id="run-1")
    with MonitorEngine([rule_pack], store=memory_store, sinks=[webhook]) as engine:
        engine.submit(run.tool_call("delete_file", {"path": "a"}, turn=1))
        assert engine.flush(20)
        assert webhook.flush(20)
    webhook.close()
    status = memory_store.query("SELECT sink, status, attempts FROM alerts").rows
    assert status == [("webhook", "sent", 1)]
    assert len(server.received) == 1
