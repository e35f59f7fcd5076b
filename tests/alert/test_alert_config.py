"""AlertConfig is strict and says which field is wrong; build_sinks wires destinations,
wrappers, the store and the Prometheus counters together."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftwatch.alert import (
    AlertConfig,
    ConsoleSink,
    CooldownSink,
    DedupeSink,
    JsonlSink,
    PrometheusSink,
    RecordedSink,
    WebhookSink,
    build_sinks,
)
from driftwatch.core import Finding, FrozenClock, Severity, SpecError
from driftwatch.store import Store

FindingFactory = Callable[..., Finding]


def test_defaults_and_a_plain_webhook_url() -> None:
    config = AlertConfig.from_mapping({"webhook": "https://hooks.example.org/T0/B0"})
    assert config.webhook is not None
    assert (config.webhook.url, config.webhook.timeout_s, config.webhook.retries) == (
        "https://hooks.example.org/T0/B0",
        5.0,
        5,
    )
    assert (config.console, config.jsonl, config.dedupe, config.cooldown_s) == (
        False,
        None,
        False,
        None,
    )
    assert config.severity is Severity.LOW


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"webhook": {"url": "https://h.example", "retries": "5"}}, "webhook.retries: Input"),
        ({"webhook": {"url": "ftp://h.example"}}, "webhook.url: webhook url must be"),
        ({"webhook": {"url": "https://h.example", "timeout_s": 0}}, "webhook.timeout_s:"),
        ({"min_severity": "urgent"}, "min_severity: unknown severity 'urgent'"),
        ({"cooldown_s": -1}, "cooldown_s: Input should be greater than or equal to 0"),
        ({"console": "yes"}, "console: Input should be a valid boolean"),
        ({"webhok": "https://h.example"}, "webhok: unknown field"),
        ({"jsonl": " "}, "jsonl: must be a file path"),
    ],
)
def test_bad_config_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as raised:
        AlertConfig.from_mapping(data, source="--alerts")
    assert str(raised.value).startswith(f"--alerts: {message}")


def test_config_file_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("console: true\nwebhook:\n  url: https://h.example\n  retries: -2\n")
    with pytest.raises(SpecError, match=r"alerts.yaml:4: webhook.retries: Input should be"):
        AlertConfig.load(path)
    path.write_text("console: true\nmin_severity: high\ndedupe: true\n")
    assert AlertConfig.load(path).severity is Severity.HIGH


def test_build_sinks_wraps_each_destination_and_adds_prometheus(tmp_path: Path) -> None:
    config = AlertConfig.from_mapping(
        {
            "console": True,
            "jsonl": str(tmp_path / "f.jsonl"),
            "webhook": "http://127.0.0.1:9/hook",
            "min_severity": "high",
            "cooldown_s": 30,
            "dedupe": True,
        }
    )
    sinks = build_sinks(config, registry=CollectorRegistry(), clock=FrozenClock())
    try:
        assert [type(sink) for sink in sinks] == [
            DedupeSink,
            DedupeSink,
            DedupeSink,
            PrometheusSink,
        ]
        inner = [sink.inner for sink in sinks[:3]]  # type: ignore[attr-defined]
        assert all(isinstance(sink, CooldownSink) for sink in inner)
        destinations = [sink.inner for sink in inner]
        assert [type(sink) for sink in destinations] == [ConsoleSink, JsonlSink, WebhookSink]
        assert {sink.min_severity for sink in destinations} == {Severity.HIGH}
        assert [sink.name for sink in sinks] == ["console", "jsonl", "webhook", "prometheus"]
    finally:
        for sink in sinks:
            sink.close()


def test_build_sinks_records_console_alerts_and_counts_them(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    registry = CollectorRegistry()
    config = AlertConfig.from_mapping({"console": True, "dedupe": True})
    sinks = build_sinks(config, store=memory_store, registry=registry)
    assert isinstance(sinks[0], DedupeSink)
    findings = [make_finding(), make_finding(), make_finding(severity=Severity.INFO)]
    for sink in sinks:
        sink.send(findings)
    rows = memory_store.query("SELECT sink, status FROM alerts ORDER BY finding_id").rows
    assert rows == [("console", "sent"), ("console", "suppressed")]

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("driftwatch_alerts_total", sink="console", status="sent") == 1
    assert sample("driftwatch_alerts_total", sink="console", status="suppressed") == 1
    critical = {"rule_id": "oversight-config-modified", "severity": "critical"}
    assert sample("driftwatch_findings_total", **critical) == 2
    assert sample("driftwatch_findings_total", rule_id=critical["rule_id"], severity="info") == 1


def test_console_alone_is_recorded_sent(memory_store: Store, make_finding: FindingFactory) -> None:
    [sink] = build_sinks(AlertConfig(console=True), store=memory_store)
    assert isinstance(sink, RecordedSink)
    sink.send([make_finding()])
    assert memory_store.query("SELECT status, attempts FROM alerts").rows == [("sent", 1)]


def test_two_prometheus_sinks_share_one_registry(make_finding: FindingFactory) -> None:
    registry = CollectorRegistry()
    first, second = PrometheusSink(registry), PrometheusSink(registry)
    first.send([make_finding()])
    second.send([make_finding()])
    labels = {"rule_id": "oversight-config-modified", "severity": "critical"}
    assert registry.get_sample_value("driftwatch_findings_total", labels) == 2
