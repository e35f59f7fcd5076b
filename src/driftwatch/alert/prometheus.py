"""Prometheus counters of findings and alert statuses, in a registry the caller owns
(the collector's ``/metrics`` exposes it).

``driftwatch_findings_total{rule_id, severity}`` counts every finding this sink is sent;
``driftwatch_alerts_total{sink, status}`` counts alert status records (``pending``,
``retrying``, ``sent``, ``failed``, ``suppressed``) made through a recorder that has
:meth:`PrometheusSink.alert_recorded` as a listener (``build_sinks`` wires that).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from driftwatch.alert.base import BaseSink
from driftwatch.alert.registry import sink
from driftwatch.core.records import Finding, Severity

__all__ = ["PrometheusSink"]

_counters: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Counter]] = (
    weakref.WeakKeyDictionary()
)
_counters_lock = threading.Lock()


def _counters_for(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """One pair of counters per registry: a registry refuses the same name twice, and
    two sinks on one registry should add up."""
    with _counters_lock:
        pair = _counters.get(registry)
        if pair is None:
            findings = Counter(
                "driftwatch_findings",
                "Findings reported by monitors.",
                ["rule_id", "severity"],
                registry=registry,
            )
            alerts = Counter(
                "driftwatch_alerts",
                "Alert delivery status records, by sink and status.",
                ["sink", "status"],
                registry=registry,
            )
            pair = _counters[registry] = (findings, alerts)
        return pair


@sink("prometheus")
class PrometheusSink(BaseSink):
    """Counts findings by rule and severity, and alert statuses by sink."""

    name = "prometheus"
    records_own_alerts = True  # it is not a destination: no alert rows of its own

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(min_severity=Severity.INFO)
        self.registry = registry
        self._findings, self._alerts = _counters_for(registry)

    def deliver(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self._findings.labels(finding.rule_id, finding.severity.label).inc()

    def alert_recorded(self, sink_name: str, status: str) -> None:
        """Listener for :class:`~driftwatch.alert.recorder.CountingRecorder`."""
        self._alerts.labels(sink_name, status).inc()
