"""Store imported runs: skip the ones already stored, run the monitors over the rest,
then write spans, runs, batches and findings in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftwatch.core.importer import ImportedRun
from driftwatch.core.records import Finding

if TYPE_CHECKING:
    from driftwatch.monitor.rules.pack import RulePack
    from driftwatch.store.span_batch import SpanBatch

# function-level imports: the monitors and the store (duckdb, pyarrow) load when runs are
# monitored or stored, not whenever an importer module is (format detection, replay)

__all__ = ["ImportSummary", "monitor_runs", "store_runs"]


@dataclass
class ImportSummary:
    source: str
    path: str
    runs: int
    imported: int
    skipped: int
    spans: int
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        violations = [f for f in self.findings if f.kind.value == "violation"]
        return {"source": self.source, "path": self.path, "runs": self.runs,
                "imported": self.imported, "skipped": self.skipped, "spans": self.spans,
                "findings": len(self.findings), "violations": len(violations),
                "flagged_runs": len({f.run_id for f in violations})}


def monitor_runs(runs: Sequence[ImportedRun], packs: Sequence[str | RulePack]) -> list[Finding]:
    """The default monitors plus ``packs`` (ids, paths or loaded packs) over each run's
    spans in stream order, as :func:`driftwatch.runner.run.run_scenario` runs them live
    (the run ends without a final environment state: recorded runs have none)."""
    from driftwatch.store.span_batch import SpanBatch

    return _monitor([SpanBatch.from_records(run.spans) for run in runs], runs, packs)


def _monitor(batches: Sequence[SpanBatch], runs: Sequence[ImportedRun],
             packs: Sequence[str | RulePack]) -> list[Finding]:
    """:func:`monitor_runs` over each run's spans as a batch (the rule packs build the
    batch's table, which the store then writes without converting again)."""
    from driftwatch.monitor import EngineConfig, build_engine

    with build_engine(EngineConfig(packs=tuple(packs), close_components=True)) as engine:
        for batch, run in zip(batches, runs, strict=True):
            engine.submit_batch(batch)
            engine.end_run(run.info.run_id, None, timeout_s=None)
        return engine.findings()


def store_runs(runs: Sequence[ImportedRun], *, source: str, path: Path, db_path: str | Path,
               packs: Sequence[str] = ()) -> ImportSummary:
    """Import ``runs`` (already validated) into ``db_path``. Runs whose id is stored
    already are skipped, so importing a file twice stores nothing twice."""
    from driftwatch.monitor import resolve_packs
    from driftwatch.store import Store
    from driftwatch.store.span_batch import SpanBatch

    loaded = resolve_packs(packs) if packs else []  # unknown: fails before the store is touched
    with Store(db_path) as store:
        ids = [run.info.run_id for run in runs]
        stored = {row[0] for row in store.query(
            "select run_id from runs where list_contains(?, run_id)", [ids]).rows}
        new = [run for run in runs if run.info.run_id not in stored]
        batches = [SpanBatch.from_records(run.spans) for run in new]
        findings = _monitor(batches, new, loaded) if new else []
        with store.transaction():
            _write_batches(store, new, source, path)
            store.write_span_batch(SpanBatch.concat(batches))
            for run in new:
                store.upsert_run(run.info)
            store.write_findings(findings)
    return ImportSummary(source=source, path=str(path), runs=len(runs), imported=len(new),
                         skipped=len(runs) - len(new),
                         spans=sum(len(run.spans) for run in new), findings=findings)


def _write_batches(store: Any, runs: Sequence[ImportedRun], source: str, path: Path) -> None:
    by_batch: dict[str, list[ImportedRun]] = {}
    for run in runs:
        by_batch.setdefault(run.info.batch_id or f"import-{source}-{path.stem}", []).append(run)
    for batch_id, members in by_batch.items():
        ended = [r.info.ended_at for r in members if r.info.ended_at is not None]
        store.upsert_batch(batch_id, f"{source} {path.name}", "completed",
                           min(r.info.started_at for r in members),
                           max(ended) if ended else None,
                           config={"source": source, "path": str(path)})
