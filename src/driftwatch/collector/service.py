"""The collector's parts, wired: store, ingest writer, run tracker, monitor engine, sinks,
metrics and the ASGI app. :class:`Collector` has no network code (see
:mod:`driftwatch.collector.server`), so tests drive the app in-process.

Span path: HTTP handler → decode → :class:`IngestQueue` (group commit to the store) →
acknowledgement; after the commit, the run tracker and the monitors get the same
records: an engine from the same builder (``build_engine``) as in-process runs, in a
process of their own by default (:class:`~driftwatch.collector.monitor_process.
MonitorProcess`: decoding and committing get one core, the monitors the other), or in
this process (``monitor_process=False``, or when ``monitors`` are given).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from prometheus_client import Counter

from driftwatch.alert import AlertConfig, build_sinks
from driftwatch.collector.app import CollectorApp, CollectorLimits
from driftwatch.collector.budget import bounded_for_monitors
from driftwatch.collector.closed_runs import RunGuard, closed_batches, closed_runs
from driftwatch.collector.identity import (
    Rekey,
    RunIdentity,
    rekey_findings,
    rekey_stored_run,
    without_runs,
)
from driftwatch.collector.ingest import IngestQueue
from driftwatch.collector.logs import LogJoin
from driftwatch.collector.metrics import CollectorMetrics
from driftwatch.collector.monitor_process import MonitorProcess
from driftwatch.collector.recovery import Resumed, replay_runs, resume_open_runs
from driftwatch.collector.runs import RunTracker
from driftwatch.collector.stream import FindingBroadcast
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.ids import DEFAULT_IDS, IdSource
from driftwatch.core.logging import get_logger
from driftwatch.core.protocols import FindingSink
from driftwatch.monitor import (
    EngineConfig,
    MonitorEngine,
    RulePack,
    build_engine,
    builtin_pack_paths,
    resolve_packs,
)
from driftwatch.monitor.base import Monitor
from driftwatch.monitor.engine.delivery import FindingDelivery
from driftwatch.store import Store
from driftwatch.store.span_batch import SpanBatch
from driftwatch.store.sql_worker import SqlWorker

__all__ = ["Collector", "CollectorConfig", "monitor_engine_config"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Everything ``driftwatch serve`` takes. ``packs`` empty means every built-in
    rule pack. A run ends after ``idle_timeout_s`` without spans, or ``root_grace_s``
    after its root span arrived. ``monitor_process`` runs the monitors in a child
    process (the default; False keeps them in this one)."""

    db: Path
    host: str = "127.0.0.1"
    port: int = 4318
    grpc_port: int | None = None  # OTLP/gRPC too (0: any free port); None: HTTP only
    token: str | None = None
    packs: tuple[str, ...] = ()
    alerts: AlertConfig = field(default_factory=lambda: AlertConfig(console=True))
    idle_timeout_s: float = 30.0
    root_grace_s: float = 2.0
    max_queue_spans: int = 65_536
    monitor_process: bool = True
    limits: CollectorLimits = field(default_factory=CollectorLimits)


def monitor_engine_config(config: CollectorConfig,
                          packs: Sequence[RulePack] | None = None) -> EngineConfig:
    """The collector's monitors: the configured rule packs (every built-in one when none
    is named; ``packs`` when given, already loaded) and the defaults, in an engine that
    lives as long as the collector. Raises ``UsageError`` for an unknown pack."""
    if packs is None:
        names: list[str | Path] = list(config.packs) or list(builtin_pack_paths())
        packs = resolve_packs(names)
    # Bigger micro-batches than in-process runs: one rule-pack query per batch is the
    # monitors' main cost, and a collector's backlog comes in large bursts.
    return EngineConfig(packs=tuple(packs), max_batch=4096, keep_findings=False,
                        stable_finding_ids=True, close_components=True)


