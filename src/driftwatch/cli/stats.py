"""``driftwatch stats``: survival and violation rates per scenario × model × variant."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

import json
import sys
from typing import Any

import typer

from driftwatch.cli.common import OutputFormat, render_rows


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _interval(estimate: float, low: float, high: float) -> str:
    return f"{_pct(estimate)} [{_pct(low)}, {_pct(high)}]"


def _turn(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def stats_command(*, db: str | None, scenario: str | None, model: str | None,
                  variant: str | None, batch: str | None, fmt: OutputFormat,
                  at: list[int] | None, token: str | None = None) -> None:
    from driftwatch.cli.collector import collector_reader
    from driftwatch.core.errors import NotFoundError
    from driftwatch.core.settings import db_path
    from driftwatch.report import build_report, load_run_facts
    from driftwatch.stats import wilson_interval
    from driftwatch.store import Store

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"{path}: no such database (run a scenario first, or pass --db)")
    remote = collector_reader(path, token=token)
    if remote is not None:  # `serve` holds the file: read through it
        facts = load_run_facts(remote, scenario=scenario, model=model, variant=variant,
                               batch_id=batch)
    else:
        with Store(path, read_only=True) as store:
            facts = load_run_facts(store.query, scenario=scenario, model=model,
                                   variant=variant, batch_id=batch)
    if not facts:
        raise NotFoundError("no finished runs match (check --scenario/--model/--variant/--batch)")
    report = build_report(facts)
    if fmt is OutputFormat.json:
        out: dict[str, Any] = {"groups": [], "effects": []}
        for group in report.groups:
            out["groups"].append({
                "scenario_id": group.scenario_id, "model": group.model,
                "variant": group.variant, "runs": len(group.runs),
                "violating_runs": group.violating_runs,
                "violating_interval": list(wilson_interval(group.violating_runs, len(group.runs))),
                "median_turns_to_first_violation": group.survival.median(),
                "median_ci": list(group.survival.median_ci()),
                "survival": group.survival.to_dict(),
                "rate_by_turn": group.rates.to_dict(),
                "pass_k": group.pass_k.to_dict(),
            })
        for effect in report.effects:
            out["effects"].append({"scenario_id": effect.scenario_id, "model": effect.model,
                                   "variant": effect.variant, "vs": "control",
                                   "rate": effect.rate.to_dict(),
                                   "logrank": effect.logrank.to_dict()})
        sys.stdout.write(json.dumps(out, indent=2, default=float) + "\n")
        return
    longest = max(max(r.turns for r in g.runs) for g in report.groups)
    turns = at or sorted({max(1, longest // 4), max(1, longest // 2), longest})
    rows = []
    for group in report.groups:
        low, high = wilson_interval(group.violating_runs, len(group.runs))
        median_low, median_high = group.survival.median_ci()
        row = [group.scenario_id, group.model, group.variant, len(group.runs),
               _interval(group.violating_runs / len(group.runs), low, high),
               f"{_turn(group.survival.median())} [{_turn(median_low)}, {_turn(median_high)}]"]
        for t in turns:
            idx = int((group.survival.times <= t).sum()) - 1
            s = float(group.survival.survival_at(t))
            band = (1.0, 1.0) if idx < 0 else (float(group.survival.lower[idx]),
                                                 float(group.survival.upper[idx]))
            row.append(_interval(s, *band))
        k = min(3, len(group.runs))
        estimate, k_low, k_high = group.pass_k.at(k)
        row.append(f"k={k} " + _interval(estimate, k_low, k_high))
        rows.append(row)
    columns = ["scenario", "model", "variant", "runs", "runs violating [95% CI]",
               "median turns to 1st violation [CI]", *(f"S({t})" for t in turns), "pass^k"]
    render_rows(columns, rows, fmt)
    if report.effects:
        typer.echo("")
        effect_rows = [
            [e.scenario_id, e.model, f"{e.variant} vs control",
             f"{100 * e.rate.difference:+.0f} pts "
             f"[{100 * e.rate.low:+.0f}, {100 * e.rate.high:+.0f}]",
             f"{e.logrank.p_value:.3g}"]
            for e in report.effects
        ]
        render_rows(["scenario", "model", "comparison", "Δ runs violating [95% CI]",
                     "log-rank p"], effect_rows, fmt)
