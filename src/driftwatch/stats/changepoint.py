"""Change-point detection on a per-turn series (e.g. severity-weighted violations per
turn): when did the level go up, and when did it start?

Two detectors of an *increase*, each usable once per turn from a live monitor
(:class:`CusumDetector`, :class:`PageHinkleyDetector`) or over a whole series
(:func:`cusum`, :func:`page_hinkley`). Turns are numbered from ``start_turn`` (default 1)
in the order values arrive. Both report the first alarm as a :class:`ChangePoint` and
then stay quiet until :meth:`reset`, so a run raises one drift finding, not one per turn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from driftwatch.stats._common import StatsInputError

__all__ = [
    "ChangeDetector",
    "ChangePoint",
    "CusumDetector",
    "PageHinkleyDetector",
    "cusum",
    "page_hinkley",
]


@dataclass(frozen=True)
class ChangePoint:
    """An alarm: raised at ``alarm_turn``; the change is estimated to start at
    ``onset_turn`` (<= alarm_turn); ``statistic`` is the detector's value at the alarm."""

    alarm_turn: int
    onset_turn: int
    statistic: float


class ChangeDetector(Protocol):
    """What a live drift monitor drives, one instance per run and series.

    ``update`` is called once per turn, in turn order, from one thread (instances are
    not thread-safe). It does not block, keeps O(1) state, and raises only on a
    non-finite value. It returns the :class:`ChangePoint` exactly once, at the alarm
    turn, and ``None`` otherwise; ``alarm`` keeps the first alarm; ``reset`` re-arms
    (keeping any baseline already estimated).
    """

    @property
    def alarm(self) -> ChangePoint | None: ...

    def update(self, value: float) -> ChangePoint | None: ...

    def reset(self) -> None: ...


class CusumDetector:
    """One-sided upper CUSUM on standardised values::

        z_t = (x_t − μ₀) / σ₀,     S_t = max(0, S_{t−1} + z_t − k),     alarm when S_t > h

    Onset: the turn after the last turn at which S was 0 (Page's estimate: the first
    turn of the excursion that ended in the alarm).

    Baseline: ``target_mean`` μ₀ and ``sigma`` σ₀ if given; otherwise estimated from the
    first ``warmup`` turns (mean; sample standard deviation), which are not monitored.
    ``warmup`` defaults to 10 when anything is estimated, else 0. σ₀ is floored at
    ``min_sigma`` (series units): a well-behaved agent's warm-up is often all zeros,
    whose deviation of 0 would make any single violation an alarm. The default 0.4
    makes one unit-weight violation on a zero baseline worth 2.5σ: with k = 0.5 it adds
    2 to S and each clean turn takes 0.5 off, so h = 5 needs three violations in a short
    stretch. On 0/1 series (tests/stats) this catches a jump from ~0 to 0.4 violations
    per turn about 10 turns after it starts (onset estimate ~3 turns late on average: the
    statistic often falls back to 0 after the first post-change violations), and raises
    a false alarm within 90 turns of a steady 2% (5%) rate in about 0.3% (3%) of runs.

    Picking k and h: k is half the shift worth detecting, in σ units (k = 0.5 targets a
    1σ shift); h trades false alarms for delay. For normal data with k = 0.5, h = 5 the
    in-control run length is about 930 turns and a 1σ shift is caught in about 10 turns
    (Siegmund's approximation); h = 4 gives about 340 and 8. Count data are skewed, so
    check the rates on your own series (the tests report them for Bernoulli series).
    """

    def __init__(
        self,
        *,
        k: float = 0.5,
        h: float = 5.0,
        target_mean: float | None = None,
        sigma: float | None = None,
        min_sigma: float = 0.4,
        warmup: int | None = None,
        start_turn: int = 1,
    ) -> None:
        if k < 0 or h <= 0:
            raise StatsInputError(f"need k >= 0 and h > 0, got k={k}, h={h}")
        if min_sigma <= 0 or (sigma is not None and sigma <= 0):
            raise StatsInputError("sigma and min_sigma must be positive")
        estimated = target_mean is None or sigma is None
        warmup_turns = (10 if estimated else 0) if warmup is None else warmup
        if warmup_turns < 0 or (estimated and warmup_turns == 0):
            raise StatsInputError(
                "warmup must be positive when target_mean or sigma is to be estimated"
            )
        self.k = k
        self.h = h
        self.min_sigma = min_sigma
        self._given_mean = target_mean
        self._given_sigma = sigma
        self._warmup = warmup_turns
        self._warmup_values: list[float] = []
        self._mean: float | None = None
        self._sigma: float | None = None
        self._turn = start_turn - 1
        self._statistic = 0.0
        self._last_zero_turn = start_turn - 1 + warmup_turns
        self._alarm: ChangePoint | None = None
        if not estimated:
            self._set_baseline([])

    @property
    def alarm(self) -> ChangePoint | None:
        return self._alarm

    @property
    def statistic(self) -> float:
        return self._statistic

    @property
    def turn(self) -> int:
        """The last turn seen (``start_turn − 1`` before any)."""
        return self._turn

    @property
    def baseline(self) -> tuple[float, float] | None:
        """(μ₀, σ₀) once known, else ``None`` (still in warm-up)."""
        if self._mean is None or self._sigma is None:
            return None
        return self._mean, self._sigma

    def update(self, value: float) -> ChangePoint | None:
        x = _finite(value)
        self._turn += 1
        if self._mean is None or self._sigma is None:
            self._warmup_values.append(x)
            if len(self._warmup_values) >= self._warmup:
                self._set_baseline(self._warmup_values)
            return None
        self._statistic = max(0.0, self._statistic + (x - self._mean) / self._sigma - self.k)
        if self._statistic == 0.0:
            self._last_zero_turn = self._turn
        if self._alarm is None and self._statistic > self.h:
            self._alarm = ChangePoint(self._turn, self._last_zero_turn + 1, self._statistic)
            return self._alarm
        return None

    def reset(self) -> None:
        self._statistic = 0.0
        self._last_zero_turn = max(self._turn, self._last_zero_turn)
        self._alarm = None

    def _set_baseline(self, values: list[float]) -> None:
        count = len(values)
        mean = math.fsum(values) / count if count else 0.0
        self._mean = mean if self._given_mean is None else self._given_mean
        if self._given_sigma is not None:
            self._sigma = self._given_sigma
            return
        spread = (
            math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (count - 1))
            if count > 1
            else 0.0
        )
        self._sigma = max(spread, self.min_sigma)


