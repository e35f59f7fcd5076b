"""Sequence and window rules across micro-batches: any split of the stream gives the same
findings, through the monitor and the live engine; runtime SQL errors; bounded state;
throughput."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core import Finding, FindingKind, FrozenClock, SequentialIds, Severity, SpanRecord
from driftwatch.monitor import (
    MonitorEngine,
    RulePack,
    RulePackMonitor,
    WindowPer,
    WindowRule,
    load_rule_pack,
)
from driftwatch.monitor.rules.sequence import SequenceTracker
from driftwatch.monitor.rules.sequence_spec import SequenceRule
from driftwatch.testing import RecordFactory

PackWriter = Callable[..., Path]

PACK = """\
pack: mixed
rules:
  - id: any-delete
    severity: low
    when: tool_name = 'delete_file'
sequences:
  - id: write-without-read
    severity: medium
    pattern: b_without_earlier_a
    a: tool_name = 'read_file'
    b: tool_name = 'write_file'
    same: ["tool_arguments->>'path'"]
    reset_on: tool_name = 'delete_file'
    message: "{b[tool_name]} {key[0]} at {turn}"
  - id: refund-after-complaint
    severity: high
    pattern: a_then_b
    a: event_kind = 'complaint'
    b: tool_name = 'refund'
    within_turns: 2
  - id: complaint-unanswered
    severity: high
    pattern: a_not_followed_by_b
    a: event_kind = 'complaint'
    b: tool_name = 'apologize'
    within_turns: 1
  - id: delete-right-after-read
    severity: low
    pattern: b_directly_after_a
    a: tool_name = 'read_file'
    b: tool_name = 'delete_file'
    same: ["tool_arguments->>'path'"]
  - id: reply-after-error
    severity: low
    pattern: b_directly_after_a
    a: tool_name = 'pay' AND tool_result = 'error'
    b: output_messages::VARCHAR ILIKE '%paid%'
    among: operation = 'chat'
windows:
  - id: repeated-calls
    severity: medium
    when: operation = 'execute_tool'
    group_by: [tool_name, tool_arguments]
    more_than: 2
    per: {turns: 3}
  - id: daily-spend
    severity: high
    when: tool_name = 'pay'
    value: try_cast(tool_arguments->>'amount' AS DOUBLE)
    more_than: 100
    per: {attribute: driftwatch.sim.day}
  - id: tool-burst
    severity: low
    when: operation = 'execute_tool'
    more_than: 6
    per: {turns: 2}
