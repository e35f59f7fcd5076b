"""The collector's /metrics follows the Prometheus naming conventions: counters are
counters named ``…_total``, nothing that only grows is a gauge, units are in the names."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from driftwatch.alert import PrometheusSink
from driftwatch.collector.metrics import CollectorMetrics


def _families() -> dict[str, tuple[str, list[str]]]:
    metrics = CollectorMetrics()
    PrometheusSink(metrics.registry)
    metrics.bind(lambda: 3, lambda: 2, lambda: 1234, lambda: 1)
    text = metrics.render()[0].decode()
    return {family.name: (family.type, [sample.name for sample in family.samples])
            for family in text_string_to_metric_families(text)}


def test_counters_end_in_total_and_running_totals_are_counters() -> None:
    families = _families()
    counters = {name for name, (kind, _) in families.items() if kind == "counter"}
    assert {"driftwatch_spans_received", "driftwatch_spans_rejected",
            "driftwatch_http_requests", "driftwatch_committed_spans",
            "driftwatch_monitor_records"} <= counters
    for name in counters:
        _kind, samples = families[name]
        assert all(s in (f"{name}_total", f"{name}_created") for s in samples), name
    gauges = [name for name, (kind, _) in families.items() if kind == "gauge"]
    assert gauges  # queue depth, open runs, subscribers: values that go down too
    assert not [name for name in gauges if name.endswith(("_total", "_records"))]


def test_the_monitor_record_total_is_read_live() -> None:
    metrics = CollectorMetrics()
    count = [10.0]
    metrics.bind(lambda: 0, lambda: 0, lambda: count[0], lambda: 0)
    assert "driftwatch_monitor_records_total 10.0" in metrics.render()[0].decode()
    count[0] = 25.0
    assert "driftwatch_monitor_records_total 25.0" in metrics.render()[0].decode()


def test_durations_carry_their_unit() -> None:
    families = _families()
    histograms = [name for name, (kind, _) in families.items() if kind == "histogram"]
    assert histograms
    assert all(name.endswith("_seconds") for name in histograms)
