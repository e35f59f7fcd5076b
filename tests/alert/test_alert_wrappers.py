"""Dedupe per (rule, run), cooldown per rule on a frozen clock, and the alert rows the
wrappers write: suppressed findings are in SQL too."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from driftwatch.alert import CooldownSink, DedupeSink, RecordedSink
from driftwatch.alert.base import BaseSink
from driftwatch.alert.wrappers import COOLDOWN_KEY
from driftwatch.core import Finding, FrozenClock, Severity
from driftwatch.store import Store

FindingFactory = Callable[..., Finding]


class ListSink(BaseSink):
    """Keeps what it is given; fails when told to."""

    name = "list"

    def __init__(self, min_severity: Severity = Severity.INFO) -> None:
        super().__init__(min_severity=min_severity)
        self.findings: list[Finding] = []
        self.fail = False
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def deliver(self, findings: Sequence[Finding]) -> None:
        if self.fail:
            raise ConnectionError("destination down")
        self.findings.extend(findings)


def statuses(store: Store) -> list[tuple[str, str, str, int]]:
    return store.query(
        "SELECT finding_id, sink, status, attempts FROM alerts ORDER BY finding_id"
    ).rows


def test_dedupe_sends_one_alert_per_rule_and_run(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    inner = ListSink()
    dedupe = DedupeSink(inner, recorder=memory_store)
    first = make_finding(rule_id="a", run_id="run-1")
    again = make_finding(rule_id="a", run_id="run-1")
    other_rule = make_finding(rule_id="b", run_id="run-1")
    other_run = make_finding(rule_id="a", run_id="run-2")
    dedupe.send([first, again, other_rule])
    dedupe.send([make_finding(rule_id="a", run_id="run-1"), other_run])
    assert [f.finding_id for f in inner.findings] == [
        first.finding_id,
        other_rule.finding_id,
        other_run.finding_id,
    ]
    assert dedupe.suppressed == 2
    rows = statuses(memory_store)
    assert [(row[1], row[2]) for row in rows] == [
        ("list", "sent"),
        ("list", "suppressed"),
        ("list", "sent"),
        ("list", "sent"),  # other_run was made before the repeat below
        ("list", "suppressed"),
    ]
    assert rows[1][3] == 0  # never attempted


def test_dedupe_forgets_the_oldest_pairs_beyond_its_bound(make_finding: FindingFactory) -> None:
    inner = ListSink()
    dedupe = DedupeSink(inner, max_keys=2)
    for run in ("r1", "r2", "r3", "r1"):
        dedupe.send([make_finding(run_id=run)])
    assert [f.run_id for f in inner.findings] == ["r1", "r2", "r3", "r1"]


def test_cooldown_holds_back_a_rule_and_the_next_alert_says_how_many(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    clock = FrozenClock()
    inner = ListSink()
    cooldown = CooldownSink(inner, 60, recorder=memory_store, clock=clock)
    cooldown.send([make_finding("first", rule_id="a"), make_finding("other rule", rule_id="b")])
    clock.advance(30)
    cooldown.send([make_finding("held 1", rule_id="a"), make_finding("held 2", rule_id="a")])
    clock.advance(29.9)
    cooldown.send([make_finding("held 3", rule_id="a")])
    clock.advance(0.1)
    cooldown.send([make_finding("after", rule_id="a")])
    clock.advance(61)
    cooldown.send([make_finding("quiet since", rule_id="a")])
    assert [f.message for f in inner.findings] == [
        "first",
        "other rule",
        "after (+3 earlier alerts held back by cooldown)",
        "quiet since",
    ]
    assert inner.findings[2].evidence[COOLDOWN_KEY] == 3
    assert COOLDOWN_KEY not in inner.findings[3].evidence
    assert cooldown.suppressed == 3
    assert [row[2] for row in statuses(memory_store)] == [
        "sent",
        "sent",
        "suppressed",
        "suppressed",
        "suppressed",
        "sent",
        "sent",
    ]


def test_wrappers_keep_the_inner_minimum_severity_and_record_nothing_below_it(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    inner = ListSink(min_severity=Severity.HIGH)
    sink = DedupeSink(CooldownSink(inner, 10, clock=FrozenClock()), recorder=memory_store)
    assert sink.name == "list"
    sink.send([make_finding(severity=Severity.LOW), make_finding(severity=Severity.CRITICAL)])
    assert [f.severity for f in inner.findings] == [Severity.CRITICAL]
    assert [row[2] for row in statuses(memory_store)] == ["sent"]


def test_recorded_sink_marks_failed_deliveries(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    inner = ListSink()
    sink = RecordedSink(inner, recorder=memory_store)
    sink.send([make_finding("ok")])
    inner.fail = True
    sink.send([make_finding("lost")])
    rows = memory_store.query("SELECT status, error FROM alerts ORDER BY finding_id").rows
    assert rows == [("sent", None), ("failed", "delivery failed (see log)")]


def test_closing_a_wrapper_closes_the_wrapped_sink() -> None:
    inner = ListSink()
    DedupeSink(CooldownSink(inner, 1)).close()
    assert inner.closed
