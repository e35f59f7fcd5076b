"""Per scenario × model × variant statistics, read from the store: survival of "no
violation yet", violation rate by turn, pass^k, and pressure-vs-control effects.

The SQL reads only the public views (``runs``, ``violations``), so the same function
works on a live store, a read-only file, or Parquet exports behind the same views.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from driftwatch.stats import (
    LogRankResult,
    PassKCurve,
    RateDifference,
    RunOutcomes,
    RunTurns,
    SurvivalCurve,
    TurnRates,
    logrank_test,
    pass_k_curve,
    rate_difference,
    violation_rate_by_turn,
)
from driftwatch.store import QueryResult

FINISHED = ("completed", "errored")


class QueryableStore(Protocol):
    """Anything with :meth:`driftwatch.store.Store.query` (a store, read-only or not):
    what every report builder reads from."""

    def query(self, sql: str, params: Any = None) -> Any: ...


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    scenario_id: str
    model: str
    variant: str
    turns: int
    violation_turns: tuple[int, ...]

    @property
    def first_violation(self) -> int | None:
        return min(self.violation_turns) if self.violation_turns else None


@dataclass(frozen=True)
class GroupStats:
    scenario_id: str
    model: str
    variant: str
    runs: list[RunFacts]
    outcomes: RunOutcomes
    survival: SurvivalCurve
    rates: TurnRates
    pass_k: PassKCurve

    @property
    def violating_runs(self) -> int:
        return sum(1 for r in self.runs if r.violation_turns)

    @property
    def clean_runs(self) -> int:
        return len(self.runs) - self.violating_runs


@dataclass(frozen=True)
class Effect:
    """``variant`` against ``control`` for one scenario × model (a − b = variant − control)."""

    scenario_id: str
    model: str
    variant: str
    rate: RateDifference
    logrank: LogRankResult


@dataclass(frozen=True)
class StatsReport:
    groups: list[GroupStats]
    effects: list[Effect] = field(default_factory=list)


def load_run_facts(
    query: Any,
    *,
    scenario: str | None = None,
    model: str | None = None,
    variant: str | None = None,
    batch_id: str | None = None,
) -> list[RunFacts]:
    """Finished runs and their violation turns. ``query(sql, params) -> QueryResult``."""
    where = [f"r.status IN ({', '.join(repr(s) for s in FINISHED)})", "r.turns > 0"]
    params: list[Any] = []
    for column, value in (("scenario_id", scenario), ("model", model), ("variant", variant),
                          ("batch_id", batch_id)):
        if value is not None:
            where.append(f"r.{column} = ?")
            params.append(value)
    sql = f"""
        SELECT r.run_id, r.scenario_id, r.model, r.variant, r.turns,
               list(DISTINCT v.turn ORDER BY v.turn) FILTER (WHERE v.turn IS NOT NULL)
        FROM runs r LEFT JOIN violations v ON v.run_id = r.run_id
        WHERE {" AND ".join(where)}
        GROUP BY ALL
        ORDER BY r.scenario_id, r.model, r.variant, r.run_id
    """
    result: QueryResult = query(sql, params)
    facts = []
    for run_id, scenario_id, model_name, variant_name, turns, violation_turns in result.rows:
        kept = tuple(t for t in (violation_turns or ()) if 1 <= t <= turns)
        facts.append(RunFacts(run_id, scenario_id or "", model_name or "", variant_name or "",
                              int(turns), kept))
    return facts


def group_stats(runs: Sequence[RunFacts], *, confidence: float = 0.95) -> GroupStats:
    first = runs[0]
    outcomes = RunOutcomes.from_runs([r.turns for r in runs], [r.first_violation for r in runs])
    rates = violation_rate_by_turn(
        [RunTurns.from_violation_turns(r.turns, r.violation_turns) for r in runs],
        confidence=confidence,
    )
    clean = sum(1 for r in runs if not r.violation_turns)
    return GroupStats(
        scenario_id=first.scenario_id, model=first.model, variant=first.variant,
        runs=list(runs),
        outcomes=outcomes,
        survival=outcomes.kaplan_meier(confidence=confidence),
        rates=rates,
        pass_k=pass_k_curve(clean, len(runs), confidence=confidence),
    )


def build_report(facts: Sequence[RunFacts], *, confidence: float = 0.95,
                 control: str = "control") -> StatsReport:
    """Group runs by scenario × model × variant; compare each variant with ``control``."""
    grouped: dict[tuple[str, str, str], list[RunFacts]] = defaultdict(list)
    for fact in facts:
        grouped[(fact.scenario_id, fact.model, fact.variant)].append(fact)
    groups = {key: group_stats(runs, confidence=confidence)
              for key, runs in sorted(grouped.items())}
    effects = []
    for (scenario_id, model, variant), group in groups.items():
        base = groups.get((scenario_id, model, control))
        if variant == control or base is None:
            continue
        effects.append(Effect(
            scenario_id=scenario_id, model=model, variant=variant,
            rate=rate_difference(group.clean_runs, len(group.runs), base.clean_runs,
                                 len(base.runs), confidence=confidence),
            logrank=logrank_test(group.outcomes.durations, group.outcomes.observed,
                                 base.outcomes.durations, base.outcomes.observed),
        ))
    return StatsReport(groups=list(groups.values()), effects=effects)
