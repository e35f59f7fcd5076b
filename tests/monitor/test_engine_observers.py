"""The engine's two optional monitor extensions: finding observers see each round's
findings (after every monitor, per run, also when there are none); deferred findings
handed in from other threads are stored, sent, and included in ``end_run``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from driftwatch.core import Finding, FindingKind, FrozenClock, SequentialIds, Severity, SpanRecord
from driftwatch.monitor import (
    BaseMonitor,
    DeferredFindings,
    FindingObserver,
    MonitorEngine,
)
from driftwatch.testing import RecordFactory


class FlagDeletes(BaseMonitor):
    name = "flag"

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        return [
            self.finding(
                run_id=run_id, rule_id="del", message="delete", severity=Severity.HIGH, record=r
            )
            for r in records
            if r.tool_name == "delete_file"
        ]


class Observer(BaseMonitor):
    name = "observer"

    def __init__(self, explode: bool = False) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.explode = explode
        self.observed_before: list[int] = []
        self._seen = 0

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        self._seen += len(records)
        return ()

    def observe_findings(self, run_id: str, findings: Sequence[Finding]) -> Sequence[Finding]:
        if self.explode:
            raise RuntimeError("observer boom")
        self.calls.append((run_id, [f.rule_id for f in findings]))
        self.observed_before.append(self._seen)
        if not findings:
            return ()
        return [
            self.finding(
                run_id=run_id,
                rule_id="echo",
                message=f"{len(findings)} seen",
                severity=Severity.LOW,
                kind=FindingKind.DRIFT,
            )
        ]


class Deferred(BaseMonitor):
    """Hands a finding to the engine from another thread for every record it sees."""

    name = "deferred"

    def __init__(self) -> None:
        self.deliver: Callable[[Sequence[Finding]], None] | None = None
        self.threads: list[threading.Thread] = []

    def bind_delivery(self, deliver: Callable[[Sequence[Finding]], None]) -> None:
        self.deliver = deliver

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        for record in records:
            finding = self.finding(
                run_id=run_id,
                rule_id="later",
                message=record.name,
                severity=Severity.INFO,
                kind=FindingKind.JUDGE,
                record=record,
            )
            assert self.deliver is not None
            thread = threading.Thread(target=self.deliver, args=([finding],))
            thread.start()
            self.threads.append(thread)
        return ()

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        for thread in self.threads:
            thread.join()
        return ()


def engine_for(monitors: list[Any]) -> MonitorEngine:
    return MonitorEngine(monitors, ids=SequentialIds(), clock=FrozenClock())


def test_observer_sees_each_rounds_findings_per_run_after_all_monitors() -> None:
    f1, f2 = RecordFactory("run-1"), RecordFactory("run-2")
    observer = Observer()
    assert isinstance(observer, FindingObserver)
    with engine_for([observer, FlagDeletes()]) as engine:  # observer listed first on purpose
        engine.submit_many(
            [
                f1.tool_call("delete_file", {"path": "a"}, 1),
                f2.tool_call("read_file", {"path": "a"}, 1),
            ]
        )
        engine.flush()
        found = engine.end_run("run-1") + engine.end_run("run-2")
        everything = engine.findings()
    assert sorted(observer.calls) == [("run-1", ["del"]), ("run-2", [])]
    assert observer.observed_before == [2, 2]  # its own observe ran first in the round
    assert [f.rule_id for f in everything] == ["del", "echo"]
    assert found == []  # nothing new at end_run


def test_an_observer_that_raises_becomes_one_monitor_error() -> None:
    f = RecordFactory("run-1")
    with engine_for([FlagDeletes(), Observer(explode=True)]) as engine:
        engine.submit(f.tool_call("delete_file", {"path": "a"}, 1))
        engine.flush()
        engine.submit(f.tool_call("delete_file", {"path": "b"}, 2))
        engine.end_run("run-1")
        errors = [x for x in engine.findings() if x.kind is FindingKind.MONITOR_ERROR]
    assert len(errors) == 1
    assert errors[0].evidence["phase"] == "observe_findings"


def test_deferred_findings_are_delivered_and_end_run_includes_the_runs_rest() -> None:
    f = RecordFactory("run-1")
    deferred = Deferred()
    assert isinstance(deferred, DeferredFindings)
    sent: list[Finding] = []

    class Sink:
        name = "mem"

        def send(self, findings: Sequence[Finding]) -> None:
            sent.extend(findings)

        def close(self) -> None:
            return None

    engine = MonitorEngine([deferred], sinks=[Sink()], ids=SequentialIds(), clock=FrozenClock())
    try:
        engine.submit_many([f.chat("a", 1), f.chat("b", 2), f.chat("c", 3)])
        returned = engine.end_run("run-1")
        names = sorted(x.message for x in engine.findings("run-1"))  # no flush needed
        assert {x.finding_id for x in returned} <= {x.finding_id for x in engine.findings()}
    finally:
        engine.close()
    assert names == ["chat simulated/test"] * 3
    assert len(sent) == 3


def test_deferred_findings_that_arrive_while_closing_are_still_delivered() -> None:
    """A judge finishing its last call while the engine closes it (close_components)."""

    class ClosingJudge(Deferred):
        def close(self) -> None:
            assert self.deliver is not None
            self.deliver(
                [self.finding(run_id="run-1", rule_id="last", message="m", severity=Severity.INFO)]
            )

    engine = MonitorEngine(
        [ClosingJudge()], ids=SequentialIds(), clock=FrozenClock(), close_components=True
    )
    engine.close()
    assert [x.rule_id for x in engine.findings()] == ["last"]
