"""Two-group comparisons: Newcombe difference and risk ratio (vs statsmodels), log-rank
and RMST (vs lifelines), Fisher's exact test (vs scipy)."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test as lifelines_logrank_test
from lifelines.utils import restricted_mean_survival_time
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep

from driftwatch.stats import (
    fisher_exact_greater,
    logrank_test,
    rate_difference,
    restricted_mean_difference,
)

Case = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]

COUNT_GRID = [
    (0, 10, 0, 10),
    (3, 10, 0, 10),
    (10, 10, 4, 12),
    (0, 1, 1, 1),
    (7, 20, 2, 20),
    (1, 5, 4, 5),
    (45, 100, 30, 110),
    (2, 3, 250, 400),
    (4_000, 10_000, 3_900, 10_000),
]


@pytest.mark.parametrize("confidence", [0.9, 0.95])
@pytest.mark.parametrize(("violating_a", "n_a", "violating_b", "n_b"), COUNT_GRID)
def test_rate_difference_matches_statsmodels(
    violating_a: int, n_a: int, violating_b: int, n_b: int, confidence: float
) -> None:
    result = rate_difference(n_a - violating_a, n_a, n_b - violating_b, n_b, confidence)
    alpha = 1 - confidence
    newcombe = confint_proportions_2indep(
        violating_a, n_a, violating_b, n_b, method="newcomb", compare="diff", alpha=alpha
    )
    ratio = confint_proportions_2indep(
        violating_a, n_a, violating_b, n_b, method="log-adjusted", compare="ratio", alpha=alpha
    )
    assert result.difference == pytest.approx(violating_a / n_a - violating_b / n_b, abs=1e-15)
    assert (result.low, result.high) == pytest.approx(newcombe, abs=1e-12)
    assert (result.ratio_low, result.ratio_high) == pytest.approx(ratio, rel=1e-12)
    assert -1.0 <= result.low <= result.difference <= result.high <= 1.0


def test_risk_ratio_is_none_when_the_reference_never_violates() -> None:
    assert rate_difference(7, 10, 10, 10).risk_ratio is None
    assert rate_difference(5, 10, 8, 10).risk_ratio == pytest.approx(2.5)


def test_rate_difference_is_json_ready() -> None:
    data = json.loads(json.dumps(rate_difference(5, 10, 8, 10).to_dict()))
    assert data["violating_a"] == 5
    assert data["violating_b"] == 2


def test_rate_difference_rejects_more_clean_than_runs() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        rate_difference(11, 10, 3, 10)


def test_logrank_matches_lifelines(survival_pair: tuple[Case, Case]) -> None:
    (durations_a, observed_a), (durations_b, observed_b) = survival_pair
    ours = logrank_test(durations_a, observed_a, durations_b, observed_b)
    theirs = lifelines_logrank_test(durations_a, durations_b, observed_a, observed_b)
    assert ours.statistic == pytest.approx(theirs.test_statistic, rel=1e-9, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.p_value, rel=1e-9, abs=1e-15)
    assert ours.observed_a + ours.observed_b == observed_a.sum() + observed_b.sum()
    assert ours.expected_a + ours.expected_b == pytest.approx(ours.observed_a + ours.observed_b)


def test_logrank_one_sided_p_follows_the_direction_of_observed_minus_expected() -> None:
    rng = np.random.default_rng(31)
    sooner = np.minimum(rng.geometric(0.2, 40), 30).astype(float)
    later = np.minimum(rng.geometric(0.05, 40), 30).astype(float)
    result = logrank_test(sooner, sooner < 30, later, later < 30)
    assert result.observed_a > result.expected_a
    assert result.z > 0
    assert result.p_value_one_sided("a") == pytest.approx(result.p_value / 2, rel=1e-9)
    assert result.p_value_one_sided("b") == pytest.approx(1 - result.p_value / 2, rel=1e-9)


def test_logrank_without_any_violation_has_p_one() -> None:
    result = logrank_test([5, 6], [False, False], [3, 9], [False, False])
    assert (result.statistic, result.p_value, result.variance) == (0.0, 1.0, 0.0)
    assert result.p_value_one_sided("a") == result.p_value_one_sided("b") == 1.0


def test_logrank_rejects_an_empty_group() -> None:
    with pytest.raises(ValueError, match="durations_b is empty"):
        logrank_test([1, 2], [True, False], [], [])


def _lifelines_rmst(case: Case, horizon: float) -> float:
    fitted = KaplanMeierFitter().fit(*case)
    return float(restricted_mean_survival_time(fitted, t=horizon))


def test_restricted_mean_difference_matches_lifelines_rmst(
    survival_pair: tuple[Case, Case],
) -> None:
    case_a, case_b = survival_pair
    result = restricted_mean_difference(*case_a, *case_b)
    assert result.horizon == min(case_a[0].max(), case_b[0].max())
    assert result.rmst_a == pytest.approx(_lifelines_rmst(case_a, result.horizon), rel=1e-12)
    assert result.rmst_b == pytest.approx(_lifelines_rmst(case_b, result.horizon), rel=1e-12)
    assert result.difference == pytest.approx(result.rmst_a - result.rmst_b)
    assert result.low <= result.difference <= result.high
    assert 0.0 <= result.p_value <= 1.0


def test_restricted_mean_difference_interval_is_normal_approximation() -> None:
    rng = np.random.default_rng(32)
    first_a, first_b = rng.geometric(0.12, 80), rng.geometric(0.06, 90)
    end_a, end_b = rng.integers(10, 31, 80), rng.integers(10, 31, 90)
    result = restricted_mean_difference(
        np.minimum(first_a, end_a),
        first_a <= end_a,
        np.minimum(first_b, end_b),
        first_b <= end_b,
        horizon=15,
        confidence=0.9,
    )
    se = math.hypot(result.std_error_a, result.std_error_b)
    z = 1.6448536269514722
    assert (result.low, result.high) == pytest.approx(
        (result.difference - z * se, result.difference + z * se), rel=1e-12
    )
    assert result.difference < 0  # a violates sooner
    assert result.p_value == pytest.approx(math.erfc(abs(result.difference) / se / math.sqrt(2)))


def test_restricted_mean_difference_rejects_horizon_beyond_shared_follow_up() -> None:
    with pytest.raises(ValueError, match="follow-up both groups share"):
        restricted_mean_difference([3, 10], [True, False], [4, 6], [True, False], horizon=8)


@pytest.mark.parametrize(("violating_a", "n_a", "violating_b", "n_b"), COUNT_GRID)
def test_fisher_exact_greater_matches_scipy(
    violating_a: int, n_a: int, violating_b: int, n_b: int
) -> None:
    table = [[violating_a, n_a - violating_a], [violating_b, n_b - violating_b]]
    expected = fisher_exact(table, alternative="greater").pvalue
    ours = fisher_exact_greater(violating_a, n_a, violating_b, n_b)
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-300)
