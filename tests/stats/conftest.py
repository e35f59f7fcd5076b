"""Generated survival data for cross-checks against lifelines and statsmodels.

Every case is built from a numpy Generator with a fixed seed: discrete (geometric)
first-violation turns like real runs, continuous (exponential) times, heavy ties,
administrative censoring at the run's last turn, random censoring, all censored, no
censoring, and sizes from 1 to 5,000 runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pytest

Case = tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]


def _censor(first_violation: npt.NDArray[np.float64], end: npt.NDArray[np.float64]) -> Case:
    observed = first_violation <= end
    return np.where(observed, first_violation, end).astype(np.float64), observed


def _geometric_random_censoring(rng: np.random.Generator, n: int) -> Case:
    return _censor(rng.geometric(0.08, n).astype(float), rng.integers(1, 40, n).astype(float))


def _runs_of_fixed_length(rng: np.random.Generator, n: int) -> Case:
    # Every run lasts 30 turns; clean runs are censored at turn 30 (ties with events there).
    return _censor(rng.geometric(0.05, n).astype(float), np.full(n, 30.0))


def _heavy_ties(rng: np.random.Generator, n: int) -> Case:
    return _censor(rng.geometric(0.3, n).astype(float), rng.integers(1, 6, n).astype(float))


def _exponential(rng: np.random.Generator, n: int) -> Case:
    return _censor(rng.exponential(10.0, n), rng.exponential(15.0, n))


def _all_censored(rng: np.random.Generator, n: int) -> Case:
    return rng.integers(1, 20, n).astype(float), np.zeros(n, dtype=bool)


def _no_censoring(rng: np.random.Generator, n: int) -> Case:
    return rng.geometric(0.1, n).astype(float), np.ones(n, dtype=bool)


def _all_violate_at_one_turn(rng: np.random.Generator, n: int) -> Case:
    del rng
    return np.full(n, 5.0), np.ones(n, dtype=bool)


def _violation_at_turn_zero(rng: np.random.Generator, n: int) -> Case:
    durations, observed = _geometric_random_censoring(rng, n)
    durations[:3] = 0.0
    observed[:3] = [True, True, False]
    return durations, observed


GENERATORS: dict[str, tuple[Callable[[np.random.Generator, int], Case], list[int]]] = {
    "geometric-random-censoring": (_geometric_random_censoring, [1, 2, 3, 10, 50, 5000]),
    "fixed-length-runs": (_runs_of_fixed_length, [5, 40, 1000]),
    "heavy-ties": (_heavy_ties, [8, 500]),
    "exponential": (_exponential, [7, 200]),
    "all-censored": (_all_censored, [1, 20]),
    "no-censoring": (_no_censoring, [4, 30]),
    "all-violate-at-one-turn": (_all_violate_at_one_turn, [6]),
    "violation-at-turn-zero": (_violation_at_turn_zero, [25]),
}


def _cases() -> Iterator[tuple[str, Case]]:
    for seed, (name, (generate, sizes)) in enumerate(sorted(GENERATORS.items())):
        for n in sizes:
            rng = np.random.default_rng([seed, n])
            yield f"{name}-n{n}", generate(rng, n)


SURVIVAL_CASES = dict(_cases())


@pytest.fixture(params=sorted(SURVIVAL_CASES), ids=str)
def survival_case(request: pytest.FixtureRequest) -> Case:
    """One generated (durations, observed) pair; tests using it run once per case."""
    durations, observed = SURVIVAL_CASES[request.param]
    return durations.copy(), observed.copy()


@pytest.fixture(autouse=True)
def _restore_numpy_error_state() -> Iterator[None]:
    """lifelines calls ``np.seterr(divide="ignore", invalid="ignore")`` globally; undo it
    so that numpy warnings keep reaching the warnings-as-errors filter elsewhere."""
    saved = np.geterr()
    yield
    np.seterr(**saved)


def _pair_cases() -> dict[str, tuple[Case, Case]]:
    def rng(*seed: int) -> np.random.Generator:
        return np.random.default_rng(list(seed))

    def fixed_length(generator: np.random.Generator, n: int, p: float) -> Case:
        return _censor(generator.geometric(p, n).astype(float), np.full(n, 30.0))

    return {
        "same-distribution-n40": (
            _geometric_random_censoring(rng(1, 1), 40),
            _geometric_random_censoring(rng(1, 2), 40),
        ),
        "a-worse-fixed-length-n60": (
            fixed_length(rng(2, 1), 60, 0.15),
            fixed_length(rng(2, 2), 60, 0.05),
        ),
        "unequal-sizes-3-vs-500": (
            _geometric_random_censoring(rng(3, 1), 3),
            _geometric_random_censoring(rng(3, 2), 500),
        ),
        "heavy-ties": (_heavy_ties(rng(4, 1), 80), _heavy_ties(rng(4, 2), 70)),
        "exponential": (_exponential(rng(5, 1), 50), _exponential(rng(5, 2), 90)),
        "one-group-all-censored": (
            _all_censored(rng(6, 1), 15),
            _geometric_random_censoring(rng(6, 2), 25),
        ),
        "both-all-censored": (_all_censored(rng(7, 1), 10), _all_censored(rng(7, 2), 12)),
        "one-group-all-violate-at-turn-5": (
            _all_violate_at_one_turn(rng(8, 1), 10),
            _no_censoring(rng(8, 2), 20),
        ),
        "large-5000-vs-4000": (
            fixed_length(rng(9, 1), 5000, 0.05),
            fixed_length(rng(9, 2), 4000, 0.055),
        ),
        "one-run-each": (
            (np.array([3.0]), np.array([True])),
            (np.array([7.0]), np.array([True])),
        ),
    }


PAIR_CASES = _pair_cases()


@pytest.fixture(params=sorted(PAIR_CASES), ids=str)
def survival_pair(request: pytest.FixtureRequest) -> tuple[Case, Case]:
    """Two generated groups (a, b); tests using it run once per pair."""
    return PAIR_CASES[request.param]