class Collector:
    """Owns the store (the one writer of the DuckDB file) and everything that writes to
    it. ``monitors`` and ``sinks`` replace the defaults (tests, benchmarks); the stream
    broadcast and the Prometheus counters are always there. :meth:`close` commits what
    was accepted, ends open runs, then closes monitors, sinks and the store."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        monitors: Sequence[Monitor] | None = None,
        extra_sinks: Sequence[FindingSink] = (),
        ids: IdSource = DEFAULT_IDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        engine_config = None
        if monitors is None:
            engine_config = monitor_engine_config(config)
        self.store = Store(config.db)
        try:
            self.metrics = CollectorMetrics()
            self.broadcast = FindingBroadcast(config.limits.stream_max_lines)
            sinks = [
                *build_sinks(config.alerts, store=self.store, registry=self.metrics.registry,
                             clock=clock),
                *extra_sinks,
                self.broadcast,
            ]
            self.engine: MonitorEngine | MonitorProcess
            if engine_config is not None and config.monitor_process:
                delivery = FindingDelivery(self.store, sinks, clock, record_alerts=True)
                self.engine = MonitorProcess(
                    engine_config, delivery, max_in_flight=config.max_queue_spans,
                    max_in_flight_bytes=config.limits.monitor_inflight_bytes,
                    replay=self._open_run_spans, on_rekeyed=self._move_findings)
            else:
                self.engine = build_engine(engine_config or monitor_engine_config(config, ()),
                                           store=self.store, sinks=sinks, ids=ids,
                                           clock=clock, monitors=monitors)
            self.reassigned = Counter(
                "driftwatch_spans_reassigned", "Spans that claimed a run (or batch) closed "
                "to the collector, stored apart from it.", ["reason"],
                registry=self.metrics.registry)
            self.guard = RunGuard(closed_runs(self.store), on_reassigned=self._reassigned)
            self.identity = RunIdentity(is_closed=self.guard.is_closed)
            self.rekeyed = Counter(
                "driftwatch_runs_rekeyed", "Provisional runs (a trace's spans stored before "
                "its conversation key arrived) moved into their conversation's run.",
                registry=self.metrics.registry)
            self._rekeys: list[Rekey] = []
            self.runs = RunTracker(self.store, self._end_run,
                                   idle_timeout_s=config.idle_timeout_s,
                                   root_grace_s=config.root_grace_s, clock=clock,
                                   closed_batches=closed_batches(self.store),
                                   on_batch_claim=self._batch_claimed)
            # before any new span: the runs the last collector left open go on
            self.resumed: Resumed = resume_open_runs(self.store, self._resume)
            # OTLP log records; GenAI events joined to their spans (either order)
            self.logs = LogJoin(self.store)
            self.ingest = IngestQueue(self.store, on_committed=self._committed,
                                      prepare=self._prepare, enrich=self.logs.enrich,
                                      in_commit=self._in_commit,
                                      observe_commit=self.metrics.observe_commit,
                                      max_pending=config.max_queue_spans)
        except BaseException:
            engine = getattr(self, "engine", None)
            if engine is not None:
                engine.close()
            self.store.close()
            raise
        self.metrics.bind(lambda: self.ingest.pending, lambda: self.runs.open_runs,
                          lambda: self.engine.records_seen, lambda: self.broadcast.subscribers)
        self.app = CollectorApp(self.ingest, metrics=self.metrics, broadcast=self.broadcast,
                                query=self._query, token=config.token, limits=config.limits,
                                write_logs=self.logs.write)
        # user SQL in a process of its own, over a snapshot: it cannot starve ingest
        self._sql = SqlWorker(self.store, memory_bytes=config.limits.sql_memory_bytes,
                              max_result_bytes=config.limits.sql_max_result_bytes)
        self.runs.start()
        self._closed = False

    def _prepare(self, table: pa.Table) -> pa.Table:
        """Before the write: each span's run and turn (see :mod:`driftwatch.collector.
        identity`), then claims on closed runs moved apart."""
        return self.guard.prepare(self.identity.prepare(table))

    def _in_commit(self, table: pa.Table) -> None:
        """In the spans' transaction: provisional runs re-keyed into their conversation's
        run, and the ``running`` rows of the runs the spans open."""
        rekeys = self.identity.commit()
        for rekey in rekeys:
            rekey_stored_run(self.store, rekey)
        self._rekeys = rekeys
        rows = self.runs.new_run_rows(table)
        if rows:
            self.store.upsert_runs(rows)

    def _committed(self, table: pa.Table) -> None:
        """Spans stored for the first time (a retry of a stored span never gets here)."""
        rekeys, self._rekeys = self._rekeys, []
        for rekey in rekeys:
            self.runs.rename(rekey.old, rekey.new, rekey.turn_offset)
        self.guard.committed(table)
        self.logs.committed(table)
        self.runs.observe_table(table, rows_written=True)
        if rekeys:
            self._rekey_monitors(rekeys, table)
        else:
            self._monitor(table)

    def _rekey_monitors(self, rekeys: list[Rekey], table: pa.Table) -> None:
        """The monitors forget the re-keyed runs and evaluate the runs they joined again,
        from the store (their spans, this group's included, in commit order); the
        stored findings move first, with the ids the monitors will find them under."""
        self.rekeyed.inc(len(rekeys))
        for rekey in rekeys:
            log.info("run re-keyed: a trace's conversation key arrived after its first "
                     "spans", run_id=rekey.old, new_run_id=rekey.new)
            if isinstance(self.engine, MonitorProcess):
                self.engine.rekey(rekey.old, rekey.new, rekey.turn_offset)
            else:
                self.engine.discard_run([rekey.old, rekey.new],
                                        then=functools.partial(rekey_findings, self.store,
                                                               rekey))
        runs = list(dict.fromkeys(rekey.new for rekey in rekeys))
        replay_runs(self.store, runs, self._monitor)
        rest = without_runs(table, runs)
        if rest.num_rows:
            self._monitor(rest)

    def _move_findings(self, old: str, new: str, turn_offset: int) -> None:
        rekey_findings(self.store, Rekey(old, new, turn_offset))

    def _resume(self, table: pa.Table) -> None:
        self.identity.observe(table)
        self.runs.observe_table(table)  # rows for runs that have none at the next sweep
        self._monitor(table)

    def _monitor(self, table: pa.Table) -> None:
        table = bounded_for_monitors(table)  # the store has the full spans
        if isinstance(self.engine, MonitorProcess):
            self.engine.submit(table)
        else:
            self.engine.submit_batch(SpanBatch.from_table(table))

    def _open_run_spans(self) -> list[pa.Table]:
        """The stored spans of the open runs (a new monitor process rebuilds their
        state from them)."""
        tables: list[pa.Table] = []
        replay_runs(self.store, self.runs.open_run_ids(),
                    lambda table: tables.append(bounded_for_monitors(table)))
        return tables

    def _reassigned(self, claimed_run_id: str, spans: int) -> None:
        self.reassigned.labels(reason="closed_run").inc(spans)

    def _batch_claimed(self, run_id: str, batch_id: str) -> None:
        log.warning("a run claimed a batch closed to the collector; its row has no "
                    "batch_id", run_id=run_id, claimed_batch_id=batch_id)
        self.reassigned.labels(reason="closed_batch").inc()

    def _end_run(self, run_id: str) -> bool:
        """The monitors' ``end_run``; False when it did not finish (the run tracker then
        marks the run ``interrupted``, so the next start evaluates it again)."""
        if isinstance(self.engine, MonitorProcess):
            return self.engine.end_run(run_id, timeout_s=60.0)
        self.engine.end_run(run_id, timeout_s=60.0)
        return True

    def _query(self, sql: str, timeout_s: float, max_rows: int,
               params: list[Any] | None = None) -> tuple[list[str], list[Any], bool]:
        result = self._sql.query(sql, timeout_s, max_rows, params)
        return list(result.columns), list(result.rows), bool(result.truncated)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until the monitors have seen every committed span (tests)."""
        return self.engine.flush(timeout_s)

    def close(self) -> None:
        """Stop in pipeline order; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.app.stopping = True
        try:
            self._sql.close()
            self.ingest.close()
            self.runs.close()
            self.engine.close()
        finally:
            self.store.close()
