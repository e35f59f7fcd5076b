"""Kaplan–Meier survival of "no violation yet", by turn.

Each run contributes one duration: the turn of its first violation (an *event*), or, if
it stayed clean, its last turn (*censored*: we only know it survived that long).

Assumptions: runs are independent, and censoring is non-informative (a run ending does not
say whether it was about to violate). Ties: at a turn where runs both violate and end
clean, the violations are counted first (the censored runs were at risk at that turn),
the usual convention and the one lifelines follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from driftwatch.stats._common import (
    BoolArray,
    FloatArray,
    IntArray,
    StatsInputError,
    readonly,
    survival_arrays,
    z_two_sided,
)

__all__ = ["RestrictedMean", "RunOutcomes", "SurvivalCurve", "kaplan_meier"]

_LEVEL_TOLERANCE = 1e-12


@dataclass(frozen=True)
class RestrictedMean:
    """Restricted mean survival time (RMST) up to ``horizon`` and its standard error."""

    horizon: float
    estimate: float
    std_error: float


@dataclass(frozen=True, eq=False)
class SurvivalCurve:
    """A Kaplan–Meier estimate as a right-continuous step function.

    Row ``i`` describes time ``times[i]`` (0 and every distinct duration, ascending):
    ``at_risk`` runs had not violated nor ended before it, ``events`` first violated at it,
    ``censored`` ended clean at it, and ``survival[i]`` = Ŝ(times[i]) is the probability of
    no violation up to and including that turn. ``lower``/``upper`` are the pointwise
    band at ``confidence``. Arrays are read-only.
    """

    times: FloatArray
    survival: FloatArray
    lower: FloatArray
    upper: FloatArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    greenwood: FloatArray
    confidence: float

    @property
    def runs(self) -> int:
        return int(self.at_risk[0])

    def median(self) -> float | None:
        """Median turns to first violation: the first time with Ŝ(t) <= 0.5 (up to 1e-12).

        ``None`` if Ŝ stays above 0.5 over the whole follow-up. (Some packages average
        two times when Ŝ equals 0.5 exactly on an interval; lifelines and this function do
        not.)
        """
        return _first_time_at_or_below(self.times, self.survival, 0.5)

    def median_ci(self) -> tuple[float | None, float | None]:
        """Confidence interval of the median, by inverting the pointwise band.

        Lower limit: first time the *lower* band reaches 0.5; upper limit: first time the
        *upper* band does. With the log-log band this is the Brookmeyer–Crowley interval
        built on the log-log transform; it equals ``median_survival_times(
        kmf.confidence_interval_)`` in lifelines. ``None`` means "not reached within the
        follow-up" (for the upper limit: unbounded above).
        """
        return (
            _first_time_at_or_below(self.times, self.lower, 0.5),
            _first_time_at_or_below(self.times, self.upper, 0.5),
        )

    @overload
    def survival_at(self, t: float) -> float: ...
    @overload
    def survival_at(self, t: Sequence[float] | FloatArray) -> FloatArray: ...
    def survival_at(self, t: float | Sequence[float] | FloatArray) -> float | FloatArray:
        """Ŝ(t) for any t: 1 before time 0, the step value in between, and the last value
        carried forward after the last observed time (where it is only an extrapolation)."""
        query = np.asarray(t, dtype=np.float64)
        index = np.searchsorted(self.times, query, side="right") - 1
        values = np.where(index >= 0, self.survival[np.maximum(index, 0)], 1.0)
        if query.ndim == 0:
            return float(values)
        return values.astype(np.float64)

    def restricted_mean(self, horizon: float) -> RestrictedMean:
        """RMST(τ) = ∫₀^τ Ŝ(u) du, the expected turns without violation within τ.

        Standard error from the Greenwood-type formula (Klein & Moeschberger, §4.5)::

            Var = Σ_{t_j <= τ} A_j² d_j / (n_j (n_j − d_j)),   A_j = ∫_{t_j}^τ Ŝ(u) du

        (terms with n_j = d_j are 0, since then A_j = 0). τ may not exceed the longest
        follow-up, where Ŝ stops being estimated. The estimate equals lifelines'
        ``restricted_mean_survival_time(kmf, t=τ)``; note that lifelines'
        ``return_variance`` is the variance of min(T, τ), not of the estimate.
        """
        if not 0.0 <= horizon <= self.times[-1]:
            raise StatsInputError(
                f"horizon must be within the follow-up [0, {self.times[-1]:g}], got {horizon:g}"
            )
        inside = self.times <= horizon
        starts = self.times[inside]
        ends = np.minimum(np.append(starts[1:], horizon), horizon)
        areas = self.survival[inside] * (ends - starts)
        area_after = np.cumsum(areas[::-1])[::-1]  # A_j: area from t_j to the horizon
        weight = self.greenwood[inside]
        increments = np.diff(weight, prepend=0.0)
        variance = float(np.sum(area_after**2 * increments))
        return RestrictedMean(
            horizon=float(horizon),
            estimate=float(np.sum(areas)),
            std_error=float(np.sqrt(variance)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (lists, floats, ints, ``None``)."""
        median_low, median_high = self.median_ci()
        return {
            "confidence": self.confidence,
            "runs": self.runs,
            "median": self.median(),
            "median_ci": [median_low, median_high],
            "times": self.times.tolist(),
            "survival": self.survival.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "at_risk": self.at_risk.tolist(),
            "events": self.events.tolist(),
            "censored": self.censored.tolist(),
        }