"""

TOOLS = ["read_file", "write_file", "delete_file", "refund", "apologize", "pay", "search"]


def _script(factory: RecordFactory, count: int, seed: int) -> list[SpanRecord]:
    """A random but reproducible run: tool calls on a few paths, complaints, chats, days."""
    rng = random.Random(seed)
    records: list[SpanRecord] = []
    turn = 1
    for _ in range(count):
        if rng.random() < 0.15:
            turn += 1
        roll = rng.random()
        if roll < 0.08:
            records.append(factory.event("complaint", "bad", turn))
        elif roll < 0.16:
            records.append(factory.chat(rng.choice(["paid!", "sorry", "ok"]), turn))
        elif roll < 0.2:
            day = factory.record("driftwatch.event day", turn, **{"driftwatch.sim.day": turn // 5})
            records.append(day)
        else:
            tool = rng.choice(TOOLS)
            arguments: dict[str, Any] = {"path": f"f{rng.randint(1, 4)}"}
            if tool == "pay":
                arguments = {"amount": rng.choice([10, 25.5, 40, "junk"])}
            result = rng.choice(["ok", "error"]) if tool == "pay" else "ok"
            records.append(factory.tool_call(tool, arguments, turn, result=result))
    return records


def _plain(findings: Sequence[Finding]) -> list[str]:
    """Findings without their id and detection time, comparable across monitors."""
    return [
        json.dumps(
            {k: v for k, v in item.to_dict().items() if k not in {"finding_id", "detected_at"}},
            sort_keys=True,
            default=str,
        )
        for item in findings
    ]


@pytest.fixture
def pack(write_pack: PackWriter) -> RulePack:
    return load_rule_pack(write_pack(PACK))


@pytest.fixture
def runs() -> dict[str, list[SpanRecord]]:
    one = RecordFactory(run_id="run-1", trace_id="1" * 32)
    two = RecordFactory(run_id="run-2", trace_id="2" * 32)
    return {"run-1": _script(one, 400, seed=1), "run-2": _script(two, 300, seed=2)}


@pytest.fixture
def new_monitor(pack: RulePack) -> Iterator[Callable[[], RulePackMonitor]]:
    made: list[RulePackMonitor] = []

    def build() -> RulePackMonitor:
        monitor = RulePackMonitor([pack]).bind(ids=SequentialIds(), clock=FrozenClock())
        made.append(monitor)
        return monitor

    yield build
    for monitor in made:
        monitor.close()


def _feed(
    monitor: RulePackMonitor, batches: Sequence[Mapping[str, Sequence[SpanRecord]]]
) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {"run-1": [], "run-2": []}
    for batch in batches:
        for run_id, items in monitor.observe_batch(batch).items():
            found[run_id].extend(items)
    for run_id, items in found.items():
        items.extend(monitor.end_run(run_id, None))
    return found


def _random_batches(
    runs: Mapping[str, Sequence[SpanRecord]], seed: int
) -> list[dict[str, list[SpanRecord]]]:
    """Interleave the runs at random (each run's order kept), cut into random sizes."""
    rng = random.Random(seed)
    queues = {run_id: list(records) for run_id, records in runs.items()}
    stream: list[SpanRecord] = []
    while any(queues.values()):
        run_id = rng.choice([r for r, q in queues.items() if q])
        stream.append(queues[run_id].pop(0))
    batches: list[dict[str, list[SpanRecord]]] = []
    start = 0
    while start < len(stream):
        size = rng.choice([1, 2, 3, 7, 50, 128])
        batch: dict[str, list[SpanRecord]] = {}
        for record in stream[start : start + size]:
            batch.setdefault(record.run_id, []).append(record)
        batches.append(batch)
        start += size
    return batches


def test_the_script_exercises_every_rule(
    new_monitor: Callable[[], RulePackMonitor], runs: dict[str, list[SpanRecord]]
) -> None:
    found = _feed(new_monitor(), [runs])
    fired = {item.rule_id for items in found.values() for item in items}
    assert fired == {
        "any-delete",
        "write-without-read",
        "refund-after-complaint",
        "complaint-unanswered",
        "delete-right-after-read",
        "reply-after-error",
        "repeated-calls",
        "daily-spend",
        "tool-burst",
    }
    assert all(item.kind is FindingKind.VIOLATION for items in found.values() for item in items)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_any_split_into_micro_batches_gives_the_same_findings(
    new_monitor: Callable[[], RulePackMonitor], runs: dict[str, list[SpanRecord]], seed: int
) -> None:
    reference = _feed(new_monitor(), [runs])
    split = _feed(new_monitor(), _random_batches(runs, seed))
    for run_id in runs:
        assert _plain(split[run_id]) == _plain(reference[run_id])


def test_one_record_per_batch_gives_the_same_findings(
    new_monitor: Callable[[], RulePackMonitor], runs: dict[str, list[SpanRecord]]
) -> None:
    runs = {run_id: records[:120] for run_id, records in runs.items()}  # ~10 ms a batch
    reference = _feed(new_monitor(), [runs])
    single = [{r.run_id: [r]} for records in runs.values() for r in records]
    split = _feed(new_monitor(), single)
    for run_id in runs:
        assert _plain(split[run_id]) == _plain(reference[run_id])


def test_the_live_engine_gives_the_same_findings(
    new_monitor: Callable[[], RulePackMonitor], runs: dict[str, list[SpanRecord]]
) -> None:
    reference = _feed(new_monitor(), [runs])
    with MonitorEngine(
        [new_monitor()], ids=SequentialIds(), clock=FrozenClock(), max_batch=13
    ) as engine:
        stream = _random_batches(runs, seed=9)
        for batch in stream:
            for records in batch.values():
                engine.submit_many(records)
        ended = {run_id: engine.end_run(run_id) for run_id in runs}
        for run_id, expected in reference.items():
            # the engine orders each micro-batch's findings by span (a deadline finding
            # points at an earlier span): the same findings, run-end ones in the same order
            assert sorted(_plain(engine.findings(run_id))) == sorted(_plain(expected))
            assert _plain(ended[run_id]) == _plain(expected[len(expected) - len(ended[run_id]) :])


def test_runtime_sql_errors_are_one_monitor_error_per_run_and_rule(write_pack: PackWriter) -> None:
    path = write_pack(
        """\
pack: p
sequences:
  - id: fragile
    severity: low
    pattern: b_without_earlier_a
    a: 'false'
    b: cast(tool_arguments->>'n' AS INTEGER) > 1
windows:
  - id: fragile-sum
    severity: low
    when: tool_name = 'pay'
    value: cast(tool_arguments->>'amount' AS DOUBLE)
    more_than: 1
    per: {turns: 1}
  - id: sturdy
    severity: low
    when: tool_name = 'pay'
    more_than: 0
    per: {turns: 1}
"""
    )
    monitor = RulePackMonitor([load_rule_pack(path)])
    f = RecordFactory(run_id="run-1")
    bad = [f.tool_call("pay", {"n": "abc", "amount": "abc"}, 1)]
    found = monitor.observe("run-1", bad)
    errors = {item.rule_id: item for item in found if item.kind is FindingKind.MONITOR_ERROR}
    assert set(errors) == {"fragile", "fragile-sum"}
    assert errors["fragile"].evidence["error"].startswith("fragile#b: ")
    assert errors["fragile-sum"].evidence["error"].startswith("fragile-sum#value: ")
    assert [item.rule_id for item in found if item.kind is FindingKind.VIOLATION] == ["sturdy"]
    again = monitor.observe("run-1", [f.tool_call("pay", {"n": "x", "amount": "y"}, 2)])
    assert [item.kind for item in again] == [FindingKind.VIOLATION]  # reported once per run
    monitor.close()


def test_correlation_keys_are_capped_and_the_cap_is_noted() -> None:
    rule = SequenceRule(
        id="w",
        severity="low",
        pattern="b_without_earlier_a",
        a="tool_name = 'read_file'",
        b="tool_name = 'write_file'",
        same=["tool_arguments->>'path'"],
    )
    tracker = SequenceTracker(rule, cap=3)
    f = RecordFactory()
    for n in range(5):  # reads of p0 … p4: p0 and p1 are forgotten
        tracker.step(f.tool_call("read_file", {}, 1), 1, {"a"}, (f"p{n}",), (f"p{n}",))
    assert tracker.evicted == 2
    assert tracker.step(f.tool_call("write_file", {}, 2), 2, {"b"}, ("p4",), ("p4",)) == []
    [hit] = tracker.step(f.tool_call("write_file", {}, 2), 2, {"b"}, ("p0",), ("p0",))
    assert hit.evidence["same"] == {"tool_arguments->>'path'": "p0"}
    assert "2 correlation keys were forgotten (limit 3 per run)" in hit.evidence["state_capped"]


@pytest.mark.slow
def test_throughput_of_five_sequences_and_three_windows(
    new_monitor: Callable[[], RulePackMonitor], capsys: pytest.CaptureFixture[str]
) -> None:
    """10,000 records in engine-sized micro-batches (512) through the 5 sequence and 3
    window rules (plus one single-span rule); prints records/s."""
    records = _script(RecordFactory(run_id="run-1"), 10_000, seed=7)
    monitor = new_monitor()
    monitor.observe("run-warmup", records[:10])  # first-query set-up is not throughput
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    for start in range(0, len(records), 512):
        count += len(monitor.observe("run-1", records[start : start + 512]))
    count += len(monitor.end_run("run-1", None))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rate = len(records) / elapsed
    with capsys.disabled():
        print(
            f"\n5 sequences + 3 windows + 1 rule: {rate:,.0f} records/s wall, "
            f"{len(records) / cpu:,.0f} records/s of CPU ({count} findings)"
        )
    assert count > 0
    # ~10k records/s of CPU measured on a shared 2-core box; a wide margin for slow CI
    assert rate > 1_000


def test_sql_that_slipped_past_load_checks_is_a_monitor_error_not_a_crash() -> None:
    """A pack built in Python without validation: a group_by that does not compile."""
    window = WindowRule.model_construct(
        id="w",
        severity=Severity.LOW,
        kind=FindingKind.VIOLATION,
        description="",
        message=None,
        when="tool_name = 'pay'",
        group_by=["no_such_column"],
        value=None,
        more_than=0,
        per=WindowPer(turns=1),
    )
    pack = RulePack.model_construct(
        pack="p",
        description="",
        scenarios=None,
        rules=[],
        sequences=[],
        windows=[window],
        final_state=[],
    )
    monitor = RulePackMonitor([pack])
    f = RecordFactory(run_id="run-1")
    found = monitor.observe("run-1", [f.tool_call("pay", {}, 1), f.tool_call("pay", {}, 1)])
    assert [(item.rule_id, item.kind) for item in found] == [
        ("w", FindingKind.VIOLATION),  # every span in the NULL group
        ("w", FindingKind.MONITOR_ERROR),
    ]
    assert "no_such_column" in found[1].message
    monitor.close()


def test_answered_deadlines_do_not_pile_up_while_the_turn_stands_still() -> None:
    rule = SequenceRule(
        id="n",
        severity="low",
        pattern="a_not_followed_by_b",
        a="tool_name = 'open'",
        b="tool_name = 'close'",
        same=["tool_call_id"],
        within_turns=1,
    )
    tracker = SequenceTracker(rule, cap=10)
    f = RecordFactory()
    for n in range(1_000):  # one turn, a thousand tickets opened and closed
        tracker.step(f.tool_call("open", {}, 1), 1, {"a"}, (n,), (n,))
        tracker.step(f.tool_call("close", {}, 1), 1, {"b"}, (n,), (n,))
    assert len(tracker._deadlines) <= 40
    tracker.step(f.tool_call("open", {}, 1), 1, {"a"}, ("late",), ("late",))
    [hit] = tracker.advance(3)
    assert hit.evidence["same"] == {"tool_call_id": "late"}
