"""The collector's monitors in a child process: the same findings as in-process, span
batches over Arrow IPC, end of run after the run's spans, restart after a crash."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from driftwatch.collector.monitor_process import MonitorProcess
from driftwatch.core.clock import SYSTEM_CLOCK
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.importers.conversation import conversation_spans
from driftwatch.importers.taubench import read_taubench
from driftwatch.monitor import EngineConfig, MonitorEngine, default_monitors, resolve_packs
from driftwatch.monitor.engine.delivery import FindingDelivery
from driftwatch.store.arrow import exact_span_table
from driftwatch.testing import RecordingSink

EXCERPT = Path(__file__).parents[1] / "data" / "taubench" / "gpt-4o-airline-excerpt.json"
PACKS = ["taubench-airline"]


def excerpt_runs() -> list[tuple[str, list[SpanRecord]]]:
    runs = [conversation_spans(c, i) for i, c in enumerate(read_taubench(EXCERPT))]
    return [(run.info.run_id, run.spans) for run in runs]


def content(findings: Sequence[Finding]) -> list[tuple[object, ...]]:
    return sorted((f.monitor, f.rule_id, f.run_id, f.span_id, f.turn, f.kind.value,
                   f.severity.label, f.message) for f in findings)


def start(sink: RecordingSink, **options: object) -> MonitorProcess:
    delivery = FindingDelivery(None, [sink], SYSTEM_CLOCK, record_alerts=False)
    return MonitorProcess(EngineConfig(packs=tuple(resolve_packs(PACKS))), delivery, **options)  # type: ignore[arg-type]


def test_same_findings_as_the_in_process_engine() -> None:
    runs = excerpt_runs()
    local = RecordingSink()
    with MonitorEngine(default_monitors(resolve_packs(PACKS)), sinks=[local]) as engine:
        for run_id, spans in runs:
            engine.submit_many(spans)
            engine.end_run(run_id)
    remote = RecordingSink()
    process = start(remote)
    try:
        assert process.pid is not None
        assert process.pid != os.getpid()
        for run_id, spans in runs:
            # split each run's spans over two messages, as group commits do
            half = len(spans) // 2
            for part in (spans[:half], spans[half:]):
                process.submit(exact_span_table(part))
            assert process.end_run(run_id, timeout_s=60)
        assert process.flush(60)
        assert process.records_seen == sum(len(spans) for _, spans in runs)
    finally:
        process.close()
    assert local.findings, "the excerpt has violations"
    assert content(remote.findings) == content(local.findings)


def test_a_killed_child_is_replaced_and_monitoring_goes_on() -> None:
    runs = excerpt_runs()
    sink = RecordingSink()
    process = start(sink)
    try:
        first_pid = process.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while process.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.restarts == 1
        assert process.pid != first_pid
        run_id, spans = runs[0]
        process.submit(exact_span_table(spans))
        assert process.end_run(run_id, timeout_s=60)
        assert process.flush(60)
        assert process.records_seen == len(spans)
    finally:
        process.close()
    assert {f.run_id for f in sink.findings} <= {run_id}


def test_backpressure_bounds_the_spans_in_flight() -> None:
    runs = excerpt_runs()
    sink = RecordingSink()
    process = start(sink, max_in_flight=1)
    try:
        sent = 0
        for _, spans in runs[:4]:
            process.submit(exact_span_table(spans))  # waits for the one before
            sent += len(spans)
        assert process.flush(60)
        assert process.records_seen == sent
    finally:
        process.close()


def test_after_close_spans_are_not_monitored_and_calls_return() -> None:
    sink = RecordingSink()
    process = start(sink)
    process.close()
    run_id, spans = excerpt_runs()[0]
    process.submit(exact_span_table(spans))
    assert process.end_run(run_id, timeout_s=1) is False
    assert process.flush(1) is False
    assert process.records_seen == 0
    process.close()  # idempotent


def test_a_child_that_cannot_build_its_monitors_is_a_one_line_error() -> None:
    import pytest

    from driftwatch.collector.monitor_process import MonitorProcessError
    from driftwatch.core.errors import DriftwatchError

    delivery = FindingDelivery(None, [], SYSTEM_CLOCK, record_alerts=False)
    with pytest.raises(MonitorProcessError, match=r"failed to start: .*no-such-pack") as caught:
        MonitorProcess(EngineConfig(packs=("no-such-pack",)), delivery)
    assert isinstance(caught.value, DriftwatchError)
    assert "\n" not in str(caught.value)


def test_a_replacement_child_rebuilds_the_open_runs_from_their_stored_spans(
        tmp_path: Path) -> None:
    """The child is OOM-killed in the middle of a run: the new one is sent the run's
    stored spans first, so the run's findings are those of an uninterrupted run — none
    lost, none stored twice (the live stream repeats a span the replay carried too)."""
    from driftwatch.store import Store

    local = RecordingSink()
    with MonitorEngine(default_monitors(resolve_packs(PACKS)), sinks=[local]) as engine:
        for run_id, spans in excerpt_runs():
            engine.submit_many(spans)
            engine.end_run(run_id)
    by_run = Counter(f.run_id for f in local.findings)
    run_id = max(by_run, key=lambda name: by_run[name])  # the run with most findings
    spans = dict(excerpt_runs())[run_id]
    local.findings = [f for f in local.findings if f.run_id == run_id]

    half = len(spans) // 2
    stored = exact_span_table(spans[:half + 1])  # committed before the child died
    with Store(tmp_path / "m.duckdb") as store:
        delivery = FindingDelivery(store, [], SYSTEM_CLOCK, record_alerts=False)
        process = MonitorProcess(EngineConfig(packs=tuple(resolve_packs(PACKS))), delivery,
                                 replay=lambda: [stored])
        try:
            process.submit(exact_span_table(spans[:half]))
            assert process.flush(60)
            first_pid = process.pid
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while process.restarts == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process.restarts == 1
            process.submit(exact_span_table(spans[half:]))  # span `half` again
            assert process.end_run(run_id, timeout_s=60)
            assert process.flush(60)
        finally:
            process.close()
        rows = store.query("select monitor, rule_id, run_id, span_id, turn, kind, severity, "
                           "message from findings").rows
        assert store.query("select count(*) = count(distinct finding_id) "
                           "from findings").scalar()
    assert sorted(rows) == content(local.findings)
