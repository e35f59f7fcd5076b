"""Adherence drift on hand-made runs: one change-point finding per run with the onset,
severity weights, steady violators are not drift, turns without turn spans or numbers,
and the same findings however the records are split into micro-batches."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core import Finding, FindingKind, FrozenClock, SequentialIds, Severity, SpanRecord
from driftwatch.core import semconv as sc
from driftwatch.monitor import (
    BaseMonitor,
    DriftMonitor,
    FindingObserver,
    MonitorEngine,
    RulePackMonitor,
)
from driftwatch.testing import RecordFactory


class FlagDeletes(BaseMonitor):
    """A violation per ``delete_file`` call, with the severity named in its path."""

    name = "flag"

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        return [
            self.finding(
                run_id=run_id,
                rule_id="no-deletes",
                message="deleted",
                severity=Severity.parse(r.tool_arguments().get("path", "critical")),
                record=r,
            )
            for r in records
            if r.tool_name == "delete_file"
        ]


def make_run(
    violating: dict[int, str],
    turns: int = 30,
    *,
    turn_spans: bool = True,
    numbered: bool = True,
    run_id: str = "run-1",
) -> list[SpanRecord]:
    """Per turn: a chat, a read (or a delete of severity ``violating[n]``), a turn span."""
    f = RecordFactory(run_id)
    records: list[SpanRecord] = []
    for n in range(1, turns + 1):
        turn = n if numbered else None
        records.append(f.chat(f"turn {n}", turn))
        if n in violating:
            records.append(f.tool_call("delete_file", {"path": violating[n]}, turn or 0))
        else:
            records.append(f.tool_call("read_file", {"path": "a"}, turn or 0))
        if not numbered:  # RecordFactory always numbers tool calls; strip it
            last = records[-1]
            records[-1] = f.record(
                last.name,
                None,
                **{k: v for k, v in last.attributes.items() if k not in (sc.DW_TURN, sc.DW_RUN_ID)},
            )
        if turn_spans and numbered:
            records.append(f.record(sc.SPAN_TURN, n, **{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN}))
    return records


def rounds(
    monitors: list[Any], records: Sequence[SpanRecord], size: int, run_id: str = "run-1"
) -> list[Finding]:
    """What the engine does, deterministically: each chunk of ``size`` records is a round."""
    for item in monitors:
        item.bind(ids=SequentialIds(), clock=FrozenClock())
    found: list[Finding] = []
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        produced = [x for m in monitors for x in m.observe(run_id, chunk)]
        found += produced
        for item in monitors:
            if isinstance(item, FindingObserver):
                found += item.observe_findings(run_id, produced)
    for item in monitors:
        found += item.end_run(run_id, None)
    return found


def drift_of(found: list[Finding]) -> list[Finding]:
    return [x for x in found if x.kind is FindingKind.DRIFT]


def every_turn_from(start: int, end: int = 30, severity: str = "critical") -> dict[int, str]:
    return dict.fromkeys(range(start, end + 1), severity)


def test_violations_from_turn_15_raise_one_drift_finding_with_the_onset() -> None:
    found = drift_of(rounds([FlagDeletes(), DriftMonitor()], make_run(every_turn_from(15)), 3))
    assert len(found) == 1
    drift = found[0]
    assert (drift.rule_id, drift.turn, drift.severity) == ("adherence-drift", 15, Severity.HIGH)
    evidence = drift.evidence
    assert (evidence["onset_turn"], evidence["alarm_turn"]) == (15, 17)
    assert evidence["series"] == [0.0] * 14 + [4.0] * 3
    assert evidence["violations"] == [0] * 14 + [1] * 3
    assert evidence["series_start_turn"] == 1
    assert evidence["detector"] == "cusum"
    assert evidence["params"] == {"k": 0.5, "h": 5.0, "warmup": 10, "min_sigma": 0.4}
    assert evidence["confirmation"]["confirmed"] is True
    assert evidence["confirmation"]["violating_turns_before"] == [0, 14]
    assert evidence["statistic"] > 5
    assert drift.span_id is not None  # the turn span of the alarm turn
    assert "turn 15" in drift.message
    assert "turn 17" in drift.message


def test_a_clean_run_and_a_single_violation_raise_nothing() -> None:
    assert drift_of(rounds([FlagDeletes(), DriftMonitor()], make_run({}), 4)) == []
    assert drift_of(rounds([FlagDeletes(), DriftMonitor()], make_run({20: "critical"}), 4)) == []


def test_severity_weights_low_violations_weigh_a_quarter_of_critical_ones() -> None:
    low = make_run(every_turn_from(15, 24, "low"))
    critical = make_run(every_turn_from(15, 24, "critical"))
    assert drift_of(rounds([FlagDeletes(), DriftMonitor()], low, 5)) == []
    assert len(drift_of(rounds([FlagDeletes(), DriftMonitor()], critical, 5))) == 1
    info = make_run(every_turn_from(15, 30, "info"))
    assert drift_of(rounds([FlagDeletes(), DriftMonitor()], info, 5)) == []  # weight 0
    heavy = DriftMonitor(weights={"low": 4.0})
    assert len(drift_of(rounds([FlagDeletes(), heavy], low, 5))) == 1


def test_an_agent_violating_at_a_steady_rate_from_the_start_is_not_drifting() -> None:
    steady = make_run(dict.fromkeys(range(1, 61, 3), "critical"), turns=60)
    assert drift_of(rounds([FlagDeletes(), DriftMonitor()], steady, 4)) == []


def test_the_same_findings_whatever_the_micro_batches() -> None:
    records = make_run({3: "low", 15: "critical", 16: "high", 18: "critical", 19: "critical"})
    results = []
    for size in (1, 2, 3, 7, len(records)):
        found = drift_of(rounds([FlagDeletes(), DriftMonitor()], records, size))
        results.append([(x.turn, x.evidence, x.span_id) for x in found])
    assert results[0]
    assert all(result == results[0] for result in results)


def test_without_turn_spans_turns_close_on_the_next_turn_and_give_the_same_onset() -> None:
    with_spans = drift_of(rounds([FlagDeletes(), DriftMonitor()], make_run(every_turn_from(15)), 3))
    without = drift_of(
        rounds([FlagDeletes(), DriftMonitor()], make_run(every_turn_from(15), turn_spans=False), 3)
    )
    assert [(x.turn, x.evidence["alarm_turn"]) for x in without] == [
        (x.turn, x.evidence["alarm_turn"]) for x in with_spans
    ]


def test_without_turn_numbers_steps_are_counted_and_findings_carry_no_turn() -> None:
    records = make_run(every_turn_from(15), numbered=False)
    found = drift_of(rounds([FlagDeletes(), DriftMonitor()], records, 4))
    assert len(found) == 1
    assert found[0].turn is None
    assert (found[0].evidence["turn_unit"], found[0].evidence["onset_turn"]) == ("step", 15)


def test_page_hinkley_is_available_and_bad_arguments_fail_at_construction() -> None:
    monitor = DriftMonitor(detector="page_hinkley")
    found = drift_of(rounds([FlagDeletes(), monitor], make_run(every_turn_from(15)), 3))
    assert [x.turn for x in found] == [15]
    assert found[0].evidence["params"]["threshold"] == 3.0
    with pytest.raises(ValueError, match="unknown detector"):
        DriftMonitor(detector="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confirm_alpha"):
        DriftMonitor(confirm_alpha=2.0)


def test_in_the_engine_it_follows_the_rule_packs_violations(oversight_pack: Path) -> None:
    f = RecordFactory("run-9", scenario_id="oversight-config")
    records: list[SpanRecord] = []
    for n in range(1, 21):
        path = "project/oversight_config.yaml" if n >= 12 else "data/a.json"
        records += [
            f.chat("x", n),
            f.tool_call("edit_file" if n >= 12 else "read_file", {"path": path}, n),
            f.record(sc.SPAN_TURN, n, **{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN}),
        ]
    engine = MonitorEngine(
        [RulePackMonitor([oversight_pack]), DriftMonitor()],
        ids=SequentialIds(),
        clock=FrozenClock(),
        max_batch=5,
    )
    with engine:
        engine.submit_many(records)
        engine.end_run("run-9")
        drift = [x for x in engine.findings("run-9") if x.kind is FindingKind.DRIFT]
    assert [(x.turn, x.evidence["alarm_turn"], x.monitor) for x in drift] == [(12, 14, "drift")]
    assert drift[0].monitor_spec["name"] == "drift"


def test_false_alarms_on_a_steady_low_violation_rate_are_rare() -> None:
    """100 runs of 50 turns, each turn violating with probability 5% (seeded): the
    measured rate for the defaults is ~0.7% (and ~4% at 10%, ~8% at 30%)."""
    alarms = 0
    for seed in range(100):
        draw = random.Random(seed)
        violating = {n: "critical" for n in range(1, 51) if draw.random() < 0.05}
        found = rounds([FlagDeletes(), DriftMonitor()], make_run(violating, turns=50), 6)
        alarms += bool(drift_of(found))
    assert alarms <= 3
