"""Runs of agents that are not ours: a ``runs`` row per run id, and a signal for its end.

A run is what :class:`~driftwatch.core.records.SpanRecord` says (``driftwatch.run.id``,
else ``gen_ai.conversation.id``, else the trace). Nothing on the wire says "this run is
over", so a run ends when it has been idle for ``idle_timeout_s``, or — sooner — when a
root span (no parent) of it has arrived and ``root_grace_s`` passed without more spans
(exporters send a trace's children before the root, which ends last). Ending a run calls
the monitors' ``end_run`` (through ``end_run``) and marks the row ``completed`` (or
``errored`` when the root span's status is ERROR). Spans that arrive for an ended run
open it again.

``observe`` is called on the ingest writer thread after each commit and only notes
things in memory; the sweeper thread writes the rows (new runs, then ended runs, each
group in one statement) and ends runs (several at once: ``end_run`` waits for the
monitor engine, and a busy collector ends hundreds of runs a second).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pyarrow as pa

from driftwatch.core import semconv as sc
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.logging import get_logger
from driftwatch.core.records import RunInfo, RunStatus, SpanRecord, ns_to_datetime
from driftwatch.store.arrow import column_values, records_from_arrow

__all__ = ["RunStore", "RunTracker"]

log = get_logger(__name__)


class RunStore(Protocol):
    def upsert_runs(self, infos: Sequence[RunInfo]) -> None: ...


@dataclass(slots=True)
class _OpenRun:
    """``info`` is the run as first seen (its ``running`` row); what later spans add is
    kept in the other fields and goes into the row written when the run ends."""

    info: RunInfo
    last_seen: float
    turns: int = 0
    model: str | None = None
    error: str | None = None  # the root span's, when its status is ERROR
    spans: int = 0
    root_seen: bool = False


class RunTracker:
    """Tracks open runs; thread-safe. ``end_run(run_id)`` runs on the sweeper thread."""

    def __init__(
        self,
        store: RunStore,
        end_run: Callable[[str], object],
        *,
        idle_timeout_s: float = 30.0,
        root_grace_s: float = 2.0,
        sweep_every_s: float = 0.25,
        concurrent_ends: int = 8,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
        self._end_run = end_run
        self.idle_timeout_s = idle_timeout_s
        self.root_grace_s = root_grace_s
        self._sweep_every_s = sweep_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, _OpenRun] = {}
        self._created: list[RunInfo] = []
        self._concurrent_ends = concurrent_ends
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sweep_loop, name="driftwatch-runs",
                                        daemon=True)
        self.ended = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def open_runs(self) -> int:
        with self._lock:
            return len(self._open)

    def observe(self, records: Sequence[SpanRecord]) -> None:
        """Note committed spans (new runs get a ``running`` row at the next sweep)."""
        self._observe(
            [r.run_id for r in records], [r.turn for r in records], [r.model for r in records],
            [r.parent_span_id for r in records], [r.status_code for r in records],
            [r.status_message for r in records], lambda index: _new_run(records[index]),
        )

    def observe_table(self, table: pa.Table) -> None:
        """:meth:`observe` for committed spans as an Arrow table (``SPAN_SCHEMA``, with
        or without the exact time columns): only each run's first row in it becomes a
        record (for the run's ``running`` row, if the run is new)."""

        def column(name: str) -> list[Any]:
            return column_values(table.column(name))

        run_ids = column("run_id")
        # a run is new at its first row here or not at all (the lock is held throughout
        # _observe): each run's first row, as records in one go
        firsts: dict[str, int] = {}
        for index, run_id in enumerate(run_ids):
            firsts.setdefault(run_id, index)
        at = list(firsts.values())
        first_records = dict(zip(at, records_from_arrow(table.take(pa.array(at, pa.int64()))),
                                 strict=True))

        def new_run(index: int) -> RunInfo:
            return _new_run(first_records[index])

        self._observe(run_ids, column("turn"), column("model"), column("parent_span_id"),
                      column("status_code"), column("status_message"), new_run)

    def _observe(self, run_ids: Sequence[str], turns: Sequence[int | None],
                 models: Sequence[str | None], parents: Sequence[str | None],
                 statuses: Sequence[str], messages: Sequence[str | None],
                 new_run: Callable[[int], RunInfo]) -> None:
        now = time.monotonic()
        with self._lock:
            created = self._created
            for index, run_id in enumerate(run_ids):
                run = self._open.get(run_id)
                if run is None:
                    info = new_run(index)
                    run = _OpenRun(info=info, last_seen=now, turns=info.turns,
                                   model=info.model)
                    self._open[run_id] = run
                    created.append(info)
                run.last_seen = now
                run.spans += 1
                turn = turns[index]
                if turn is not None and turn > run.turns:
                    run.turns = turn
                model = models[index]
                if model and run.model is None:
                    run.model = model
                if parents[index] is None:
                    run.root_seen = True
                    if statuses[index] == "ERROR":
                        run.error = messages[index] or "root span error"

    def sweep(self, now: float | None = None) -> list[str]:
        """Write new runs' rows, end the runs that are due; returns the ended ids."""
        now = time.monotonic() if now is None else now
        with self._lock:
            created, self._created = self._created, []
            due = [
                run_id
                for run_id, run in self._open.items()
                if now - run.last_seen >= (self.root_grace_s if run.root_seen
                                           else self.idle_timeout_s)
            ]
            ending = [(run_id, self._open.pop(run_id)) for run_id in due]
        self._upsert(created)
        self._finish(ending)
        return due

    def close(self) -> None:
        """Stop the sweeper and end every open run (their monitors' ``end_run``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            created, self._created = self._created, []
            ending = list(self._open.items())
            self._open.clear()
        self._upsert(created)
        self._finish(ending)

    def _finish(self, ending: list[tuple[str, _OpenRun]]) -> None:
        if not ending:
            return
        if len(ending) == 1:
            self._end_one(ending[0][0])
        else:
            workers = min(self._concurrent_ends, len(ending))
            with ThreadPoolExecutor(workers, thread_name_prefix="driftwatch-end-run") as pool:
                list(pool.map(self._end_one, [run_id for run_id, _ in ending]))
        ended_at = self._clock.now()
        rows = []
        for _, run in ending:
            status = RunStatus.COMPLETED if run.error is None else RunStatus.ERRORED
            attributes = {**run.info.attributes, "spans": run.spans}
            rows.append(replace(run.info, status=status, error=run.error, turns=run.turns,
                                model=run.model, ended_at=ended_at, attributes=attributes))
        self._upsert(rows)
        self.ended += len(ending)

    def _end_one(self, run_id: str) -> None:
        try:
            self._end_run(run_id)
        except Exception:
            log.exception("end_run failed", run_id=run_id)

    def _upsert(self, infos: list[RunInfo]) -> None:
        if not infos:
            return
        try:
            self._store.upsert_runs(infos)
        except Exception:
            log.exception("runs rows not written", runs=len(infos))

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self._sweep_every_s):
            try:
                self.sweep()
            except Exception:
                log.exception("run sweep failed")


def _new_run(record: SpanRecord) -> RunInfo:
    attributes = record.attributes
    seed = attributes.get(sc.DW_SEED)
    service = record.resource.get("service.name")
    return RunInfo(
        run_id=record.run_id,
        trace_id=record.trace_id,
        scenario_id=_text(attributes.get(sc.DW_SCENARIO_ID)),
        variant=_text(attributes.get(sc.DW_SCENARIO_VARIANT)),
        model=record.model,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        status=RunStatus.RUNNING,
        started_at=ns_to_datetime(record.start_time_ns),
        batch_id=_text(attributes.get(sc.DW_BATCH_ID)),
        turns=record.turn or 0,
        attributes={"source": "otlp", **({"service": service} if service else {})},
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
