"""Comparing two groups of runs: pressure vs control, or candidate vs baseline.

Group ``a`` is the one suspected to be worse (pressure, candidate), group ``b`` the
reference (control, baseline); every difference is a − b.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from driftwatch.stats._common import (
    BoolArray,
    FloatArray,
    StatsInputError,
    check_counts,
    chi2_1df_sf,
    normal_sf,
    survival_arrays,
    z_two_sided,
)
from driftwatch.stats.rates import wilson_interval
from driftwatch.stats.survival import kaplan_meier

__all__ = [
    "LogRankResult",
    "RateDifference",
    "RestrictedMeanDifference",
    "fisher_exact_greater",
    "logrank_test",
    "rate_difference",
    "restricted_mean_difference",
]

Durations = Sequence[int | float] | FloatArray
Observed = Sequence[bool] | BoolArray


@dataclass(frozen=True)
class RateDifference:
    """Violation proportions of a and b, their difference a − b with the Newcombe
    interval, and the risk ratio a / b with a log interval."""

    violating_a: int
    runs_a: int
    violating_b: int
    runs_b: int
    rate_a: float
    rate_b: float
    difference: float
    low: float
    high: float
    risk_ratio: float | None
    ratio_low: float
    ratio_high: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate_difference(
    clean_a: int, n_a: int, clean_b: int, n_b: int, confidence: float = 0.95
) -> RateDifference:
    """Difference of violation proportions p_a − p_b (p = 1 − clean / n), and p_a / p_b.

    Difference interval: Newcombe's hybrid score method (his method 10): with Wilson
    intervals [l_a, u_a], [l_b, u_b] for each proportion::

        low  = d − √((p_a − l_a)² + (u_b − p_b)²)
        high = d + √((u_a − p_a)² + (p_b − l_b)²)

    Good coverage at small n and never outside [−1, 1]; equals statsmodels'
    ``confint_proportions_2indep(method="newcomb", compare="diff")``.

    Risk ratio: the point estimate p_a / p_b (``None`` when p_b = 0). Its interval is
    the log (Katz) interval with 0.5 added to every count and size so that zero counts
    work: exp(log r' ± z √(1/x_a' − 1/n_a' + 1/x_b' − 1/n_b')); statsmodels'
    ``compare="ratio", method="log-adjusted"``.
    """
    check_counts("clean_a", clean_a, "n_a", n_a)
    check_counts("clean_b", clean_b, "n_b", n_b)
    z = z_two_sided(confidence)
    violating_a, violating_b = n_a - clean_a, n_b - clean_b
    rate_a, rate_b = violating_a / n_a, violating_b / n_b
    low_a, high_a = wilson_interval(violating_a, n_a, confidence)
    low_b, high_b = wilson_interval(violating_b, n_b, confidence)
    difference = rate_a - rate_b
    low = difference - math.hypot(rate_a - low_a, high_b - rate_b)
    high = difference + math.hypot(high_a - rate_a, rate_b - low_b)

    adjusted_a, adjusted_n_a = violating_a + 0.5, n_a + 0.5
    adjusted_b, adjusted_n_b = violating_b + 0.5, n_b + 0.5
    log_ratio = math.log((adjusted_a / adjusted_n_a) / (adjusted_b / adjusted_n_b))
    spread = z * math.sqrt(1 / adjusted_a - 1 / adjusted_n_a + 1 / adjusted_b - 1 / adjusted_n_b)
    return RateDifference(
        violating_a=violating_a,
        runs_a=n_a,
        violating_b=violating_b,
        runs_b=n_b,
        rate_a=rate_a,
        rate_b=rate_b,
        difference=difference,
        low=low,
        high=high,
        risk_ratio=rate_a / rate_b if violating_b else None,
        ratio_low=math.exp(log_ratio - spread),
        ratio_high=math.exp(log_ratio + spread),
        confidence=confidence,
    )


@dataclass(frozen=True)
class RestrictedMeanDifference:
    """RMST of a and b up to ``horizon``, the difference a − b, its interval and the
    two-sided p-value of "no difference". Negative = a violates sooner."""

    horizon: float
    rmst_a: float
    rmst_b: float
    std_error_a: float
    std_error_b: float
    difference: float
    low: float
    high: float
    p_value: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def restricted_mean_difference(
    durations_a: Durations,
    observed_a: Observed,
    durations_b: Durations,
    observed_b: Observed,
    *,
    horizon: float | None = None,
    confidence: float = 0.95,
) -> RestrictedMeanDifference:
    """Difference in restricted mean survival time, RMST_a(τ) − RMST_b(τ).

    RMST(τ) = ∫₀^τ S(t) dt is the expected number of violation-free turns within the
    first τ. Unlike the median it always exists, and unlike a hazard ratio it needs no
    proportional hazards. Each RMST and its standard error come from
    :meth:`SurvivalCurve.restricted_mean`; the groups are independent, so::

        diff ± z √(se_a² + se_b²),   p = 2 P(Z > |diff| / se)

    ``horizon`` defaults to the shorter of the two groups' longest follow-up (the
    largest τ both curves estimate) and may not exceed it. The normal approximation
    wants tens of runs per group with events spread over several turns; with se = 0 the
    interval collapses to the point and p is 1 if the difference is 0, else 0.
    """
    curve_a = kaplan_meier(durations_a, observed_a, confidence=confidence)
    curve_b = kaplan_meier(durations_b, observed_b, confidence=confidence)
    common = float(min(curve_a.times[-1], curve_b.times[-1]))
    tau = common if horizon is None else float(horizon)
    if not 0.0 < tau <= common:
        raise StatsInputError(
            f"horizon must be in (0, {common:g}], the follow-up both groups share; got {tau:g}"
        )
    mean_a, mean_b = curve_a.restricted_mean(tau), curve_b.restricted_mean(tau)
    difference = mean_a.estimate - mean_b.estimate
    std_error = math.hypot(mean_a.std_error, mean_b.std_error)
    z = z_two_sided(confidence)
    if std_error > 0:
        p_value = min(1.0, 2.0 * normal_sf(abs(difference) / std_error))
    else:
        p_value = 1.0 if difference == 0 else 0.0
    return RestrictedMeanDifference(
        horizon=tau,
        rmst_a=mean_a.estimate,
        rmst_b=mean_b.estimate,
        std_error_a=mean_a.std_error,
        std_error_b=mean_b.std_error,
        difference=difference,
        low=difference - z * std_error,
        high=difference + z * std_error,
        p_value=p_value,
        confidence=confidence,
    )


@dataclass(frozen=True)
class LogRankResult:
    """Two-group log-rank test.

    ``statistic`` ~ χ²(1) under "same survival"; ``p_value`` is two-sided. ``z`` =
    (O_a − E_a) / √V is the signed version: positive when group a violates more than
    expected under that hypothesis (a's survival lower).
    """

    statistic: float
    p_value: float
    z: float
    observed_a: float
    expected_a: float
    observed_b: float
    expected_b: float
    variance: float

    def p_value_one_sided(self, worse: Literal["a", "b"]) -> float:
        """P-value of "group ``worse`` violates sooner than the other" (1 if V = 0)."""
        if self.variance <= 0:
            return 1.0
        return normal_sf(self.z if worse == "a" else -self.z)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def logrank_test(
    durations_a: Durations,
    observed_a: Observed,
    durations_b: Durations,
    observed_b: Observed,
) -> LogRankResult:
    """Log-rank (Mantel–Cox) test that two groups share one survival curve.

    At each distinct violation time t_j with n_j runs at risk (n_aj in a) and d_j
    violations::

        E_a = Σ n_aj d_j / n_j,   V = Σ n_aj n_bj d_j (n_j − d_j) / (n_j² (n_j − 1))
        statistic = (O_a − E_a)² / V   ~ χ²(1)

    V uses the hypergeometric variance, exact under ties (violations at the same turn are
    common here). With V = 0 (no violations, or none while both groups were at risk) the
    statistic is 0 and p is 1. Equals ``lifelines.statistics.logrank_test``. Most powerful
    when one group's hazard is a constant multiple of the other's; crossing curves can
    cancel out.
    """
    duration_a, event_a = survival_arrays(durations_a, observed_a, what="durations_a")
    duration_b, event_b = survival_arrays(durations_b, observed_b, what="durations_b")
    event_times = np.unique(np.concatenate((duration_a[event_a], duration_b[event_b])))
    at_risk_a = _at_risk(duration_a, event_times)
    at_risk_b = _at_risk(duration_b, event_times)
    deaths_a = _count_at(duration_a[event_a], event_times)
    deaths_b = _count_at(duration_b[event_b], event_times)
    at_risk = at_risk_a + at_risk_b
    deaths = deaths_a + deaths_b
    expected_a = float(np.sum(at_risk_a * deaths / at_risk))
    expected_b = float(np.sum(at_risk_b * deaths / at_risk))
    denominator = at_risk**2 * (at_risk - 1.0)
    variance_terms = np.divide(
        at_risk_a * at_risk_b * deaths * (at_risk - deaths),
        denominator,
        out=np.zeros(event_times.size),
        where=denominator > 0,
    )
    variance = float(np.sum(variance_terms))
    observed_a_total = float(deaths_a.sum())
    excess = observed_a_total - expected_a
    if variance > 0:
        z = excess / math.sqrt(variance)
        statistic = z * z
    else:
        z = statistic = 0.0
    return LogRankResult(
        statistic=statistic,
        p_value=chi2_1df_sf(statistic),
        z=z,
        observed_a=observed_a_total,
        expected_a=expected_a,
        observed_b=float(deaths_b.sum()),
        expected_b=expected_b,
        variance=variance,
    )


def fisher_exact_greater(violating_a: int, n_a: int, violating_b: int, n_b: int) -> float:
    """One-sided Fisher exact p-value of "a's violation proportion is higher than b's".

    Conditional on the total number of violations K, a's count X is hypergeometric
    (N = n_a + n_b, K, n_a draws); p = P(X >= violating_a). Exact at any sample size,
    conservative; equals ``scipy.stats.fisher_exact(..., alternative="greater")``.
    """
    check_counts("violating_a", violating_a, "n_a", n_a)
    check_counts("violating_b", violating_b, "n_b", n_b)
    total = n_a + n_b
    violating = violating_a + violating_b
    support = np.arange(max(0, n_a - (total - violating)), min(violating, n_a) + 1)
    log_weights = _log_binomial(violating, support) + _log_binomial(
        total - violating, n_a - support
    )
    weights = np.exp(log_weights - log_weights.max())
    tail = float(weights[support >= violating_a].sum() / weights.sum())
    return min(1.0, tail)


def _log_binomial(n: int, k: np.ndarray[Any, np.dtype[np.int64]]) -> FloatArray:
    """log C(n, k) for an array of k in 0..n, from a running sum of logs (no overflow)."""
    j = np.arange(1, n + 1, dtype=np.float64)
    table = np.concatenate(([0.0], np.cumsum(np.log(n - j + 1.0) - np.log(j))))
    log_binomials: FloatArray = table[k]
    return log_binomials


def _at_risk(durations: FloatArray, times: FloatArray) -> FloatArray:
    """Runs with duration >= t, for each t in ``times``."""
    ordered = np.sort(durations)
    return (durations.size - np.searchsorted(ordered, times, side="left")).astype(np.float64)


def _count_at(values: FloatArray, times: FloatArray) -> FloatArray:
    """How many of ``values`` equal each of ``times`` (every value is one of them)."""
    index = np.searchsorted(times, values)
    return np.bincount(index, minlength=times.size).astype(np.float64)
