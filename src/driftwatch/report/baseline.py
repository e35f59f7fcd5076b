"""A batch against its baseline: per scenario × model × variant, did it get better or worse?

This is the nightly gate behind ``driftwatch batch --baseline ID --fail-on regression``
and the "against the baseline" section of ``driftwatch report``. Each group is tested
with :func:`driftwatch.stats.regression_test` (one-sided log-rank OR one-sided Fisher,
each at half the group's level). One more row pools every group present in both
batches, because a nightly suite often has too few seeds per group for a per-group
verdict while the pooled row still has power.

Looking at many groups multiplies the chances of a false alarm, so the family (the pooled
row and every group with enough runs on both sides) shares ``alpha`` by Bonferroni: each
row is tested at ``alpha / family size``. ``regressed`` is true when any row in the family
says "worse", so the gate's false-alarm rate stays <= ``alpha``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from driftwatch.core.errors import NotFoundError, UsageError
from driftwatch.report.contents import ALL_GROUPS, BatchComparison, ComparisonRow, GroupSide
from driftwatch.report.summary import QueryableStore, RunFacts, load_run_facts
from driftwatch.stats import RegressionVerdict, RunOutcomes, regression_test

__all__ = ["MIN_RUNS", "compare_batches", "compare_facts"]

MIN_RUNS = 5


def compare_batches(
    store: QueryableStore,
    batch_id: str,
    baseline_id: str,
    *,
    alpha: float = 0.05,
    min_runs: int = MIN_RUNS,
) -> BatchComparison:
    """Compare the finished runs of ``batch_id`` with those of ``baseline_id``.

    Raises :class:`NotFoundError` when either batch has no finished run, and
    :class:`UsageError` for an ``alpha`` outside (0, 1) or a batch compared with itself.
    """
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must be strictly between 0 and 1, got {alpha}")
    if batch_id == baseline_id:
        raise UsageError(f"batch {batch_id!r} cannot be its own baseline")
    candidate = _finished_runs(store, batch_id)
    baseline = _finished_runs(store, baseline_id)
    return compare_facts(candidate, baseline, batch_id=batch_id, baseline_id=baseline_id,
                         alpha=alpha, min_runs=min_runs)


def compare_facts(
    candidate: Sequence[RunFacts],
    baseline: Sequence[RunFacts],
    *,
    batch_id: str,
    baseline_id: str,
    alpha: float = 0.05,
    min_runs: int = MIN_RUNS,
) -> BatchComparison:
    """:func:`compare_batches` on runs already loaded (see :func:`load_run_facts`)."""
    candidate_groups = _by_group(candidate)
    baseline_groups = _by_group(baseline)
    keys = sorted(set(candidate_groups) | set(baseline_groups))
    matched = [key for key in keys if key in candidate_groups and key in baseline_groups]
    pooled_candidate = [run for key in matched for run in candidate_groups[key]]
    pooled_baseline = [run for key in matched for run in baseline_groups[key]]

    sides = {key: (baseline_groups.get(key, []), candidate_groups.get(key, [])) for key in keys}
    if len(matched) > 1:
        sides[(ALL_GROUPS, "", "")] = (pooled_baseline, pooled_candidate)
    in_family = {
        key: len(base) >= min_runs and len(cand) >= min_runs
        for key, (base, cand) in sides.items()
    }
    family_size = sum(in_family.values())
    level = alpha / max(1, family_size)
    rows = [
        _row(key, base, cand, alpha=level, min_runs=min_runs, in_family=in_family[key])
        for key, (base, cand) in sides.items()
    ]
    rows.sort(key=lambda row: (not row.is_pooled, row.scenario_id, row.model, row.variant))
    return BatchComparison(batch_id=batch_id, baseline_id=baseline_id, alpha=alpha,
                           family_size=family_size, rows=rows)


def _finished_runs(store: QueryableStore, batch_id: str) -> list[RunFacts]:
    facts = load_run_facts(store.query, batch_id=batch_id)
    if not facts:
        raise NotFoundError(f"batch {batch_id!r} has no finished runs in this store")
    return facts


def _by_group(facts: Iterable[RunFacts]) -> dict[tuple[str, str, str], list[RunFacts]]:
    groups: dict[tuple[str, str, str], list[RunFacts]] = defaultdict(list)
    for fact in facts:
        groups[(fact.scenario_id, fact.model, fact.variant)].append(fact)
    return groups


def _outcomes(runs: Sequence[RunFacts]) -> RunOutcomes | None:
    if not runs:
        return None
    return RunOutcomes.from_runs([r.turns for r in runs], [r.first_violation for r in runs])


def _side(outcomes: RunOutcomes | None, horizon: float | None) -> GroupSide:
    if outcomes is None:
        return GroupSide(runs=0, violating=0, median_first_violation=None,
                         survival_at_horizon=None)
    curve = outcomes.kaplan_meier()
    return GroupSide(
        runs=outcomes.runs,
        violating=outcomes.violating,
        median_first_violation=curve.median(),
        survival_at_horizon=None if horizon is None else float(curve.survival_at(horizon)),
    )


def _row(
    key: tuple[str, str, str],
    baseline_runs: Sequence[RunFacts],
    candidate_runs: Sequence[RunFacts],
    *,
    alpha: float,
    min_runs: int,
    in_family: bool,
) -> ComparisonRow:
    baseline = _outcomes(baseline_runs)
    candidate = _outcomes(candidate_runs)
    horizon = (
        min(max(baseline.durations), max(candidate.durations))
        if baseline is not None and candidate is not None
        else None
    )
    if baseline is None or candidate is None:
        missing = "baseline" if baseline is None else "this batch"
        result = RegressionVerdict(
            verdict="insufficient_data",
            explanation=f"insufficient data: no finished runs in {missing}",
            alpha=alpha,
            baseline_runs=0 if baseline is None else baseline.runs,
            candidate_runs=0 if candidate is None else candidate.runs,
            baseline_violating=0 if baseline is None else baseline.violating,
            candidate_violating=0 if candidate is None else candidate.violating,
        )
    else:
        result = regression_test(baseline, candidate, alpha=alpha, min_runs=min_runs)
    scenario_id, model, variant = key
    return ComparisonRow(
        scenario_id=scenario_id, model=model, variant=variant,
        baseline=_side(baseline, horizon), candidate=_side(candidate, horizon),
        horizon=horizon, result=result, in_family=in_family,
    )
