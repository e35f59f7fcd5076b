"""Proportions with Wilson score intervals, and the violation rate by turn."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from driftwatch.stats._common import (
    FloatArray,
    IntArray,
    StatsInputError,
    check_counts,
    readonly,
    z_two_sided,
)

__all__ = ["RunTurns", "TurnRates", "violation_rate_by_turn", "wilson_interval"]


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion p = successes / trials::

        centre    = (p̂ + z²/2n) / (1 + z²/n)
        halfwidth = z √(p̂(1 − p̂)/n + z²/4n²) / (1 + z²/n)

    clipped to [0, 1] against rounding (exactly 0 at 0 successes, 1 at n). Unlike the
    Wald interval it is never degenerate at 0 or n successes and keeps close to nominal
    coverage for small n. Equals statsmodels'
    ``proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")``.
    """
    check_counts("successes", successes, "trials", trials)
    low, high = wilson_arrays(
        np.array([successes], dtype=np.float64),
        np.array([trials], dtype=np.float64),
        z_two_sided(confidence),
    )
    return float(low[0]), float(high[0])


def wilson_arrays(
    successes: FloatArray, trials: FloatArray, z: float
) -> tuple[FloatArray, FloatArray]:
    """Vectorised Wilson interval; ``trials`` must be positive (not checked here)."""
    proportion = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (proportion + z2 / (2.0 * trials)) / denominator
    halfwidth = (
        z * np.sqrt(proportion * (1.0 - proportion) / trials + z2 / (4.0 * trials**2))
    ) / denominator
    # At 0 (or all) successes the bound is exactly 0 (or 1); rounding would miss it.
    low = np.where(successes == 0, 0.0, np.clip(centre - halfwidth, 0.0, 1.0))
    high = np.where(successes == trials, 1.0, np.clip(centre + halfwidth, 0.0, 1.0))
    return low, high


@dataclass(frozen=True)
class RunTurns:
    """What one run did, turn by turn: it reached turns 1..``turns`` and had at least one
    violation at each turn in ``violation_turns`` (all within 1..``turns``)."""

    turns: int
    violation_turns: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if isinstance(self.turns, bool) or int(self.turns) != self.turns or self.turns < 0:
            raise StatsInputError(f"turns must be a non-negative integer, got {self.turns!r}")
        violation_turns = frozenset(self.violation_turns)
        outside = sorted(t for t in violation_turns if not 1 <= t <= self.turns)
        if outside:
            raise StatsInputError(
                f"violation turns {outside} are outside the run's turns 1..{self.turns}"
            )
        object.__setattr__(self, "violation_turns", violation_turns)

    @classmethod
    def from_flags(cls, flags: Sequence[bool]) -> RunTurns:
        """From one flag per turn: ``flags[i]`` says whether turn ``i + 1`` had a violation."""
        return cls(len(flags), frozenset(i + 1 for i, flag in enumerate(flags) if flag))

    @classmethod
    def from_violation_turns(cls, turns: int, violation_turns: Iterable[int]) -> RunTurns:
        """From the run's length and the turns of its violations (repeats are fine)."""
        return cls(turns, frozenset(violation_turns))


@dataclass(frozen=True, eq=False)
class TurnRates:
    """Violation rate per turn. Row i is turn ``turn[i]`` (1..longest run): ``at_risk``
    runs reached it, ``violating`` of them had a violation at it, ``rate`` =
    violating / at_risk, and ``low``/``high`` its Wilson interval. Arrays are read-only."""

    turn: IntArray
    at_risk: IntArray
    violating: IntArray
    rate: FloatArray
    low: FloatArray
    high: FloatArray
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "confidence": self.confidence,
            "turn": self.turn.tolist(),
            "at_risk": self.at_risk.tolist(),
            "violating": self.violating.tolist(),
            "rate": self.rate.tolist(),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }


def violation_rate_by_turn(runs: Sequence[RunTurns], *, confidence: float = 0.95) -> TurnRates:
    """Per turn t = 1..max turns: the share of runs that reached t and violated at t.

    A run counts at turn t only if it reached t, so shorter runs drop out of the
    denominator instead of counting as clean. This is the per-turn (not the cumulative)
    rate; for "violated by turn t" use :func:`~driftwatch.stats.kaplan_meier`, which also
    handles the drop-outs. Each turn gets a Wilson interval (runs assumed independent).
    Vectorised: 10,000 runs take milliseconds.
    """
    if len(runs) == 0:
        raise StatsInputError("no runs: need at least one run")
    z = z_two_sided(confidence)
    lengths = np.fromiter((run.turns for run in runs), dtype=np.int64, count=len(runs))
    longest = int(lengths.max())
    if longest == 0:
        raise StatsInputError("every run has 0 turns: there is no turn to report")
    reached_exactly = np.bincount(lengths, minlength=longest + 1)
    at_risk = np.cumsum(reached_exactly[::-1])[::-1][1:]  # runs with turns >= t, t = 1..
    flagged = np.fromiter(chain.from_iterable(run.violation_turns for run in runs), dtype=np.int64)
    violating = np.bincount(flagged, minlength=longest + 1)[1:]
    rate = violating / at_risk
    low, high = wilson_arrays(violating.astype(np.float64), at_risk.astype(np.float64), z)
    return TurnRates(
        turn=readonly(np.arange(1, longest + 1, dtype=np.int64)),
        at_risk=readonly(at_risk.astype(np.int64)),
        violating=readonly(violating.astype(np.int64)),
        rate=readonly(rate.astype(np.float64)),
        low=readonly(low),
        high=readonly(high),
        confidence=confidence,
    )
