"""Statistics over runs: Kaplan–Meier survival of "no violation yet", violation rates
with Wilson intervals, pass^k, pressure-vs-control effects, the nightly regression gate,
and change-point detectors for live drift. Pure functions over plain inputs; results are
frozen dataclasses. Needs only numpy (and the standard library)."""

from driftwatch.stats._common import StatsInputError
from driftwatch.stats.changepoint import (
    ChangeDetector,
    ChangePoint,
    CusumDetector,
    PageHinkleyDetector,
    cusum,
    page_hinkley,
)
from driftwatch.stats.compare import (
    LogRankResult,
    RateDifference,
    RestrictedMeanDifference,
    fisher_exact_greater,
    logrank_test,
    rate_difference,
    restricted_mean_difference,
)
from driftwatch.stats.passk import PassKCurve, pass_hat_k, pass_k_curve
from driftwatch.stats.rates import RunTurns, TurnRates, violation_rate_by_turn, wilson_interval
from driftwatch.stats.regression import RegressionVerdict, Verdict, regression_test
from driftwatch.stats.survival import RestrictedMean, RunOutcomes, SurvivalCurve, kaplan_meier

__all__ = [
    "ChangeDetector",
    "ChangePoint",
    "CusumDetector",
    "LogRankResult",
    "PageHinkleyDetector",
    "PassKCurve",
    "RateDifference",
    "RegressionVerdict",
    "RestrictedMean",
    "RestrictedMeanDifference",
    "RunOutcomes",
    "RunTurns",
    "StatsInputError",
    "SurvivalCurve",
    "TurnRates",
    "Verdict",
    "cusum",
    "fisher_exact_greater",
    "kaplan_meier",
    "logrank_test",
    "page_hinkley",
    "pass_hat_k",
    "pass_k_curve",
    "rate_difference",
    "regression_test",
    "restricted_mean_difference",
    "violation_rate_by_turn",
    "wilson_interval",
]
