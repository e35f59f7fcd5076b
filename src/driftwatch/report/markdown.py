"""Markdown summaries for CI logs and pull-request comments.

GitHub renders inline HTML in comments, and cells come from scenario, model and rule
names that users (and, through findings, models) control, so every cell goes through
:func:`cell`: pipes, angle brackets, backticks and line breaks cannot break the table or
inject markup.
"""

from __future__ import annotations

from driftwatch.report.contents import BatchComparison, BatchReport, ComparisonRow, GroupSide
from driftwatch.report.numbers import MISSING, p_value, percent, signed, turn

__all__ = ["batch_markdown", "cell", "comparison_markdown"]

_ESCAPES = str.maketrans({
    "|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "\\`", "*": "\\*", "_": "\\_",
    "[": "\\[", "]": "\\]", "\n": " ", "\r": " ",
})


def cell(value: object, *, limit: int = 120) -> str:
    """``value`` as one safe Markdown table cell, cut to ``limit`` characters."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.translate(_ESCAPES)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _side(side: GroupSide) -> str:
    if side.runs == 0:
        return "no runs"
    return f"{side.violating}/{side.runs} ({percent(side.violation_rate)})"


def _group_name(row: ComparisonRow) -> list[str]:
    if row.is_pooled:
        return ["**all groups**", "", ""]
    return [cell(row.scenario_id), cell(row.model), cell(row.variant)]


def comparison_markdown(comparison: BatchComparison, *, heading_level: int = 2) -> str:
    """The verdict line and one row per group: runs violating, median turns to the
    first violation, the deciding test's one-sided p-value and the verdict."""
    hashes = "#" * heading_level
    status = "REGRESSED" if comparison.regressed else "no regression"
    lines = [
        f"{hashes} `{cell(comparison.batch_id)}` vs baseline `{cell(comparison.baseline_id)}`:"
        f" {status}",
        "",
        f"Each row is tested at α = {comparison.alpha:g} / {max(1, comparison.family_size)}"
        f" = {comparison.level:.3g} (Bonferroni over {comparison.family_size} "
        f"row{'' if comparison.family_size == 1 else 's'} with at least 5 runs per side); "
        "a row is worse when the one-sided log-rank or Fisher test "
        "rejects at half that level.",
        "",
    ]
    rows = []
    for row in comparison.rows:
        verdict = f"**{row.label}**" if row.verdict in ("worse", "better") else row.label
        rows.append([
            *_group_name(row),
            _side(row.baseline), _side(row.candidate),
            turn(row.baseline.median_first_violation),
            turn(row.candidate.median_first_violation),
            row.test, p_value(row.p_value), verdict,
        ])
    lines += _table(
        ["scenario", "model", "variant", "baseline violating", "batch violating",
         "baseline median 1st violation", "batch median 1st violation", "test",
         "p (one-sided)", "verdict"],
        rows,
    )
    return "\n".join(lines) + "\n"


def batch_markdown(report: BatchReport) -> str:
    """The whole report in Markdown: groups, pressure-vs-control effects, top rules and,
    when there is a baseline, the comparison."""
    lines = [f"# driftwatch report: batch `{cell(report.batch_id)}`", ""]
    lines.append(
        f"{report.total_runs} finished runs in {len(report.groups)} groups, "
        f"{report.violating_runs} with at least one violation."
    )
    lines.append("")
    health = report.health
    if health is not None and not health.ok:
        lines += [f"**{health.headline()}**: the statistics below count finished runs only.",
                  ""]
    if health is not None and health.problems:
        lines += ["## Runs that did not complete", ""]
        lines += _table(
            ["run", "scenario", "variant", "model", "seed", "status", "attempts", "error"],
            [[cell(p.run_id), cell(p.scenario_id), cell(p.variant), cell(p.model), str(p.seed),
              cell(p.status), str(p.attempts), cell(p.error or "")]
             for p in health.problems],
        )
        if len(health.problems) < health.ended_badly:
            lines += ["", f"… and {health.ended_badly - len(health.problems)} more "
                      "(the `batch_cells` view lists every cell)."]
        lines.append("")
    lines.append("## Groups")
    lines.append("")
    lines += _table(
        ["scenario", "model", "variant", "runs", "violating [95% CI]",
         "median turns to 1st violation [CI]"],
        [
            [cell(g.scenario_id), cell(g.model), cell(g.variant), str(g.runs),
             f"{percent(g.violating_share)} [{percent(g.violating_low)}, "
             f"{percent(g.violating_high)}]",
             f"{turn(g.median)} [{turn(g.median_low)}, {turn(g.median_high)}]"]
            for g in report.groups
        ],
    )
    if report.effects:
        lines += ["", "## Pressure vs control", ""]
        lines += _table(
            ["scenario", "model", "comparison", "Δ violating [95% CI]",
             "Δ RMST (turns) [95% CI]", "log-rank p"],
            [
                [cell(e.scenario_id), cell(e.model), f"{cell(e.variant)} vs {cell(e.control)}",
                 f"{signed(e.rate_difference, 100, 0)} pts [{signed(e.rate_low, 100, 0)}, "
                 f"{signed(e.rate_high, 100, 0)}]",
                 MISSING if e.rmst_difference is None else
                 f"{signed(e.rmst_difference)} [{signed(e.rmst_low)}, {signed(e.rmst_high)}]",
                 p_value(e.logrank_p)]
                for e in report.effects
            ],
        )
    if report.top_rules:
        lines += ["", "## Top rules", ""]
        lines += _table(
            ["scenario", "model", "rule", "kind", "severity", "findings", "runs"],
            [[cell(r.scenario_id), cell(r.model), cell(r.rule_id), cell(r.kind),
              cell(r.severity), str(r.findings), str(r.runs)]
             for r in report.top_rules],
        )
    if report.comparison is not None:
        lines += ["", comparison_markdown(report.comparison, heading_level=2).rstrip("\n")]
    return "\n".join(lines) + "\n"