def kaplan_meier(
    durations: Sequence[int | float] | FloatArray,
    observed: Sequence[bool] | BoolArray,
    *,
    confidence: float = 0.95,
) -> SurvivalCurve:
    """Kaplan–Meier estimate of S(t) = P(no violation through turn t).

    ``durations[i]`` is run i's first violation turn if ``observed[i]``, else its last
    turn (censored). With n_j runs at risk and d_j violations at time t_j::

        Ŝ(t) = Π_{t_j <= t} (1 − d_j / n_j)
        Greenwood:  V(t) = Σ_{t_j <= t} d_j / (n_j (n_j − d_j))   (Var Ŝ ≈ Ŝ² V)

    Band: the log-log ("exponential Greenwood") transform, lifelines' default, which stays
    inside [0, 1]::

        lower, upper = Ŝ ^ exp(±z √V / log Ŝ)

    with z the two-sided normal quantile; the band is 1 where Ŝ = 1 and 0 where Ŝ = 0.
    Matches ``lifelines.KaplanMeierFitter`` (``survival_function_``,
    ``confidence_interval_``) row for row. O(n log n), vectorised.
    """
    duration_array, observed_array = survival_arrays(durations, observed)
    z = z_two_sided(confidence)
    runs = duration_array.size
    times, inverse = np.unique(np.concatenate(([0.0], duration_array)), return_inverse=True)
    inverse = inverse[1:]
    removed = np.bincount(inverse, minlength=times.size)
    events = np.bincount(inverse[observed_array], minlength=times.size)
    at_risk = runs - np.concatenate(([0], np.cumsum(removed)[:-1]))
    survival = np.cumprod(1.0 - events / at_risk)
    survivors = at_risk - events
    terms = np.divide(
        events,
        at_risk * survivors,
        out=np.zeros(times.size, dtype=np.float64),
        where=survivors > 0,
    )
    greenwood = np.cumsum(terms)
    lower, upper = _loglog_band(survival, greenwood, z)
    return SurvivalCurve(
        times=readonly(times.astype(np.float64)),
        survival=readonly(survival),
        lower=readonly(lower),
        upper=readonly(upper),
        at_risk=readonly(at_risk.astype(np.int64)),
        events=readonly(events.astype(np.int64)),
        censored=readonly((removed - events).astype(np.int64)),
        greenwood=readonly(greenwood),
        confidence=confidence,
    )


@dataclass(frozen=True)
class RunOutcomes:
    """One group of runs (one scenario × model × variant, or one batch), as survival data.

    ``durations[i]``: the turn of run i's first violation if ``observed[i]``, else the
    last turn it reached. Build it from run records with :meth:`from_runs`.
    """

    durations: tuple[float, ...]
    observed: tuple[bool, ...]

    def __post_init__(self) -> None:
        duration_array, observed_array = survival_arrays(self.durations, self.observed)
        object.__setattr__(self, "durations", tuple(duration_array.tolist()))
        object.__setattr__(self, "observed", tuple(observed_array.tolist()))

    @classmethod
    def from_runs(
        cls, turns: Sequence[int], first_violation_turns: Sequence[int | None]
    ) -> RunOutcomes:
        """From each run's number of turns and first violation turn (``None`` = clean)."""
        if len(turns) != len(first_violation_turns):
            raise StatsInputError("turns and first_violation_turns differ in length")
        durations: list[float] = []
        for run_turns, first in zip(turns, first_violation_turns, strict=True):
            if first is not None and not 0 <= first <= run_turns:
                raise StatsInputError(
                    f"first violation turn {first} is outside the run's turns 0..{run_turns}"
                )
            durations.append(float(run_turns if first is None else first))
        observed = tuple(first is not None for first in first_violation_turns)
        return cls(durations=tuple(durations), observed=observed)

    @property
    def runs(self) -> int:
        return len(self.durations)

    @property
    def violating(self) -> int:
        return sum(self.observed)

    @property
    def clean(self) -> int:
        return self.runs - self.violating

    def kaplan_meier(self, *, confidence: float = 0.95) -> SurvivalCurve:
        return kaplan_meier(self.durations, self.observed, confidence=confidence)


def _loglog_band(
    survival: FloatArray, greenwood: FloatArray, z: float
) -> tuple[FloatArray, FloatArray]:
    lower = np.where(survival > 0, 1.0, 0.0)
    upper = lower.copy()
    inside = (survival > 0) & (survival < 1)
    log_survival = np.log(survival[inside])
    spread = z * np.sqrt(greenwood[inside]) / -log_survival
    lower[inside] = np.exp(log_survival * np.exp(spread))
    upper[inside] = np.exp(log_survival * np.exp(-spread))
    return lower, upper


def _first_time_at_or_below(times: FloatArray, values: FloatArray, level: float) -> float | None:
    # The tolerance makes a curve that reaches the level exactly count, whatever the
    # rounding of the products (5/6 · 4/5 · 3/4 must give a median there).
    reached = np.flatnonzero(values <= level + _LEVEL_TOLERANCE)
    return float(times[reached[0]]) if reached.size else None
