"""Kaplan–Meier: cross-checked against lifelines on generated data, plus properties and
edge cases."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times, restricted_mean_survival_time

from driftwatch.stats import RunOutcomes, StatsInputError, SurvivalCurve, kaplan_meier

Case = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]


def _lifelines_fit(case: Case, confidence: float = 0.95) -> KaplanMeierFitter:
    durations, observed = case
    return KaplanMeierFitter(alpha=1 - confidence).fit(durations, observed)


def _none_if_inf(value: float) -> float | None:
    return None if math.isinf(value) else float(value)


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_survival_and_loglog_band_match_lifelines(survival_case: Case, confidence: float) -> None:
    curve = kaplan_meier(*survival_case, confidence=confidence)
    fitted = _lifelines_fit(survival_case, confidence)
    np.testing.assert_array_equal(curve.times, fitted.survival_function_.index.to_numpy())
    np.testing.assert_allclose(
        curve.survival, fitted.survival_function_.iloc[:, 0].to_numpy(), rtol=1e-12, atol=1e-14
    )
    band = fitted.confidence_interval_.to_numpy()
    np.testing.assert_allclose(curve.lower, band[:, 0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(curve.upper, band[:, 1], rtol=1e-10, atol=1e-13)


def test_risk_table_matches_lifelines_event_table(survival_case: Case) -> None:
    curve = kaplan_meier(*survival_case)
    table = _lifelines_fit(survival_case).event_table
    np.testing.assert_array_equal(curve.times, table.index.to_numpy())
    np.testing.assert_array_equal(curve.at_risk, table["at_risk"].to_numpy())
    np.testing.assert_array_equal(curve.events, table["observed"].to_numpy())
    np.testing.assert_array_equal(curve.censored, table["censored"].to_numpy())


def test_median_and_its_interval_match_lifelines(survival_case: Case) -> None:
    """Same as lifelines' median, up to rounding: lifelines forms Ŝ as exp(Σ log), which
    can land a hair above an exact 0.5 (e.g. 5/6 · 4/5 · 3/4), so both are read with a
    1e-12 tolerance."""
    curve = kaplan_meier(*survival_case)
    fitted = _lifelines_fit(survival_case)
    nudge = 1e-12
    expected = median_survival_times(fitted.survival_function_ - nudge)
    assert curve.median() == _none_if_inf(expected)
    low, high = median_survival_times(fitted.confidence_interval_ - nudge).to_numpy()[0]
    assert curve.median_ci() == (_none_if_inf(low), _none_if_inf(high))


def test_survival_at_is_the_step_function_lifelines_predicts(survival_case: Case) -> None:
    curve = kaplan_meier(*survival_case)
    fitted = _lifelines_fit(survival_case)
    queries = np.unique(np.concatenate([curve.times, curve.times + 0.5, [0.25]]))
    queries = queries[queries <= curve.times[-1]]
    expected = np.asarray(fitted.predict(queries.tolist()), dtype=float)
    np.testing.assert_allclose(curve.survival_at(queries), expected, rtol=1e-12)
    assert curve.survival_at(-1.0) == 1.0
    assert curve.survival_at(curve.times[-1] + 100) == curve.survival[-1]


def test_restricted_mean_matches_lifelines(survival_case: Case) -> None:
    curve = kaplan_meier(*survival_case)
    fitted = _lifelines_fit(survival_case)
    last = float(curve.times[-1])
    for horizon in sorted({last, last / 2, float(np.median(curve.times)), 0.0}):
        expected = restricted_mean_survival_time(fitted, t=horizon)
        assert curve.restricted_mean(horizon).estimate == pytest.approx(expected, rel=1e-12)


def test_restricted_mean_std_error_without_censoring_is_the_sample_formula() -> None:
    """With no censoring RMST is the mean of min(T, τ), and its Greenwood-type variance
    reduces exactly to the plug-in variance of that mean."""
    rng = np.random.default_rng(11)
    durations = rng.geometric(0.1, 60).astype(float)
    curve = kaplan_meier(durations, np.ones(60, dtype=bool))
    truncated = np.minimum(durations, 12.0)
    result = curve.restricted_mean(12.0)
    assert result.estimate == pytest.approx(truncated.mean(), rel=1e-12)
    assert result.std_error == pytest.approx(math.sqrt(truncated.var() / 60), rel=1e-10)


def test_restricted_mean_std_error_agrees_with_a_bootstrap_under_censoring() -> None:
    rng = np.random.default_rng(12)
    n = 150
    first = rng.geometric(0.06, n).astype(float)
    end = rng.integers(5, 40, n).astype(float)
    durations, observed = np.minimum(first, end), first <= end
    horizon = 20.0
    analytic = kaplan_meier(durations, observed).restricted_mean(horizon).std_error
    boot = np.random.default_rng(13)
    estimates = []
    for _ in range(1500):
        pick = boot.integers(0, n, n)
        curve = kaplan_meier(durations[pick], observed[pick])
        if curve.times[-1] >= horizon:
            estimates.append(curve.restricted_mean(horizon).estimate)
    assert analytic == pytest.approx(float(np.std(estimates)), rel=0.1)


def test_survival_never_increases_and_bands_contain_it(survival_case: Case) -> None:
    curve = kaplan_meier(*survival_case)
    assert np.all(np.diff(curve.survival) <= 0)
    assert np.all((curve.lower <= curve.survival) & (curve.survival <= curve.upper))
    assert np.all((curve.lower >= 0) & (curve.upper <= 1))
    assert curve.survival[0] == 1.0 or curve.times[0] == 0.0


def test_all_censored_gives_survival_one_and_no_median() -> None:
    curve = kaplan_meier([3, 5, 5, 9], [False] * 4)
    assert np.all(curve.survival == 1.0)
    assert np.all(curve.lower == 1.0)
    assert curve.median() is None
    assert curve.median_ci() == (None, None)


def test_median_counts_a_curve_that_reaches_one_half_exactly() -> None:
    # 5/6 · 4/5 · 3/4 = 1/2 at t = 4, whatever the floating-point rounding.
    curve = kaplan_meier([0.5, 2, 3, 4, 6, 8, 9], [False] + [True] * 6)
    assert curve.median() == 4.0


def test_median_is_first_turn_survival_reaches_one_half() -> None:
    # S: 1 -> 0.75 (turn 2) -> 0.5 (turn 4) -> 0.25 (turn 6)
    curve = kaplan_meier([2, 4, 6, 8], [True, True, True, False])
    assert curve.survival_at(4) == 0.5
    assert curve.median() == 4.0


def test_curve_arrays_are_read_only() -> None:
    curve = kaplan_meier([1, 2, 3], [True, False, True])
    with pytest.raises(ValueError, match="read-only"):
        curve.survival[0] = 0.5


def test_to_dict_is_json_ready() -> None:
    curve = kaplan_meier([1, 2, 2, 7], [True, True, False, False])
    data = json.loads(json.dumps(curve.to_dict()))
    assert data["runs"] == 4
    assert data["times"] == [0.0, 1.0, 2.0, 7.0]
    assert data["median"] == 2.0
    assert len(data["survival"]) == len(data["lower"]) == len(data["at_risk"]) == 4


@pytest.mark.parametrize(
    ("durations", "observed", "message"),
    [
        ([], [], "empty"),
        ([1, 2], [True], "differ in length"),
        ([1, -2], [True, True], ">= 0"),
        ([1, float("nan")], [True, True], "finite"),
        ([1, 2], [1, 2], "booleans"),
    ],
)
def test_invalid_input_is_a_clear_value_error(
    durations: list[float], observed: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        kaplan_meier(durations, observed)


def test_confidence_outside_zero_one_is_rejected() -> None:
    with pytest.raises(StatsInputError, match="confidence"):
        kaplan_meier([1, 2], [True, True], confidence=1.0)


def test_restricted_mean_rejects_horizon_beyond_follow_up() -> None:
    curve = kaplan_meier([1, 2, 3], [True, False, False])
    with pytest.raises(ValueError, match="follow-up"):
        curve.restricted_mean(3.5)


def test_run_outcomes_from_runs_censors_clean_runs_at_their_last_turn() -> None:
    outcomes = RunOutcomes.from_runs([30, 30, 12], [4, None, None])
    assert outcomes.durations == (4.0, 30.0, 12.0)
    assert outcomes.observed == (True, False, False)
    assert (outcomes.runs, outcomes.violating, outcomes.clean) == (3, 1, 2)
    assert isinstance(outcomes.kaplan_meier(), SurvivalCurve)
    with pytest.raises(ValueError, match="outside"):
        RunOutcomes.from_runs([10], [11])


def test_ten_thousand_runs_take_milliseconds() -> None:
    rng = np.random.default_rng(5)
    durations = rng.geometric(0.03, 10_000).astype(float)
    observed = rng.random(10_000) < 0.7
    kaplan_meier(durations, observed)  # warm up
    start = time.perf_counter()
    kaplan_meier(durations, observed)
    assert time.perf_counter() - start < 0.05
