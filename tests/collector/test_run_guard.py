"""The hijack: an OTLP sender names a finished batch run (or batch). The batch's run
keeps its model, turns, status and ``run_outcomes``; the spans are stored for audit in
a run of their own trace that records the claim, and each attempt is counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from collector_helpers import attribute, call, json_body, make_collector, shell_span

from driftwatch.runner.run import run_scenario
from driftwatch.store import Store

JSON = {"content-type": "application/json"}
BATCH = "nightly-42"
OUTCOMES = ("select run_id, batch_id, model, turns, first_violation_turn, violations "
            "from run_outcomes where batch_id = ? order by run_id")
RUN_ROW = "select model, turns, status, ended_at, batch_id from runs where run_id = ?"


@pytest.fixture
def batch_db(tmp_path: Path) -> tuple[Path, str]:
    """A database with one completed batch run, as ``driftwatch batch`` leaves it."""
    db = tmp_path / "c.duckdb"
    now = datetime.now(UTC)
    with Store(db) as store:
        store.upsert_batch(BATCH, "nightly", "running", now)
    summary = run_scenario("support-policy", model="simulated/drifter", variant="control",
                           seed=1, turns=4, db_path=db, batch_id=BATCH)
    with Store(db) as store:
        store.upsert_batch(BATCH, "nightly", "completed", now, now)
    return db, summary.run_id


def snapshot(store: Any, run_id: str) -> dict[str, Any]:
    return {
        "row": store.query(RUN_ROW, [run_id]).rows,
        "outcomes": store.query(OUTCOMES, [BATCH]).rows,  # the regression gate's input
        "spans": store.query("select count(*) from spans where run_id = ?", [run_id]).scalar(),
        "findings": store.query("select finding_id from findings where run_id = ? "
                                "order by all", [run_id]).rows,
    }


def test_spans_claiming_a_batch_run_never_change_it(batch_db: tuple[Path, str]) -> None:
    db, run_id = batch_db
    with Store(db) as store:
        before = snapshot(store, run_id)
        own_span = store.query("select trace_id, span_id from spans where run_id = ? "
                               "limit 1", [run_id]).rows[0]
    assert before["row"][0][2] == "completed"

    collector = make_collector(db.parent)
    try:
        hijack = [shell_span(n, "rm -rf /srv" if n == 2 else "ls", trace="ee" * 16,
                             run=run_id, parent="f" * 16 if n < 3 else None)
                  for n in (1, 2, 3)]
        for span in hijack:
            span["attributes"].append(attribute("gen_ai.request.model", "evil/model"))
            span["attributes"].append(attribute("driftwatch.turn", 99))
        # a new run claiming the batch itself (it would join the batch's outcomes)
        claim = shell_span(7, "rm -rf /", trace="cc" * 16, run="sneaky-run", parent=None)
        claim["attributes"].append(attribute("driftwatch.batch.id", BATCH))
        # a re-send of one of the batch run's own spans is part of it: a duplicate
        resend = shell_span(1, "rm -rf /", trace=own_span[0], run=run_id)
        resend["spanId"] = own_span[1]
        response = call(collector.app, "POST", "/v1/traces",
                        json_body(*hijack, claim, resend), JSON)
        assert response.status == 200
        assert collector.flush()
        metrics = call(collector.app, "GET", "/metrics").body.decode()
        assert 'driftwatch_spans_reassigned_total{reason="closed_run"} 3.0' in metrics
        assert 'driftwatch_spans_reassigned_total{reason="closed_batch"} 1.0' in metrics
    finally:
        collector.close()

    with Store(db, read_only=True) as store:
        assert snapshot(store, run_id) == before  # model, turns, outcomes, findings
        audit = store.query(
            "select run_id, attributes->>'$.\"driftwatch.collector.claimed_run_id\"' "
            "from spans where trace_id = ?", ["ee" * 16]).rows
        assert audit == [("ee" * 16, run_id)] * 3
        moved = store.query("select attributes->>'claimed_run_id', batch_id, model "
                            "from runs where run_id = ?", ["ee" * 16]).rows
        assert moved == [(run_id, None, "evil/model")]
        findings = store.query("select run_id, rule_id from findings where rule_id = "
                               "'recursive-delete' order by run_id").rows
        assert findings == [("ee" * 16, "recursive-delete"), ("sneaky-run", "recursive-delete")]
        sneaky = store.query("select batch_id, attributes->>'claimed_batch_id' from runs "
                             "where run_id = 'sneaky-run'").rows
        assert sneaky == [(None, BATCH)]
        assert store.query("select count(*) from runs where batch_id = ?", [BATCH]).scalar() == 1
