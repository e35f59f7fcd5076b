"""pass^k: the chance that k independent runs of the same scenario all stay clean.

With per-run clean probability p, pass^k = p^k: a reliability measure that falls fast
with k even when pass@1 looks fine. From n runs of which c stayed clean, the unbiased
estimator (as tau-bench defines pass^k) is::

    pass^k ≈ C(c, k) / C(n, k) = Π_{i=0}^{k-1} (c − i) / (n − i),     k = 1..n

i.e. the share of all k-subsets of the observed runs that are entirely clean.

Interval: the Wilson interval [L, U] for p raised to the k-th power, [L^k, U^k]. Because
x ↦ x^k is increasing, this has the Wilson interval's coverage for p^k. Assumes runs are
independent with one common p (seeds of one scenario × model × variant).

Caveat: for k close to n the unbiased estimate is very noisy (at k = n it is 1 if every
run was clean, else 0) and can fall below L^k; the plug-in p̂^k always lies inside the
interval. Prefer k well below n when reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from driftwatch.stats._common import (
    FloatArray,
    IntArray,
    StatsInputError,
    check_counts,
    readonly,
)
from driftwatch.stats.rates import wilson_interval

__all__ = ["PassKCurve", "pass_hat_k", "pass_k_curve"]


@dataclass(frozen=True, eq=False)
class PassKCurve:
    """pass^k for k = 1..runs: ``estimate`` (unbiased), ``plug_in`` (p̂^k), and the
    interval ``low``..``high`` at ``confidence``. Arrays are read-only."""

    clean: int
    runs: int
    k: IntArray
    estimate: FloatArray
    plug_in: FloatArray
    low: FloatArray
    high: FloatArray
    confidence: float

    def at(self, k: int) -> tuple[float, float, float]:
        """(estimate, low, high) for one k."""
        _check_k(k, self.runs)
        return float(self.estimate[k - 1]), float(self.low[k - 1]), float(self.high[k - 1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "runs": self.runs,
            "confidence": self.confidence,
            "k": self.k.tolist(),
            "estimate": self.estimate.tolist(),
            "plug_in": self.plug_in.tolist(),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
        }


def pass_hat_k(clean: int, runs: int, k: int) -> float:
    """Unbiased estimate of pass^k: C(clean, k) / C(runs, k); 1 <= k <= runs."""
    check_counts("clean", clean, "runs", runs)
    _check_k(k, runs)
    return float(_unbiased_curve(clean, runs)[k - 1])


def pass_k_curve(clean: int, runs: int, *, confidence: float = 0.95) -> PassKCurve:
    """pass^k for every k = 1..runs, with intervals (see the module docstring)."""
    check_counts("clean", clean, "runs", runs)
    low_p, high_p = wilson_interval(clean, runs, confidence)
    k = np.arange(1, runs + 1, dtype=np.int64)
    return PassKCurve(
        clean=clean,
        runs=runs,
        k=readonly(k),
        estimate=readonly(_unbiased_curve(clean, runs)),
        plug_in=readonly(np.power(clean / runs, k, dtype=np.float64)),
        low=readonly(np.power(low_p, k, dtype=np.float64)),
        high=readonly(np.power(high_p, k, dtype=np.float64)),
        confidence=confidence,
    )


def _unbiased_curve(clean: int, runs: int) -> FloatArray:
    # The running product of (c − i)/(n − i) avoids the huge binomials of C(c,k)/C(n,k).
    i = np.arange(runs, dtype=np.float64)
    factors = np.clip(clean - i, 0.0, None) / (runs - i)
    return np.cumprod(factors).astype(np.float64)


def _check_k(k: int, runs: int) -> None:
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= runs:
        raise StatsInputError(f"k must be an integer in 1..{runs}, got {k!r}")
