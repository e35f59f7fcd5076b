"""Everything the batch report shows, read from the store's public views.

:func:`build_batch_report` returns one :class:`~driftwatch.report.contents.BatchReport`,
which :func:`~driftwatch.report.html.render_html` and
:func:`~driftwatch.report.markdown.batch_markdown` render. Statistics come from
:mod:`driftwatch.report.summary` (one group per scenario × model × variant); the page
groups those by scenario × model so that variants share a chart.

Pages stay fast with hundreds of runs because everything per run is capped: at most
``max_rules`` rules with one example each, and at most ``max_runs`` runs per section with
their turns (the runs that violated first); the page says how many were left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from driftwatch.core.errors import NotFoundError
from driftwatch.report.baseline import compare_batches
from driftwatch.report.contents import (
    BatchReport,
    EffectRow,
    FirstViolations,
    GroupRow,
    RateSeries,
    RuleSummary,
    RunDetail,
    Section,
    SurvivalSeries,
)
from driftwatch.report.excerpts import load_rule_summaries, load_run_details
from driftwatch.report.health import load_batch_health
from driftwatch.report.summary import (
    Effect,
    GroupStats,
    QueryableStore,
    RunFacts,
    build_report,
    load_run_facts,
)
from driftwatch.stats import restricted_mean_difference, wilson_interval

__all__ = ["MAX_RULES", "MAX_RUNS", "build_batch_report"]

MAX_RUNS = 5
MAX_RULES = 8


def build_batch_report(
    store: QueryableStore,
    batch_id: str,
    *,
    baseline_id: str | None = None,
    control: str = "control",
    alpha: float = 0.05,
    max_runs: int = MAX_RUNS,
    max_rules: int = MAX_RULES,
) -> BatchReport:
    """Read batch ``batch_id`` (and its baseline) from ``store``; raises
    :class:`NotFoundError` when the batch has neither finished runs nor planned cells
    (a batch whose every run failed still gets a report: its failures are the news)."""
    facts = load_run_facts(store.query, batch_id=batch_id)
    health = load_batch_health(store, batch_id)
    if not facts and not health.planned:
        raise NotFoundError(f"batch {batch_id!r} has no finished runs in this store")
    comparison = (
        compare_batches(store, batch_id, baseline_id, alpha=alpha)
        if baseline_id is not None and facts else None
    )
    stats = build_report(facts, control=control)
    by_section: dict[tuple[str, str], list[GroupStats]] = defaultdict(list)
    for group in stats.groups:
        by_section[(group.scenario_id, group.model)].append(group)
    rules = load_rule_summaries(store, batch_id)
    run_details = load_run_details(
        store, [run.run_id for groups in by_section.values()
                for run in _runs_to_show(groups, max_runs)])
    sections = [
        _section(scenario_id, model, groups, control=control,
                 effects={e.variant: e for e in stats.effects
                          if (e.scenario_id, e.model) == (scenario_id, model)},
                 rules=rules.get((scenario_id, model), []), max_rules=max_rules,
                 details=[run_details[run.run_id] for run in _runs_to_show(groups, max_runs)
                          if run.run_id in run_details])
        for (scenario_id, model), groups in sorted(by_section.items())
    ]
    everything = sorted((rule for section_rules in rules.values() for rule in section_rules),
                        key=lambda rule: rule.rank)
    return BatchReport(
        batch_id=batch_id, batch=_batch_row(store, batch_id), sections=sections,
        comparison=comparison, max_runs=max_runs, max_rules=max_rules,
        top_rules=everything[:max_rules], health=health if health.planned else None,
    )


def _batch_row(store: QueryableStore, batch_id: str) -> dict[str, Any]:
    result = store.query(
        "SELECT name, status, started_at, ended_at FROM batches WHERE batch_id = ?", [batch_id])
    if not result.rows:
        return {}
    return dict(zip(result.columns, result.rows[0], strict=True))


def _runs_to_show(groups: Sequence[GroupStats], limit: int) -> list[RunFacts]:
    """The runs whose turns the page lists: the earliest violations first, then clean
    runs, so a reader sees what went wrong and one clean run to compare with."""
    runs = [run for group in groups for run in group.runs]
    runs.sort(key=lambda run: (run.first_violation is None, run.first_violation or 0,
                               run.variant, run.run_id))
    return runs[:limit]


def _group_row(group: GroupStats) -> GroupRow:
    low, high = wilson_interval(group.violating_runs, len(group.runs))
    median_low, median_high = group.survival.median_ci()
    return GroupRow(
        scenario_id=group.scenario_id, model=group.model, variant=group.variant,
        runs=len(group.runs), violating=group.violating_runs, violating_low=low,
        violating_high=high, median=group.survival.median(), median_low=median_low,
        median_high=median_high,
    )


def _effect_row(effect: Effect, group: GroupStats, base: GroupStats,
                control: str) -> EffectRow:
    """The stats report's rate difference and log-rank test, plus the RMST difference
    (violation-free turns within the follow-up both groups share)."""
    common = min(max(group.outcomes.durations), max(base.outcomes.durations))
    rmst = (
        restricted_mean_difference(group.outcomes.durations, group.outcomes.observed,
                                   base.outcomes.durations, base.outcomes.observed)
        if common > 0 else None
    )
    return EffectRow(
        scenario_id=effect.scenario_id, model=effect.model, variant=effect.variant,
        control=control, rate_difference=effect.rate.difference, rate_low=effect.rate.low,
        rate_high=effect.rate.high,
        rmst_difference=None if rmst is None else rmst.difference,
        rmst_low=None if rmst is None else rmst.low,
        rmst_high=None if rmst is None else rmst.high,
        rmst_horizon=None if rmst is None else rmst.horizon,
        logrank_p=effect.logrank.p_value,
    )


def _section(scenario_id: str, model: str, groups: list[GroupStats], *, control: str,
             effects: dict[str, Effect], rules: list[RuleSummary], max_rules: int,
             details: list[RunDetail]) -> Section:
    base = next((group for group in groups if group.variant == control), None)
    effect_rows = [
        _effect_row(effects[group.variant], group, base, control)
        for group in groups if base is not None and group.variant in effects
    ]
    last_turns = {group.variant: float(max(run.turns for run in group.runs)) for group in groups}
    rows = [_group_row(group) for group in groups]
    return Section(
        scenario_id=scenario_id, model=model,
        groups=rows,
        effects=effect_rows,
        survival=[SurvivalSeries(g.variant, g.survival, last_turns[g.variant]) for g in groups],
        rates=[RateSeries(g.variant, g.rates) for g in groups],
        first_violations=[
            FirstViolations(
                variant=group.variant,
                turns=[run.first_violation for run in group.runs
                       if run.first_violation is not None],
                clean_runs=group.clean_runs, median=row.median, median_low=row.median_low,
                median_high=row.median_high, last_turn=last_turns[group.variant],
            )
            for group, row in zip(groups, rows, strict=True)
        ],
        rules=rules[:max_rules], rules_total=len(rules),
        runs=details, runs_total=sum(len(group.runs) for group in groups),
    )