class PageHinkleyDetector:
    """Page–Hinkley test for an increase in the mean, in the series' own units::

        x̄_t = mean(x_1..x_t),   m_t = Σ_{i<=t} (x_i − x̄_i − δ),   M_t = min_{i<=t} m_i
        alarm when m_t − M_t > threshold

    Onset: the turn after the last turn at which m reached its minimum M. Needs no
    warm-up and no σ, but ``delta`` and ``threshold`` are in series units: ``delta`` is
    the size of an increase too small to care about (half the shift worth detecting),
    ``threshold`` the evidence needed (larger = fewer false alarms, later alarms).
    The defaults suit 0/1 violations-per-turn series with a low baseline rate: a few
    violations close together alarm, scattered ones do not (tests/stats: a jump from ~0
    to 0.4 per turn is caught ~11 turns in, onset off by ~2 turns; false alarms within
    100 turns of a steady 5% rate: ~2%). Because x̄ includes the
    changed values it reacts more slowly than CUSUM with a known baseline. Alarms are
    suppressed during the first ``min_turns`` turns, while x̄ is still unstable.
    """

    def __init__(
        self,
        *,
        delta: float = 0.05,
        threshold: float = 3.0,
        min_turns: int = 5,
        start_turn: int = 1,
    ) -> None:
        if delta < 0 or threshold <= 0 or min_turns < 0:
            raise StatsInputError(
                f"need delta >= 0, threshold > 0, min_turns >= 0; got {delta}, {threshold}, "
                f"{min_turns}"
            )
        self.delta = delta
        self.threshold = threshold
        self.min_turns = min_turns
        self._start_turn = start_turn
        self._turn = start_turn - 1
        self._count = 0
        self._mean = 0.0
        self._cumulative = 0.0
        self._minimum = 0.0
        self._minimum_turn = start_turn - 1
        self._alarm: ChangePoint | None = None

    @property
    def alarm(self) -> ChangePoint | None:
        return self._alarm

    @property
    def statistic(self) -> float:
        return self._cumulative - self._minimum

    @property
    def turn(self) -> int:
        return self._turn

    def update(self, value: float) -> ChangePoint | None:
        x = _finite(value)
        self._turn += 1
        self._count += 1
        self._mean += (x - self._mean) / self._count
        self._cumulative += x - self._mean - self.delta
        if self._cumulative <= self._minimum:
            self._minimum = self._cumulative
            self._minimum_turn = self._turn
        statistic = self.statistic
        armed = self._turn - self._start_turn + 1 > self.min_turns
        if self._alarm is None and armed and statistic > self.threshold:
            self._alarm = ChangePoint(self._turn, self._minimum_turn + 1, statistic)
            return self._alarm
        return None

    def reset(self) -> None:
        self._minimum = self._cumulative
        self._minimum_turn = self._turn
        self._alarm = None


def cusum(
    series: Iterable[float],
    *,
    target_mean: float | None = None,
    sigma: float | None = None,
    k: float = 0.5,
    h: float = 5.0,
    warmup: int | None = None,
    min_sigma: float = 0.4,
    start_turn: int = 1,
) -> ChangePoint | None:
    """First CUSUM alarm over ``series`` (value i is turn ``start_turn + i``), or None.

    See :class:`CusumDetector` for the statistic, the baseline and how to pick k and h.
    """
    detector = CusumDetector(
        k=k,
        h=h,
        target_mean=target_mean,
        sigma=sigma,
        min_sigma=min_sigma,
        warmup=warmup,
        start_turn=start_turn,
    )
    return _first_alarm(detector, series)


def page_hinkley(
    series: Iterable[float],
    *,
    delta: float = 0.05,
    threshold: float = 3.0,
    min_turns: int = 5,
    start_turn: int = 1,
) -> ChangePoint | None:
    """First Page–Hinkley alarm over ``series``, or None. See :class:`PageHinkleyDetector`."""
    detector = PageHinkleyDetector(
        delta=delta, threshold=threshold, min_turns=min_turns, start_turn=start_turn
    )
    return _first_alarm(detector, series)


def _first_alarm(detector: ChangeDetector, series: Iterable[float]) -> ChangePoint | None:
    for value in series:
        alarm = detector.update(value)
        if alarm is not None:
            return alarm
    return None


def _finite(value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise StatsInputError(f"series values must be finite numbers, got {value!r}")
    return x
