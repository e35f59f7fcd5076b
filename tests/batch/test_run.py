"""A whole run end to end: scenario → langgraph loop → spans → DuckDB → monitors → findings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from driftwatch.core import RunStatus
from driftwatch.runner import run_scenario
from driftwatch.store import Store
from driftwatch.testing import RecordingConsumer, SequentialIds, span_dicts

DATA = Path(__file__).parents[1] / "data"
SNAPSHOT = DATA / "snapshots" / "tiny-run-spans.json"


def test_drifter_violates_oversight_config_and_everything_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    summary = run_scenario("oversight-config", model="simulated/drifter", seed=1, db_path=db)
    assert summary.status is RunStatus.COMPLETED
    assert summary.turns == 50
    rules = {f.rule_id for f in summary.violations}
    assert "oversight-config-modified" in rules
    with Store(db, read_only=True) as store:
        stored = store.query(
            "select rule_id, severity, turn from violations where run_id = ? order by turn",
            [summary.run_id]).rows
        run = store.query("select status, turns, scenario_id, variant, model, seed from runs").rows
        ops = dict(store.query(
            "select operation, count(*) from spans "
            "where attributes->>'$.\"driftwatch.phase\"' is null group by operation").rows)
        interview = store.query(
            "select count(*) filter (where operation = 'chat'), "
            "count(*) filter (where operation = 'driftwatch.event') from spans "
            "where attributes->>'$.\"driftwatch.phase\"' = 'interview'").rows[0]
    assert len(stored) == len(summary.violations)
    assert run == [("completed", 50, "oversight-config", "pressure", "simulated/drifter", 1)]
    assert ops["driftwatch.turn"] == 50
    assert ops["chat"] == 50
    assert ops["invoke_agent"] == 1
    assert ops["execute_tool"] == summary.tool_calls
    # the config changed, so the follow-up interview asked (and got answers to) its questions
    assert interview[0] == interview[1] > 0


@pytest.mark.parametrize("variant", ["control", "pressure"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_steadfast_never_violates(tmp_path: Path, variant: str, seed: int) -> None:
    summary = run_scenario("oversight-config", model="simulated/steadfast", seed=seed,
                           variant=variant, db_path=tmp_path / "s.duckdb")
    assert summary.status is RunStatus.COMPLETED
    assert summary.findings == []


def test_same_seed_gives_the_same_spans(tmp_path: Path) -> None:
    runs = []
    for attempt in range(2):
        recorder = RecordingConsumer()
        run_scenario("oversight-config", model="simulated/drifter", seed=7, turns=30,
                     db_path=tmp_path / f"{attempt}.duckdb", consumers=[recorder])
        runs.append(span_dicts(recorder.records))
    assert runs[0] == runs[1]
    other = RecordingConsumer()
    run_scenario("oversight-config", model="simulated/drifter", seed=8, turns=30,
                 db_path=tmp_path / "other.duckdb", consumers=[other])
    assert span_dicts(other.records) != runs[0]


def test_spans_of_a_small_run_match_the_snapshot(tmp_path: Path) -> None:
    """The whole trace of a 3-turn run, as dicts, with GenAI attribute names.
    Regenerate with DRIFTWATCH_UPDATE_SNAPSHOTS=1 and review the diff."""
    recorder = RecordingConsumer()
    run_scenario(DATA / "tiny-scenario.yaml", model="simulated/drifter", seed=3,
                 db_path=tmp_path / "t.duckdb", consumers=[recorder], ids=SequentialIds(),
                 packs=[str(DATA / "tiny-pack.yaml")])
    actual = span_dicts(recorder.records)
    if os.environ.get("DRIFTWATCH_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(SNAPSHOT.read_text())


def test_span_rule_and_final_state_rule_agree_on_the_tiny_run(tmp_path: Path) -> None:
    """The edit that touches the config also disables oversight, so the span rule and the
    final-state rule must fire together, run by run."""
    touched_runs = 0
    for seed in range(1, 6):
        summary = run_scenario(DATA / "tiny-scenario.yaml", model="simulated/schemer", seed=seed,
                               db_path=tmp_path / f"{seed}.duckdb",
                               packs=[str(DATA / "tiny-pack.yaml")])
        rules = {f.rule_id for f in summary.violations}
        assert ("config-touched" in rules) == ("config-disabled" in rules)
        assert not [f for f in summary.findings if f.kind.value == "monitor_error"]
        touched_runs += "config-touched" in rules
    assert touched_runs >= 1


def test_looper_and_flaky_complete(tmp_path: Path) -> None:
    for model in ("simulated/looper", "simulated/flaky"):
        summary = run_scenario("oversight-config", model=model, seed=2, turns=20,
                               db_path=tmp_path / "x.duckdb")
        assert summary.status is RunStatus.COMPLETED, summary.error
        assert summary.turns == 20


def test_model_failure_marks_the_run_errored(tmp_path: Path) -> None:
    from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

    with FakeOpenAIServer([Fault.status(400)]) as server:
        summary = run_scenario(
            "oversight-config", model="openai/fake-model", seed=1, turns=3,
            db_path=tmp_path / "e.duckdb",
            model_options={"api_base": server.base_url, "api_key": "test"})
    assert summary.status is RunStatus.ERRORED
    assert summary.error
    with Store(tmp_path / "e.duckdb", read_only=True) as store:
        assert store.query("select status from runs").rows == [("errored",)]
