"""The nightly regression gate: verdicts, their p-values, and its false-alarm rate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftwatch.stats import RegressionVerdict, RunOutcomes, regression_test


def _batch(seed: int, runs: int, hazard: float, turns: int = 30) -> RunOutcomes:
    rng = np.random.default_rng(seed)
    first = rng.geometric(hazard, runs)
    return RunOutcomes.from_runs([turns] * runs, [int(t) if t <= turns else None for t in first])


def test_clearly_worse_candidate_fails_the_gate() -> None:
    verdict = regression_test(_batch(1, 30, 0.01), _batch(2, 30, 0.08))
    assert verdict.verdict == "worse"
    assert verdict.is_worse
    assert verdict.logrank_p_worse is not None
    assert verdict.logrank_p_worse < 0.025
    assert verdict.rate is not None
    assert verdict.rate.difference > 0
    assert verdict.explanation.startswith("worse: candidate violated in")


def test_clearly_better_candidate_is_reported_better() -> None:
    verdict = regression_test(_batch(3, 30, 0.08), _batch(4, 30, 0.01))
    assert verdict.verdict == "better"
    assert not verdict.is_worse
    assert "one-sided p (better)" in verdict.explanation


def test_same_behaviour_is_no_significant_change() -> None:
    verdict = regression_test(_batch(5, 40, 0.03), _batch(6, 40, 0.03))
    assert verdict.verdict == "no_significant_change"
    assert verdict.explanation.startswith("no significant change:")


def test_violating_sooner_with_the_same_count_is_worse_by_log_rank() -> None:
    """Both batches violate in every run; only the timing differs, which the proportion
    test cannot see and the log-rank test can."""
    baseline = RunOutcomes.from_runs([30] * 20, [20 + i % 5 for i in range(20)])
    candidate = RunOutcomes.from_runs([30] * 20, [2 + i % 5 for i in range(20)])
    verdict = regression_test(baseline, candidate)
    assert verdict.verdict == "worse"
    assert verdict.proportion_p_worse == 1.0
    assert verdict.restricted_mean is not None
    assert verdict.restricted_mean.difference < 0


def test_fewer_than_five_runs_a_side_is_insufficient_data() -> None:
    verdict = regression_test(_batch(7, 4, 0.01), _batch(8, 30, 0.5))
    assert verdict.verdict == "insufficient_data"
    assert verdict.explanation == (
        "insufficient data: need at least 5 runs per side, got baseline 4, candidate 30"
    )
    assert verdict.logrank is None
    assert verdict.logrank_p_worse is None


def test_min_runs_is_configurable() -> None:
    verdict = regression_test(_batch(9, 4, 0.01), _batch(10, 4, 0.01), min_runs=3)
    assert verdict.verdict != "insufficient_data"


def test_verdict_is_json_ready_and_explained_in_one_line() -> None:
    verdict = regression_test(_batch(11, 25, 0.02), _batch(12, 25, 0.06))
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["verdict"] == verdict.verdict
    assert data["rate"]["runs_a"] == 25
    assert "\n" not in verdict.explanation


def test_false_worse_rate_under_no_change_stays_below_alpha() -> None:
    """600 nightly comparisons of identical behaviour (30 vs 30 runs, 30 turns): the
    gate may say "worse" in at most alpha = 5% of them (Bonferroni over two tests)."""
    verdicts: list[RegressionVerdict] = [
        regression_test(_batch(1000 + i, 30, 0.03), _batch(5000 + i, 30, 0.03)) for i in range(600)
    ]
    false_worse = sum(v.verdict == "worse" for v in verdicts) / len(verdicts)
    false_better = sum(v.verdict == "better" for v in verdicts) / len(verdicts)
    assert false_worse <= 0.05
    assert false_better <= 0.05


def test_alpha_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="alpha"):
        regression_test(_batch(13, 10, 0.1), _batch(14, 10, 0.1), alpha=0)
