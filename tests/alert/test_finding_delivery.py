"""The engine's delivery step records alert rows for plain sinks (in one batch when the
store can) and leaves sinks that record their own alone, after offering them the store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from driftwatch.alert import ConsoleSink, DedupeSink
from driftwatch.core import Finding, FrozenClock, Severity
from driftwatch.monitor.engine.delivery import FindingDelivery

FindingFactory = Callable[..., Finding]


class BatchStore:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.batches: list[list[tuple[Any, ...]]] = []

    def write_findings(self, findings: Sequence[Finding]) -> None:
        self.findings.extend(findings)

    def record_alert(self, **row: Any) -> None:
        raise AssertionError("one row at a time when a batch method exists")

    def record_alerts(self, rows: list[tuple[Any, ...]]) -> None:
        self.batches.append(rows)


def test_plain_sink_rows_go_in_one_batch(make_finding: FindingFactory) -> None:
    store = BatchStore()
    console = ConsoleSink(min_severity=Severity.HIGH)
    delivery = FindingDelivery(store, [console], FrozenClock(), record_alerts=True)
    low, critical = make_finding(severity=Severity.LOW), make_finding()
    delivery.deliver([low, critical])
    assert store.findings == [low, critical]
    [[row]] = store.batches
    assert row[:5] == (f"{critical.finding_id}:console", critical.finding_id, "console", "sent", 1)


def test_self_recording_sink_gets_the_store_and_no_rows_from_the_engine(
    make_finding: FindingFactory,
) -> None:
    store = BatchStore()
    dedupe = DedupeSink(ConsoleSink())
    delivery = FindingDelivery(store, [dedupe], FrozenClock(), record_alerts=True)
    first, repeat = make_finding(), make_finding()
    delivery.deliver([first, repeat])
    statuses = [(row[1], row[3]) for batch in store.batches for row in batch]
    assert statuses == [(repeat.finding_id, "suppressed"), (first.finding_id, "sent")]


def test_rows_of_every_plain_sink_go_in_one_statement_after_all_sent(
    make_finding: FindingFactory,
) -> None:
    store = BatchStore()

    class Failing:
        name = "failing"

        def send(self, findings: Sequence[Finding]) -> None:
            assert not store.batches, "rows are written once every sink has sent"
            raise ConnectionError("down")

        def close(self) -> None:
            return None

    console = ConsoleSink()
    delivery = FindingDelivery(store, [console, Failing()], FrozenClock(), record_alerts=True)
    finding = make_finding()
    delivery.deliver([finding])
    [rows] = store.batches
    assert [(row[2], row[3]) for row in rows] == [("console", "sent"), ("failing", "failed")]
    assert rows[1][6] == "ConnectionError: down"
