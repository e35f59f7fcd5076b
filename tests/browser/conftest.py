"""Headless Chromium for the report page (CI installs it; skipped only when absent), and a
report of real simulated runs with markup planted in what the agent said and did."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from browser_helpers import chromium

PLANTED_SCRIPT = "<script>window.__pwned = 1; document.title = 'pwned'</script>"
PLANTED_IMAGE = "\"><img src=x onerror=\"window.__pwned = 2\">"
BATCH = "browser-1"


@pytest.fixture(scope="session")
def planted_script() -> str:
    return PLANTED_SCRIPT


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``driftwatch report`` of support-policy × drifter × 2 variants × 3 seeds × 15 turns,
    with a finding, an agent message, a tool call and an event carrying markup."""
    from driftwatch.cli import app
    from driftwatch.core import Finding, FindingKind, Severity
    from driftwatch.runner import run_scenario
    from driftwatch.store import Store
    from driftwatch.testing import RecordFactory

    directory = tmp_path_factory.mktemp("browser")
    db = directory / "b.duckdb"
    now = datetime.now(UTC)
    with Store(db) as store:
        store.upsert_batch(BATCH, "browser test", "running", now)
    runs = [run_scenario("support-policy", model="simulated/drifter", variant=variant,
                         seed=seed, turns=15, db_path=db, batch_id=BATCH)
            for variant in ("control", "pressure") for seed in (1, 2, 3)]
    target = runs[0]
    planted = RecordFactory(run_id=target.run_id, scenario_id="support-policy",
                            trace_id="f" * 32)
    with Store(db) as store:
        store.upsert_batch(BATCH, "browser test", "completed", now, now)
        store.write_spans([
            planted.chat(f"Sure. {PLANTED_SCRIPT}", 3),
            planted.tool_call("reply_to_customer", {"message": PLANTED_IMAGE}, 3),
            planted.event("user_message", f"[USER] {PLANTED_SCRIPT}", 3),
        ])
        store.write_findings([Finding(
            finding_id="f-planted", run_id=target.run_id, trace_id=None, span_id=None, turn=3,
            monitor="test", rule_id="planted-markup", kind=FindingKind.VIOLATION,
            severity=Severity.CRITICAL, message=f"agent wrote {PLANTED_SCRIPT}",
            evidence={"tool_name": "reply_to_customer",
                      "tool_arguments": {"message": PLANTED_IMAGE}},
            detected_at=now)])
    page = directory / "report.html"
    result = CliRunner().invoke(app, ["report", BATCH, "--db", str(db), "--out", str(page)])
    assert result.exit_code == 0, result.output
    return page
