"""Shared helpers: input validation, the error type, and the few distribution functions
the estimators need.

The normal quantile and the one-degree-of-freedom chi-square tail come from the standard
library (``statistics.NormalDist`` uses Wichura's AS 241, accurate to about 1e-16;
``math.erfc`` is the C library's), so the package needs no scipy at run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from driftwatch.core.errors import UsageError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ArrayT = TypeVar("ArrayT", bound="np.ndarray[Any, Any]")

_STANDARD_NORMAL = NormalDist()


class StatsInputError(UsageError, ValueError):
    """Input a statistic cannot be computed from (empty, mismatched, negative, NaN...).

    A ``ValueError`` for library callers and a ``UsageError`` for the CLI, whose message
    is the one line it prints.
    """


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise StatsInputError(f"confidence must be strictly between 0 and 1, got {confidence}")


def z_two_sided(confidence: float) -> float:
    """Standard normal quantile z with P(|Z| <= z) = confidence."""
    check_confidence(confidence)
    return _STANDARD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def chi2_1df_sf(statistic: float) -> float:
    """P(X > statistic) for X chi-square with one degree of freedom (= P(|Z| > sqrt x))."""
    return math.erfc(math.sqrt(max(statistic, 0.0) / 2.0))


def survival_arrays(
    durations: Sequence[int | float] | FloatArray,
    observed: Sequence[bool] | BoolArray,
    *,
    what: str = "durations",
) -> tuple[FloatArray, BoolArray]:
    """Validate one group of right-censored data and return it as numpy arrays."""
    duration_array = np.asarray(durations, dtype=np.float64)
    observed_array = np.asarray(observed)
    if duration_array.ndim != 1 or observed_array.ndim != 1:
        raise StatsInputError(f"{what} and observed must be one-dimensional sequences")
    if duration_array.size == 0:
        raise StatsInputError(f"{what} is empty: need at least one run")
    if duration_array.shape != observed_array.shape:
        raise StatsInputError(
            f"{what} and observed differ in length ({duration_array.size} vs {observed_array.size})"
        )
    if not np.all(np.isfinite(duration_array)):
        raise StatsInputError(f"{what} must be finite numbers")
    if np.any(duration_array < 0):
        raise StatsInputError(f"{what} must be >= 0")
    if observed_array.dtype != np.bool_:
        if not np.all(np.isin(observed_array, (0, 1))):
            raise StatsInputError("observed must hold booleans (True = violation seen)")
        observed_array = observed_array.astype(np.bool_)
    return duration_array, observed_array


def check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise StatsInputError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_counts(successes_name: str, successes: int, trials_name: str, trials: int) -> None:
    check_count(successes_name, successes)
    check_count(trials_name, trials)
    if trials == 0:
        raise StatsInputError(f"{trials_name} is 0: a proportion needs at least one run")
    if successes > trials:
        raise StatsInputError(
            f"{successes_name} ({successes}) cannot exceed {trials_name} ({trials})"
        )


def readonly(array: ArrayT) -> ArrayT:
    """Freeze an array that a frozen result holds, so the result really is immutable."""
    array.flags.writeable = False
    return array
