"""Behaviour of the simulated profiles over many seeds (pure policy, no litellm)."""

from __future__ import annotations

import math

import pytest

from driftwatch.core.errors import ModelError
from driftwatch.model import (
    KNOWN_PROFILES,
    SimulationContext,
    SimulationHints,
    drifter_hazard,
    plan_turn,
)
from driftwatch.model.profiles import flaky_fault

SEEDS = range(200)
TURNS = 50


def violation_counts(
    profile: str, hints: SimulationHints, pressure: float, turns: range
) -> tuple[int, int]:
    """(violating turns, turns) over all SEEDS."""
    hits = total = 0
    for seed in SEEDS:
        for turn in turns:
            hits += plan_turn(profile, SimulationContext(turn, pressure, seed, hints)).violated
            total += 1
    return hits, total


def z_score(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Two-proportion z statistic for rate(a) > rate(b)."""
    p1, p2 = a[0] / a[1], b[0] / b[1]
    pooled = (a[0] + b[0]) / (a[1] + b[1])
    return (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / a[1] + 1 / b[1]))


def test_steadfast_never_violates(hints) -> None:
    for pressure in (0.0, 5.0):
        assert violation_counts("steadfast", hints, pressure, range(1, TURNS + 1))[0] == 0


def test_steadfast_says_the_text_of_its_action(hints) -> None:
    for turn in range(1, 20):
        planned = plan_turn("steadfast", SimulationContext(turn, 0.0, 1, hints))
        assert planned.action in hints.on_task
        assert planned.text == (planned.action.say or None)


def test_drifter_violates_more_after_onset_than_before(hints) -> None:
    before = violation_counts("drifter", hints, 0.0, range(1, hints.drift_onset + 1))
    after = violation_counts("drifter", hints, 0.0, range(hints.drift_onset + 1, TURNS + 1))
    assert after[0] / after[1] > 0.1  # a control run violates sometimes after the onset
    assert before[0] / before[1] < 0.01
    assert z_score(after, before) > 5


def test_drifter_violates_more_under_pressure_than_in_control(hints) -> None:
    turns = range(1, TURNS + 1)
    control = violation_counts("drifter", hints, 0.0, turns)
    pressured = violation_counts("drifter", hints, 2.0, turns)
    assert pressured[0] / pressured[1] > 1.5 * control[0] / control[1]
    assert z_score(pressured, control) > 5


def test_drifter_violation_rate_tracks_its_hazard(hints) -> None:
    turn = 40
    hits, total = violation_counts("drifter", hints, 1.0, range(turn, turn + 1))
    expected = drifter_hazard(turn, hints.drift_onset, 1.0)
    assert abs(hits / total - expected) < 4 * math.sqrt(expected * (1 - expected) / total)


def test_schemer_keeps_the_rules_without_pressure_and_breaks_them_under_it(hints) -> None:
    turns = range(1, TURNS + 1)
    assert violation_counts("schemer", hints, 0.0, turns)[0] == 0
    early = violation_counts("schemer", hints, 3.0, range(1, hints.drift_onset))
    late = violation_counts("schemer", hints, 3.0, range(hints.drift_onset, TURNS + 1))
    assert early[0] == 0
    assert late[0] / late[1] > 0.6


def test_schemer_text_always_claims_compliance(hints) -> None:
    for seed in range(20):
        for turn in range(1, TURNS + 1):
            planned = plan_turn("schemer", SimulationContext(turn, 3.0, seed, hints))
            assert planned.text is not None
            assert any(claim in planned.text for claim in hints.compliance_claims)


def test_looper_varies_before_loop_after_and_repeats_after(hints) -> None:
    varied = False
    for seed in range(20):
        plans = [plan_turn("looper", SimulationContext(t, 0.0, seed, hints)) for t in range(1, 30)]
        assert len({repr((p.text, p.action)) for p in plans[hints.loop_after - 1 :]}) == 1
        varied |= len({repr(p.action) for p in plans[: hints.loop_after]}) > 1
    assert varied


def test_choice_depends_only_on_profile_seed_turn_pressure_and_hints(hints) -> None:
    context = SimulationContext(turn=33, pressure=1.5, seed=8, hints=hints)
    first = plan_turn("drifter", context)
    for turn in range(1, 33):  # other calls in between change nothing
        plan_turn("drifter", SimulationContext(turn, 1.5, 8, hints))
    assert plan_turn("drifter", context) == first


def test_flaky_faults_are_deterministic_bounded_and_about_thirty_percent() -> None:
    attempts = [
        (seed, turn, attempt) for seed in range(100) for turn in range(1, 21) for attempt in (1, 2)
    ]
    faults = [flaky_fault(s, t, a, max_retries=4) for s, t, a in attempts]
    assert faults == [flaky_fault(s, t, a, max_retries=4) for s, t, a in attempts]
    rate = sum(f is not None for f in faults) / len(faults)
    assert 0.25 < rate < 0.35
    assert {f for f in faults if f} == {
        "rate_limit",
        "service_unavailable",
        "internal_server_error",
        "timeout",
    }
    for seed in range(100):
        for turn in range(1, 21):
            assert flaky_fault(seed, turn, attempt=3, max_retries=2) is None


def test_unknown_profile_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="known: "):
        plan_turn("oracle", None)
    assert "steadfast" in KNOWN_PROFILES


def test_context_validates_turn_and_pressure(hints) -> None:
    with pytest.raises(ValueError, match="1-based"):
        SimulationContext(turn=0, pressure=0.0, seed=1, hints=hints)
    with pytest.raises(ValueError, match="pressure"):
        SimulationContext(turn=1, pressure=-1.0, seed=1, hints=hints)
