"""What a report consists of, as plain data: the batch report (groups, effects, charts'
series, top rules with an example finding, runs' turns, the batch's health) and the
comparison with a baseline.

This is the seam of the package. The builders (:mod:`~driftwatch.report.batch`,
:mod:`~driftwatch.report.baseline`, :mod:`~driftwatch.report.excerpts`,
:mod:`~driftwatch.report.health`) read the store and return these objects; the renderers
(:mod:`~driftwatch.report.html`, :mod:`~driftwatch.report.markdown`,
:mod:`~driftwatch.report.charts`) are functions of them and never read the store. So a
new output format is one renderer module, and a renderer can be tested on hand-made
objects. Every property here derives from fields; nothing here queries or formats.

(The module is not called ``model``: in driftwatch a model is the LLM under test.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from driftwatch.stats import RegressionVerdict, SurvivalCurve, TurnRates, Verdict

__all__ = [
    "ALL_GROUPS",
    "BatchComparison",
    "BatchHealth",
    "BatchReport",
    "CellProblem",
    "ComparisonRow",
    "EffectRow",
    "FindingExample",
    "FirstViolations",
    "GroupRow",
    "GroupSide",
    "RateSeries",
    "RuleSummary",
    "RunDetail",
    "Section",
    "SurvivalSeries",
    "ToolCall",
    "TurnDetail",
    "verdict_label",
]

# --- the comparison with a baseline ---------------------------------------------------

ALL_GROUPS = "(all groups)"
"""The ``scenario_id`` of the pooled row (every group present in both batches)."""

_LABELS: dict[str, str] = {
    "worse": "worse",
    "better": "better",
    "no_significant_change": "no change",
    "insufficient_data": "insufficient data",
}


def verdict_label(verdict: Verdict) -> str:
    """The short word a person reads: worse, better, no change, insufficient data."""
    return _LABELS[verdict]


@dataclass(frozen=True)
class GroupSide:
    """One batch's runs of one group, summarised."""

    runs: int
    violating: int
    median_first_violation: float | None
    survival_at_horizon: float | None

    @property
    def violation_rate(self) -> float | None:
        return self.violating / self.runs if self.runs else None


@dataclass(frozen=True)
class ComparisonRow:
    """One scenario × model × variant (or the pooled row): baseline, candidate, verdict."""

    scenario_id: str
    model: str
    variant: str
    baseline: GroupSide
    candidate: GroupSide
    horizon: float | None
    result: RegressionVerdict
    in_family: bool

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    @property
    def label(self) -> str:
        return verdict_label(self.result.verdict)

    @property
    def is_pooled(self) -> bool:
        return self.scenario_id == ALL_GROUPS

    @property
    def p_value(self) -> float | None:
        """The smaller one-sided p-value in the direction of the verdict (worse unless
        the verdict is better); ``None`` without a test."""
        result = self.result
        if result.logrank_p_worse is None or result.proportion_p_worse is None:
            return None
        if result.verdict == "better":
            assert result.logrank_p_better is not None
            assert result.proportion_p_better is not None
            return min(result.logrank_p_better, result.proportion_p_better)
        return min(result.logrank_p_worse, result.proportion_p_worse)

    @property
    def test(self) -> str:
        """Which test decided (or would have), as a person reads it."""
        result = self.result
        if result.logrank_p_worse is None:
            return "none"
        direction = "better" if result.verdict == "better" else "worse"
        logrank_p = getattr(result, f"logrank_p_{direction}")
        fisher_p = getattr(result, f"proportion_p_{direction}")
        return "log-rank (one-sided)" if logrank_p <= fisher_p else "Fisher exact (one-sided)"


@dataclass(frozen=True)
class BatchComparison:
    batch_id: str
    baseline_id: str
    alpha: float
    family_size: int
    rows: list[ComparisonRow]

    @property
    def level(self) -> float:
        """The α each row in the family is tested at (each of its two tests at half)."""
        return self.alpha / max(1, self.family_size)

    @property
    def regressed(self) -> bool:
        """What ``--fail-on regression`` fails on: any row in the family is worse."""
        return any(row.in_family and row.verdict == "worse" for row in self.rows)

    @property
    def worse(self) -> list[ComparisonRow]:
        return [row for row in self.rows if row.verdict == "worse"]

    @property
    def better(self) -> list[ComparisonRow]:
        return [row for row in self.rows if row.verdict == "better"]


# --- findings and runs, as the page quotes them (plain, clipped model text) -----------

@dataclass(frozen=True)
class FindingExample:
    run_id: str
    variant: str
    turn: int | None
    message: str
    tool_name: str
    tool_arguments: str
    evidence: str
    agent_text: str


@dataclass(frozen=True)
class RuleSummary:
    """One rule (or monitor finding kind) in one scenario × model, with an example."""

    scenario_id: str
    model: str
    rule_id: str
    kind: str
    severity: str
    severity_level: int
    findings: int
    runs: int
    example: FindingExample

    @property
    def rank(self) -> tuple[int, int, int, str]:
        """Most severe first, then the rule that hit the most runs."""
        return (-self.severity_level, -self.runs, -self.findings, self.rule_id)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str
    result: str


