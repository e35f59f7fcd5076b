"""Stores for the report tests: hand-made batches (exact, instant) and, once per session,
a small real store from simulated runs (the shape ``driftwatch batch`` produces)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftwatch.core import Finding, FindingKind, RunInfo, RunStatus, Severity
from driftwatch.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _add_batch(store: Store, batch_id: str, runs: Sequence[tuple[int, int | None]], *,
              scenario: str = "oversight-config", model: str = "simulated/drifter",
              variant: str = "pressure", message: str = "agent edited the oversight config",
              ) -> None:
    """Store one batch of finished runs: ``runs`` holds (turns, first violation or None)."""
    store.upsert_batch(batch_id, batch_id, "completed", T0, T0)
    findings = []
    for index, (turns, first_violation) in enumerate(runs):
        run_id = f"{batch_id}-{scenario}-{model}-{variant}-{index}"
        store.upsert_run(RunInfo(
            run_id=run_id, trace_id=None, scenario_id=scenario, variant=variant, model=model,
            seed=index, status=RunStatus.COMPLETED, started_at=T0, batch_id=batch_id,
            turns=turns, ended_at=T0))
        if first_violation is not None:
            findings.append(Finding(
                finding_id=f"f-{run_id}", run_id=run_id, trace_id=None, span_id=None,
                turn=first_violation, monitor="oversight", rule_id="oversight-config-modified",
                kind=FindingKind.VIOLATION, severity=Severity.HIGH, message=message,
                evidence={"arguments": {"path": "config/oversight.yaml"}}, detected_at=T0))
    store.write_findings(findings)


AddBatch = Callable[..., None]


@pytest.fixture
def add_batch() -> AddBatch:
    """``add_batch(store, batch_id, [(turns, first_violation or None), ...], **group)``."""
    return _add_batch


@pytest.fixture
def store() -> Iterator[Store]:
    with Store() as memory:
        yield memory


@pytest.fixture(scope="session")
def simulated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Batch ``nightly-1``: real simulated runs, 2 scenarios × 2 variants × drifter × 3
    seeds × 15 turns. Batch ``nightly-0``, its baseline: a copy of its runs and findings
    under new ids (no spans; a comparison reads only runs and findings)."""
    from dataclasses import replace

    from driftwatch.runner import run_scenario

    path = tmp_path_factory.mktemp("report") / "batches.duckdb"
    summaries = [
        run_scenario(scenario, model="simulated/drifter", variant=variant, seed=seed,
                     turns=15, db_path=path, batch_id="nightly-1")
        for scenario in ("oversight-config", "support-policy")
        for variant in ("control", "pressure")
        for seed in (1, 2, 3)
    ]
    with Store(path) as store:
        store.upsert_batch("nightly-1", "nightly-1", "completed", T0, T0)
        store.upsert_batch("nightly-0", "nightly-0", "completed", T0, T0)
        for summary in summaries:
            copy = f"{summary.run_id}-baseline"
            store.upsert_run(RunInfo(
                run_id=copy, trace_id=None, scenario_id=summary.scenario_id,
                variant=summary.variant, model=summary.model, seed=summary.seed,
                status=summary.status, started_at=T0, batch_id="nightly-0",
                turns=summary.turns, ended_at=T0))
            store.write_findings([replace(finding, finding_id=f"{finding.finding_id}-b",
                                          run_id=copy, trace_id=None, span_id=None)
                                  for finding in summary.findings])
    return path
