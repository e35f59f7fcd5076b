"""default_monitors: what a run gets (rule packs, drift, goal drift, loop, say–do; the
judge only when asked), options and exclusions, and that each carries its spec."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from driftwatch.monitor import (
    DEFAULT_MONITOR_NAMES,
    DriftMonitor,
    GoalDriftMonitor,
    JudgeMonitor,
    RepetitionMonitor,
    RulePackMonitor,
    SayDoMonitor,
    create_monitor,
    default_monitors,
)


class Judge:
    def complete(self, messages: Any) -> Any:
        return SimpleNamespace(
            text='{"consistent": true, "violated_constraint": null, "explanation": "ok"}'
        )


def test_the_defaults_are_rule_packs_drift_goal_loop_and_say_do(oversight_pack: Path) -> None:
    monitors = default_monitors([oversight_pack])
    assert [type(m) for m in monitors] == [
        RulePackMonitor,
        DriftMonitor,
        GoalDriftMonitor,
        RepetitionMonitor,
        SayDoMonitor,
    ]
    assert [m.spec["name"] for m in monitors] == list(DEFAULT_MONITOR_NAMES)
    assert type(default_monitors()[0]) is DriftMonitor  # no packs, no rule-pack monitor


def test_the_judge_only_when_configured_and_options_reach_each_monitor() -> None:
    monitors = default_monitors(
        judge=Judge(),
        judge_options={"every_turns": 3},
        loop_options={"min_repeats": 4},
        embedding_model="openai/text-embedding-3-small",
    )
    judge = monitors[-1]
    assert isinstance(judge, JudgeMonitor)
    assert judge.every_turns == 3
    loop = next(m for m in monitors if isinstance(m, RepetitionMonitor))
    assert loop.min_repeats == 4
    goal = next(m for m in monitors if isinstance(m, GoalDriftMonitor))
    assert goal.method == "embedding"
    assert isinstance(default_monitors(judge="simulated/steadfast")[-1], JudgeMonitor)
    ready = JudgeMonitor(client=Judge())
    assert default_monitors(judge=ready)[-1] is ready


def test_exclude_drops_monitors_by_name() -> None:
    monitors = default_monitors(exclude={"goal_drift", "loop"})
    assert [m.spec["name"] for m in monitors] == ["drift", "say_do"]
    with pytest.raises(ValueError, match="unknown monitor names"):
        default_monitors(exclude={"gole_drift"})


def test_a_stored_spec_rebuilds_the_monitor_by_name() -> None:
    for monitor in default_monitors(drift_options={"h": 4.0}):
        rebuilt = create_monitor(monitor.spec["name"], **monitor.spec["args"])
        assert rebuilt.spec == monitor.spec