@dataclass
class TurnDetail:
    turn: int | None
    phase: str
    events: list[tuple[str, str]] = field(default_factory=list)
    agent_texts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    """(severity, rule id, message)"""


@dataclass(frozen=True)
class RunDetail:
    run_id: str
    variant: str
    seed: int | None
    status: str
    turns: int
    first_violation: int | None
    findings: int
    turn_details: list[TurnDetail]


# --- the batch's health: planned cells that did not complete --------------------------

@dataclass(frozen=True)
class CellProblem:
    """A planned cell that did not complete, with the error it ended on."""

    cell_key: str
    run_id: str
    scenario_id: str
    variant: str
    model: str
    seed: int
    status: str
    attempts: int
    error: str | None

    @property
    def label(self) -> str:
        return f"{self.scenario_id}/{self.variant} {self.model} seed {self.seed}"


@dataclass(frozen=True)
class BatchHealth:
    """Planned cells by outcome, and the first ``limit`` cells that ran and did not
    complete, each with its error (failed ones first; cells not run are only counted)."""

    planned: int
    completed: int
    errored: int
    failed: int
    problems: tuple[CellProblem, ...]

    @property
    def not_run(self) -> int:
        """Cells with no final status: never started, interrupted or skipped."""
        return self.planned - self.completed - self.errored - self.failed

    @property
    def missing(self) -> int:
        """Cells without a finished run (failed or not run): a gate cannot trust the batch."""
        return self.failed + self.not_run

    @property
    def unsuccessful(self) -> int:
        """Cells that did not complete normally (errored, failed or not run)."""
        return self.planned - self.completed

    @property
    def ended_badly(self) -> int:
        """Cells that ran and errored or failed (the ones :attr:`problems` lists)."""
        return self.errored + self.failed

    @property
    def ok(self) -> bool:
        return self.unsuccessful == 0

    def headline(self) -> str:
        """One line: ``144 planned runs: 126 completed, 18 failed``."""
        parts = [f"{self.completed} completed"]
        for count, word in ((self.errored, "errored"), (self.failed, "failed"),
                            (self.not_run, "not run")):
            if count:
                parts.append(f"{count} {word}")
        return f"{self.planned} planned runs: " + ", ".join(parts)


# --- the batch report -----------------------------------------------------------------

@dataclass(frozen=True)
class GroupRow:
    """One scenario × model × variant: how many runs violated and how soon."""

    scenario_id: str
    model: str
    variant: str
    runs: int
    violating: int
    violating_low: float
    violating_high: float
    median: float | None
    median_low: float | None
    median_high: float | None

    @property
    def violating_share(self) -> float:
        return self.violating / self.runs


@dataclass(frozen=True)
class EffectRow:
    """A variant against control in one scenario × model (differences variant − control)."""

    scenario_id: str
    model: str
    variant: str
    control: str
    rate_difference: float
    rate_low: float
    rate_high: float
    rmst_difference: float | None
    rmst_low: float | None
    rmst_high: float | None
    rmst_horizon: float | None
    logrank_p: float


@dataclass(frozen=True)
class SurvivalSeries:
    """One variant's Kaplan–Meier curve of "no violation yet" and its last turn followed."""

    variant: str
    curve: SurvivalCurve
    last_turn: float


@dataclass(frozen=True)
class RateSeries:
    """One variant's violation rate by turn."""

    variant: str
    rates: TurnRates


@dataclass(frozen=True)
class FirstViolations:
    """One variant's first-violation turns and the Kaplan–Meier median with its CI."""

    variant: str
    turns: Sequence[int]
    clean_runs: int
    median: float | None
    median_low: float | None
    median_high: float | None
    last_turn: float


@dataclass(frozen=True)
class Section:
    """One scenario × model: its variants, the series its charts draw, effects, top rules
    and runs."""

    scenario_id: str
    model: str
    groups: list[GroupRow]
    effects: list[EffectRow]
    survival: list[SurvivalSeries]
    rates: list[RateSeries]
    first_violations: list[FirstViolations]
    rules: list[RuleSummary]
    rules_total: int
    runs: list[RunDetail]
    runs_total: int

    @property
    def title(self) -> str:
        return f"{self.scenario_id} × {self.model}"

    @property
    def anchor(self) -> str:
        return "s-" + "".join(c if c.isalnum() else "-" for c in f"{self.scenario_id}-{self.model}")


@dataclass(frozen=True)
class BatchReport:
    batch_id: str
    batch: dict[str, Any]
    sections: list[Section]
    comparison: BatchComparison | None
    max_runs: int
    max_rules: int
    top_rules: list[RuleSummary] = field(default_factory=list)
    health: BatchHealth | None = None  # None: the batch has no ledger (imported runs)

    @property
    def groups(self) -> list[GroupRow]:
        return [group for section in self.sections for group in section.groups]

    @property
    def effects(self) -> list[EffectRow]:
        return [effect for section in self.sections for effect in section.effects]

    @property
    def total_runs(self) -> int:
        return sum(group.runs for group in self.groups)

    @property
    def violating_runs(self) -> int:
        return sum(group.violating for group in self.groups)
