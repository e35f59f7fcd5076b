"""The nightly gate: is tonight's batch (candidate) worse than a baseline batch?"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from driftwatch.stats._common import StatsInputError
from driftwatch.stats.compare import (
    LogRankResult,
    RateDifference,
    RestrictedMeanDifference,
    fisher_exact_greater,
    logrank_test,
    rate_difference,
    restricted_mean_difference,
)
from driftwatch.stats.survival import RunOutcomes

__all__ = ["RegressionVerdict", "Verdict", "regression_test"]

Verdict = Literal["worse", "better", "no_significant_change", "insufficient_data"]


@dataclass(frozen=True)
class RegressionVerdict:
    """Outcome of :func:`regression_test`. Differences are candidate − baseline.

    The four p-values are one-sided ("worse" = candidate violates more or sooner);
    they and the effect sizes are ``None`` when the verdict is ``insufficient_data``.
    """

    verdict: Verdict
    explanation: str
    alpha: float
    baseline_runs: int
    candidate_runs: int
    baseline_violating: int
    candidate_violating: int
    logrank_p_worse: float | None = None
    proportion_p_worse: float | None = None
    logrank_p_better: float | None = None
    proportion_p_better: float | None = None
    rate: RateDifference | None = None
    logrank: LogRankResult | None = None
    restricted_mean: RestrictedMeanDifference | None = None

    @property
    def is_worse(self) -> bool:
        """What a gate fails on."""
        return self.verdict == "worse"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def regression_test(
    baseline: RunOutcomes,
    candidate: RunOutcomes,
    *,
    alpha: float = 0.05,
    min_runs: int = 5,
) -> RegressionVerdict:
    """Is the candidate batch significantly worse (or better) than the baseline?

    "Worse" means either test rejects in the candidate's disfavour:

    - one-sided log-rank: the candidate's survival is lower (violations come sooner),
      direction from O − E of the candidate;
    - one-sided Fisher exact test: the candidate's share of violating runs is higher.

    Each test runs at α/2 (Bonferroni), so the gate's false-alarm rate stays <= α even
    though it looks twice. "Better" is the mirror image, checked only when not worse
    (should the tests disagree in direction, a gate takes the cautious reading). Runs
    are assumed independent; run lengths may differ (shorter runs are censored).

    ``insufficient_data``: fewer than ``min_runs`` (default 5) runs on either side. So
    few runs leave both tests almost without power, and "no change" would read as
    reassurance it cannot give. The effect sizes reported alongside are the
    violation-rate difference with its Newcombe interval at confidence 1 − α, the risk
    ratio, and the RMST difference up to the shorter common follow-up.
    """
    if not 0.0 < alpha < 1.0:
        raise StatsInputError(f"alpha must be strictly between 0 and 1, got {alpha}")
    if min_runs < 1:
        raise StatsInputError(f"min_runs must be at least 1, got {min_runs}")
    counts: dict[str, Any] = {
        "alpha": alpha,
        "baseline_runs": baseline.runs,
        "candidate_runs": candidate.runs,
        "baseline_violating": baseline.violating,
        "candidate_violating": candidate.violating,
    }
    if baseline.runs < min_runs or candidate.runs < min_runs:
        return RegressionVerdict(
            verdict="insufficient_data",
            explanation=(
                f"insufficient data: need at least {min_runs} runs per side, got "
                f"baseline {baseline.runs}, candidate {candidate.runs}"
            ),
            **counts,
        )

    rate = rate_difference(
        candidate.clean, candidate.runs, baseline.clean, baseline.runs, confidence=1.0 - alpha
    )
    logrank = logrank_test(
        candidate.durations, candidate.observed, baseline.durations, baseline.observed
    )
    p_values = {
        "logrank_p_worse": logrank.p_value_one_sided("a"),
        "logrank_p_better": logrank.p_value_one_sided("b"),
        "proportion_p_worse": fisher_exact_greater(
            candidate.violating, candidate.runs, baseline.violating, baseline.runs
        ),
        "proportion_p_better": fisher_exact_greater(
            baseline.violating, baseline.runs, candidate.violating, candidate.runs
        ),
    }
    common = min(max(candidate.durations), max(baseline.durations))
    restricted_mean = (
        restricted_mean_difference(
            candidate.durations,
            candidate.observed,
            baseline.durations,
            baseline.observed,
            confidence=1.0 - alpha,
        )
        if common > 0
        else None
    )
    level = alpha / 2.0
    p_worse = min(p_values["logrank_p_worse"], p_values["proportion_p_worse"])
    p_better = min(p_values["logrank_p_better"], p_values["proportion_p_better"])
    verdict: Verdict
    if p_worse < level:
        verdict = "worse"
    elif p_better < level:
        verdict = "better"
    else:
        verdict = "no_significant_change"
    return RegressionVerdict(
        verdict=verdict,
        explanation=_explain(verdict, rate, p_values, level, restricted_mean),
        rate=rate,
        logrank=logrank,
        restricted_mean=restricted_mean,
        logrank_p_worse=p_values["logrank_p_worse"],
        proportion_p_worse=p_values["proportion_p_worse"],
        logrank_p_better=p_values["logrank_p_better"],
        proportion_p_better=p_values["proportion_p_better"],
        **counts,
    )


def _explain(
    verdict: Verdict,
    rate: RateDifference,
    p_values: dict[str, float],
    level: float,
    restricted_mean: RestrictedMeanDifference | None,
) -> str:
    label = verdict.replace("_", " ")
    summary = (
        f"{label}: candidate violated in {rate.violating_a}/{rate.runs_a} runs vs "
        f"{rate.violating_b}/{rate.runs_b} at baseline ({100 * rate.difference:+.1f} pp, "
        f"{rate.confidence:.0%} CI {100 * rate.low:+.1f} to {100 * rate.high:+.1f})"
    )
    if restricted_mean is not None:
        summary += (
            f"; violation-free turns within {restricted_mean.horizon:g}: "
            f"{restricted_mean.rmst_a:.1f} vs {restricted_mean.rmst_b:.1f}"
        )
    direction = "better" if verdict == "better" else "worse"
    return (
        f"{summary}; one-sided p ({direction}) = "
        f"{p_values[f'logrank_p_{direction}']:.3g} log-rank, "
        f"{p_values[f'proportion_p_{direction}']:.3g} Fisher, each tested at {level:g}"
    )
