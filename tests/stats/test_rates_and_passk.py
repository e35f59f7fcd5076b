"""Wilson intervals (vs statsmodels), the violation rate by turn, and pass^k."""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from driftwatch.stats import (
    RunTurns,
    StatsInputError,
    pass_hat_k,
    pass_k_curve,
    violation_rate_by_turn,
    wilson_interval,
)

WILSON_GRID = [
    (x, n) for n in (1, 2, 3, 5, 10, 17, 50, 200, 10_000) for x in sorted({0, 1, n // 3, n - 1, n})
]


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize(("successes", "trials"), WILSON_GRID)
def test_wilson_matches_statsmodels(successes: int, trials: int, confidence: float) -> None:
    expected = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    assert wilson_interval(successes, trials, confidence) == pytest.approx(expected, abs=1e-13)


def test_wilson_stays_in_unit_interval_and_contains_the_proportion() -> None:
    rng = np.random.default_rng(21)
    for _ in range(500):
        trials = int(rng.integers(1, 1000))
        successes = int(rng.integers(0, trials + 1))
        low, high = wilson_interval(successes, trials, float(rng.uniform(0.5, 0.999)))
        assert 0.0 <= low <= successes / trials <= high <= 1.0


@pytest.mark.parametrize(
    ("successes", "trials", "message"),
    [(1, 0, "at least one run"), (5, 3, "cannot exceed"), (-1, 3, "non-negative")],
)
def test_wilson_rejects_impossible_counts(successes: int, trials: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, trials)


def test_rate_by_turn_counts_only_runs_that_reached_the_turn() -> None:
    runs = [
        RunTurns.from_flags([False, True, False]),
        RunTurns.from_flags([True]),
        RunTurns(5, frozenset({2, 5})),
    ]
    rates = violation_rate_by_turn(runs)
    assert rates.turn.tolist() == [1, 2, 3, 4, 5]
    assert rates.at_risk.tolist() == [3, 2, 2, 1, 1]
    assert rates.violating.tolist() == [1, 2, 0, 0, 1]
    assert rates.rate.tolist() == [1 / 3, 1.0, 0.0, 0.0, 1.0]


def test_rate_by_turn_matches_a_direct_count_and_statsmodels_wilson() -> None:
    rng = np.random.default_rng(22)
    flags = [rng.random(int(rng.integers(0, 40))) < 0.15 for _ in range(300)]
    rates = violation_rate_by_turn([RunTurns.from_flags(list(f)) for f in flags], confidence=0.9)
    for row, turn in enumerate(rates.turn):
        reached = [f for f in flags if len(f) >= turn]
        violating = sum(bool(f[turn - 1]) for f in reached)
        assert (rates.at_risk[row], rates.violating[row]) == (len(reached), violating)
        expected = proportion_confint(violating, len(reached), alpha=0.1, method="wilson")
        assert (rates.low[row], rates.high[row]) == pytest.approx(expected, abs=1e-13)


def test_rate_by_turn_is_json_ready_and_fast_for_ten_thousand_runs() -> None:
    rng = np.random.default_rng(23)
    runs = [
        RunTurns.from_violation_turns(t, (np.flatnonzero(rng.random(t) < 0.1) + 1).tolist())
        for t in rng.integers(1, 50, 10_000).tolist()
    ]
    start = time.perf_counter()
    rates = violation_rate_by_turn(runs)
    assert time.perf_counter() - start < 0.25
    assert json.loads(json.dumps(rates.to_dict()))["at_risk"][0] == 10_000


def test_run_turns_rejects_violations_outside_the_run() -> None:
    with pytest.raises(ValueError, match="outside"):
        RunTurns(3, frozenset({4}))
    with pytest.raises(ValueError, match="outside"):
        RunTurns(3, frozenset({0}))


def test_rate_by_turn_rejects_no_runs_and_runs_without_turns() -> None:
    with pytest.raises(ValueError, match="no runs"):
        violation_rate_by_turn([])
    with pytest.raises(StatsInputError, match="0 turns"):
        violation_rate_by_turn([RunTurns(0)])


@pytest.mark.parametrize(("clean", "runs"), [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (40, 60)])
def test_pass_hat_k_is_the_binomial_ratio(clean: int, runs: int) -> None:
    curve = pass_k_curve(clean, runs)
    for k in range(1, runs + 1):
        exact = Fraction(math.comb(clean, k), math.comb(runs, k))
        assert pass_hat_k(clean, runs, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-300)
        assert curve.estimate[k - 1] == pytest.approx(float(exact), rel=1e-12, abs=1e-300)
    assert curve.estimate[0] == clean / runs


def test_pass_k_interval_is_wilson_to_the_power_k() -> None:
    curve = pass_k_curve(8, 10, confidence=0.9)
    low, high = proportion_confint(8, 10, alpha=0.1, method="wilson")
    np.testing.assert_allclose(curve.low, low**curve.k, rtol=1e-12)
    np.testing.assert_allclose(curve.high, high**curve.k, rtol=1e-12)
    assert curve.at(3) == (float(curve.estimate[2]), float(curve.low[2]), float(curve.high[2]))


def test_pass_k_falls_with_k_and_the_plug_in_stays_inside_the_interval() -> None:
    for clean, runs in [(0, 3), (5, 9), (19, 20), (20, 20), (123, 150)]:
        curve = pass_k_curve(clean, runs)
        assert np.all(np.diff(curve.estimate) <= 0)
        assert np.all((curve.low <= curve.plug_in) & (curve.plug_in <= curve.high))
        assert np.all((curve.low >= 0) & (curve.high <= 1))


def test_pass_k_of_many_runs_does_not_overflow() -> None:
    curve = pass_k_curve(9_000, 10_000)
    assert np.all(np.isfinite(curve.estimate))
    assert curve.estimate[99] == pytest.approx(
        float(Fraction(math.comb(9_000, 100), math.comb(10_000, 100))), rel=1e-9
    )


@pytest.mark.parametrize(("clean", "runs", "k"), [(3, 5, 0), (3, 5, 6), (6, 5, 1), (0, 0, 1)])
def test_pass_hat_k_rejects_bad_arguments(clean: int, runs: int, k: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        pass_hat_k(clean, runs, k)
