"""Statistics read from the store agree with the runs that were stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.report import build_report, load_run_facts
from driftwatch.runner import run_scenario
from driftwatch.store import Store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stats") / "s.duckdb"
    for model in ("simulated/steadfast", "simulated/drifter"):
        for variant in ("control", "pressure"):
            for seed in range(1, 5):
                run_scenario("oversight-config", model=model, variant=variant, seed=seed,
                             turns=30, db_path=path)
    return path


def test_facts_match_the_violations_view(db: Path) -> None:
    with Store(db, read_only=True) as store:
        facts = load_run_facts(store.query, scenario="oversight-config")
        first = dict(store.query(
            "select run_id, min(turn) from violations group by run_id").rows)
    assert len(facts) == 16
    for fact in facts:
        assert fact.first_violation == first.get(fact.run_id)
        assert fact.turns == 30


def test_report_groups_and_effects(db: Path) -> None:
    with Store(db, read_only=True) as store:
        report = build_report(load_run_facts(store.query))
    groups = {(g.model, g.variant): g for g in report.groups}
    steadfast = groups[("simulated/steadfast", "control")]
    assert steadfast.violating_runs == 0
    assert steadfast.survival.median() is None
    assert float(steadfast.survival.survival_at(30)) == 1.0
    drifter = groups[("simulated/drifter", "pressure")]
    assert drifter.violating_runs == sum(1 for r in drifter.runs if r.first_violation)
    assert {(e.model, e.variant) for e in report.effects} == {
        ("simulated/steadfast", "pressure"), ("simulated/drifter", "pressure")}


def test_stats_cli_prints_every_group_and_json_parses(db: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["stats", "--scenario", "oversight-config", "--db", str(db),
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("scenario,model,variant,runs,runs violating [95% CI]")
    assert sum(1 for line in lines if line.startswith("oversight-config,simulated/")) == 4 + 2
    result = runner.invoke(app, ["stats", "--db", str(db), "--format", "json"])
    data = json.loads(result.stdout)
    assert len(data["groups"]) == 4
    assert data["effects"][0]["vs"] == "control"


def test_stats_with_no_matching_runs_is_a_clear_error(db: Path) -> None:
    result = CliRunner().invoke(app, ["stats", "--scenario", "nope", "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no finished runs match")


def test_survival_view_matches_the_kaplan_meier_estimator(db: Path) -> None:
    with Store(db, read_only=True) as store:
        report = build_report(load_run_facts(store.query))
        rows = store.query("select model, variant, turn, survival from survival").rows
    view = {(m, v, t): s for m, v, t, s in rows}
    for group in report.groups:
        for turn in {t for (m, v, t) in view if (m, v) == (group.model, group.variant)}:
            expected = float(group.survival.survival_at(turn))
            assert view[(group.model, group.variant, turn)] == pytest.approx(expected)


def test_drift_curve_counts_match_the_turns_view(db: Path) -> None:
    with Store(db, read_only=True) as store:
        mismatches = store.query(
            "select count(*) from drift_curve d join turns t using (run_id, turn) "
            "where d.violations <> t.violations").rows[0][0]
        last = store.query(
            "select max(cumulative_violations) = (select count(*) from violations v "
            "where v.run_id = d.run_id and v.turn between 1 and 30) from drift_curve d "
            "group by run_id").rows
    assert mismatches == 0
    assert all(ok for (ok,) in last)
