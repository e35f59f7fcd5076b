"""The batch report on real simulated runs: what each section holds, the caps, the
Markdown summary and the ``driftwatch report`` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.report.batch import build_batch_report
from driftwatch.report.contents import BatchReport
from driftwatch.report.html import render_html
from driftwatch.report.markdown import batch_markdown
from driftwatch.store import Store

pytestmark = pytest.mark.slow  # builds 12 simulated runs once per session


@pytest.fixture(scope="module")
def report(simulated_store: Path) -> BatchReport:
    with Store(simulated_store, read_only=True) as store:
        return build_batch_report(store, "nightly-1", baseline_id="nightly-0", max_runs=2)


def test_one_section_per_scenario_and_model_with_its_variants(report: BatchReport) -> None:
    assert [(s.scenario_id, s.model) for s in report.sections] == [
        ("oversight-config", "simulated/drifter"), ("support-policy", "simulated/drifter")]
    for section in report.sections:
        assert [g.variant for g in section.groups] == ["control", "pressure"]
        assert [g.runs for g in section.groups] == [3, 3]
        assert [(e.variant, e.control) for e in section.effects] == [("pressure", "control")]
        assert section.runs_total == 6
    assert report.total_runs == 12


def test_sections_agree_with_the_violations_view(report: BatchReport,
                                                 simulated_store: Path) -> None:
    with Store(simulated_store, read_only=True) as store:
        violating = dict(store.query(
            "select r.scenario_id || '/' || r.variant, count(distinct v.run_id) "
            "from runs r join violations v using (run_id) where r.batch_id = 'nightly-1' "
            "group by all").rows)
        rules = dict(store.query(
            "select f.rule_id, count(*) from findings f join runs r using (run_id) "
            "where r.batch_id = 'nightly-1' and r.scenario_id = 'support-policy' "
            "group by all").rows)
    for group in report.groups:
        assert group.violating == violating.get(f"{group.scenario_id}/{group.variant}", 0)
    support = report.sections[1]
    assert {rule.rule_id: rule.findings for rule in support.rules} == rules
    assert [rule.rank for rule in support.rules] == sorted(rule.rank for rule in support.rules)


def test_runs_listed_turn_by_turn_are_capped_earliest_violation_first(
    report: BatchReport,
) -> None:
    for section in report.sections:
        assert len(section.runs) == 2
        firsts = [run.first_violation for run in section.runs]
        assert firsts == sorted(firsts, key=lambda turn: (turn is None, turn or 0))
        for run in section.runs:
            assert [t.turn for t in run.turn_details if not t.phase] == list(range(1, 16))
            assert all(t.agent_texts for t in run.turn_details if not t.phase)
            assert any(t.tool_calls for t in run.turn_details)


def test_page_has_every_section(report: BatchReport) -> None:
    html = render_html(report)
    for heading in ("Overview", "Against the baseline", "Survival of “no violation yet”",
                    "Violation rate by turn", "Turns to first violation",
                    "Pressure vs control", "Top findings", "Runs", "Methods"):
        assert f">{heading}<" in html or f">{heading} <" in html, heading
    assert html.count('<svg class="chart"') == 3 * 2
    assert html.count('<details class="run">') == 4
    assert "Showing 2 of 6 runs" in html
    assert 'id="verdict"' in html


def test_markdown_summary(report: BatchReport) -> None:
    text = batch_markdown(report)
    assert text.startswith("# driftwatch report: batch `nightly-1`\n")
    for heading in ("## Groups", "## Pressure vs control",
                    "## `nightly-1` vs baseline `nightly-0`: "):
        assert heading in text
    groups = text.split("## Groups")[1].split("##")[0]
    assert len([line for line in groups.splitlines() if line.startswith("| ")]) == 1 + 4
    assert "<" not in text


def test_report_command_writes_html_and_markdown(simulated_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "page.html"
    result = CliRunner().invoke(app, [
        "report", "nightly-1", "--baseline", "nightly-0", "--db", str(simulated_store),
        "--out", str(out), "--markdown", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# driftwatch report: batch `nightly-1`")
    assert f"wrote {out}" in result.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(out.parent.glob(".*.tmp"))


def test_report_command_default_file_name(simulated_store: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "nightly-0", "--db", str(simulated_store),
                                      "--markdown", "summary.md"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report-nightly-0.html").exists()
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").startswith("# driftwatch")


@pytest.mark.parametrize(("args", "message"), [
    (["report", "nope"], "error: batch 'nope' has no finished runs in this store"),
    (["report", "nightly-1", "--baseline", "nope"],
     "error: batch 'nope' has no finished runs in this store"),
    (["report", "nightly-1", "--baseline", "nightly-1"],
     "error: batch 'nightly-1' cannot be its own baseline"),
])
def test_report_command_errors_are_one_line(simulated_store: Path, tmp_path: Path,
                                            args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*args, "--db", str(simulated_store),
                                      "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert not (tmp_path / "r.html").exists()


def test_report_command_on_a_missing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "b", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2
    assert re.fullmatch(r"error: .*none\.duckdb: no such database .*\n", result.stderr)
