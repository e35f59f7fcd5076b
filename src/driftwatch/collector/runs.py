"""Runs of agents that are not ours: a ``runs`` row per run id, and a signal for its end.

A run is what :class:`~driftwatch.core.records.SpanRecord` says (``driftwatch.run.id``,
else ``gen_ai.conversation.id``, else the trace). Nothing on the wire says "this run is
over", so a run ends when it has been idle for ``idle_timeout_s``, or — sooner — when a
root span (no parent) of it has arrived and ``root_grace_s`` passed without more spans
(exporters send a trace's children before the root, which ends last). Ending a run calls
the monitors' ``end_run`` (through ``end_run``) and marks the row ``completed`` (or
``errored`` when the root span's status is ERROR). Spans that arrive for an ended run
open it again.

A run's ``running`` row is written in the same transaction as its first spans (the
collector calls :meth:`RunTracker.new_run_rows` inside the commit), so after a crash
every run with spans has a row, and every run whose monitoring was cut short says
``running``. When the collector stops, runs whose root span has arrived are ended; the
others are marked ``interrupted``, as is a run whose ``end_run`` did not finish: the
next start evaluates such runs again from their stored spans and they go on (see
:mod:`driftwatch.collector.recovery`).

``observe`` is called on the ingest writer thread after each commit and only notes
things in memory; the sweeper thread writes the rows (new runs not written at commit,
then ended runs, each group in one statement) and ends runs (several at once:
``end_run`` waits for the monitor engine, and a busy collector ends hundreds of runs a
second).

A run id claimed by spans may name a batch the collector did not write (``closed_batches``:
the ``batches`` the batch runner or an import wrote): the row then gets no ``batch_id``
(it would join that batch's outcomes, the regression gate's input) and keeps the claim
as ``attributes.claimed_batch_id``.
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

__all__ = ["CLAIMED_RUN_ATTRIBUTE", "OTLP_SOURCE", "RunStore", "RunTracker"]

OTLP_SOURCE = "otlp"  # runs.attributes.source of the rows the collector writes
# Set by the run guard on a span that claimed a run closed to the collector (the span is
# stored in a run of its own trace; this keeps the claim visible).
CLAIMED_RUN_ATTRIBUTE = "driftwatch.collector.claimed_run_id"

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
        closed_batches: frozenset[str] = frozenset(),
        on_batch_claim: Callable[[str, str], None] | None = None,
    ) -> None:
        self._store = store
        self._closed_batches = closed_batches
        self._on_batch_claim = on_batch_claim
        self._end_run = end_run
        self.idle_timeout_s = idle_timeout_s
        self.root_grace_s = root_grace_s
        self._sweep_every_s = sweep_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, _OpenRun] = {}
        self._created: list[RunInfo] = []
        self._renamed: set[str] = set()  # re-keyed while their end was under way
        self._concurrent_ends = concurrent_ends
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sweep_loop, name="driftwatch-runs",
                                        daemon=True)
        self.ended = 0
        self.interrupted = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def open_runs(self) -> int:
        with self._lock:
            return len(self._open)

    def open_run_ids(self) -> list[str]:
        with self._lock:
            return list(self._open)

    def rename(self, old: str, new: str, turn_offset: int = 0) -> None:
        """A provisional run re-keyed into ``new`` (see :mod:`driftwatch.collector.
        identity`): its open state moves there (merged when ``new`` is open too)."""
        with self._lock:
            self._created = [replace(info, run_id=new) if info.run_id == old else info
                             for info in self._created]
            run = self._open.pop(old, None)
            if run is None:
                if len(self._renamed) > 10_000:  # ends long past: nothing to guard
                    self._renamed.clear()
                self._renamed.add(old)  # if it is ending now, its row must not come back
                return
            target = self._open.get(new)
            if target is None:
                run.info = replace(run.info, run_id=new)
                run.turns += turn_offset if run.turns else 0
                self._open[new] = run
                return
            target.spans += run.spans
            target.turns = max(target.turns, run.turns + turn_offset)
            target.model = target.model or run.model
            target.error = target.error or run.error
            target.root_seen = target.root_seen or run.root_seen
            target.last_seen = max(target.last_seen, run.last_seen)

    def observe(self, records: Sequence[SpanRecord]) -> None:
        """Note committed spans (new runs get a ``running`` row at the next sweep)."""
        self._observe(
            [r.run_id for r in records], [r.turn for r in records], [r.model for r in records],
            [r.parent_span_id for r in records], [r.status_code for r in records],
            [r.status_message for r in records], lambda index: self._new_run(records[index]),
        )

    def observe_table(self, table: pa.Table, *, rows_written: bool = False) -> None:
        """:meth:`observe` for committed spans as an Arrow table (``SPAN_SCHEMA``, with
        or without the exact time columns): only each run's first row in it becomes a
        record (for the run's ``running`` row, if the run is new). ``rows_written``:
        the new runs' rows were written with the spans (:meth:`new_run_rows`)."""

        def column(name: str) -> list[Any]:
            return column_values(table.column(name))

        run_ids = column("run_id")
        # a run is new at its first row here or not at all (the lock is held throughout
        # _observe): each run's first row, as records in one go
        firsts = _first_rows(run_ids)
        at = list(firsts.values())
        first_records = dict(zip(at, records_from_arrow(table.take(pa.array(at, pa.int64()))),
                                 strict=True))

        def new_run(index: int) -> RunInfo:
            return self._new_run(first_records[index])

        self._observe(run_ids, column("turn"), column("model"), column("parent_span_id"),
                      column("status_code"), column("status_message"), new_run,
                      rows_written=rows_written)

    def new_run_rows(self, table: pa.Table) -> list[RunInfo]:
        """The ``running`` rows of the runs in ``table`` that are not open (new, or ended
        and opened again), from each one's first span; writes nothing, remembers
        nothing. The writer thread stores them in the transaction of the spans."""
        run_ids = column_values(table.column("run_id"))
        with self._lock:
            firsts = {run_id: index for run_id, index in _first_rows(run_ids).items()
                      if run_id not in self._open}
        if not firsts:
            return []
        at = list(firsts.values())
        return [self._new_run(record, note=False)
                for record in records_from_arrow(table.take(pa.array(at, pa.int64())))]

    def _observe(self, run_ids: Sequence[str], turns: Sequence[int | None],
                 models: Sequence[str | None], parents: Sequence[str | None],
                 statuses: Sequence[str], messages: Sequence[str | None],
                 new_run: Callable[[int], RunInfo], *, rows_written: bool = False) -> None:
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
                    if not rows_written:
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
        """Stop the sweeper; end the open runs whose root span has arrived (they are
        over), mark the others ``interrupted`` (their agents may still be running: the
        next start resumes them)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            created, self._created = self._created, []
            open_runs = list(self._open.items())
            self._open.clear()
        self._upsert(created)
        self._finish([item for item in open_runs if item[1].root_seen])
        self._interrupt([item for item in open_runs if not item[1].root_seen])

    def _finish(self, ending: list[tuple[str, _OpenRun]]) -> None:
        if not ending:
            return
        if len(ending) == 1:
            ended = [self._end_one(ending[0][0])]
        else:
            workers = min(self._concurrent_ends, len(ending))
            with ThreadPoolExecutor(workers, thread_name_prefix="driftwatch-end-run") as pool:
                ended = list(pool.map(self._end_one, [run_id for run_id, _ in ending]))
        ended_at = self._clock.now()
        rows = []
        cut_short = []
        with self._lock:
            renamed = {run_id for run_id, _ in ending if run_id in self._renamed}
            self._renamed -= renamed
        for (run_id, run), done in zip(ending, ended, strict=True):
            if run_id in renamed:
                continue
            if not done:  # its end_run findings may be missing: evaluate it again later
                cut_short.append((run.info.run_id, run))
                continue
            status = RunStatus.COMPLETED if run.error is None else RunStatus.ERRORED
            rows.append(self._row(run, status, ended_at))
        self._upsert(rows)
        self.ended += len(rows)
        if cut_short:
            log.warning("end_run did not finish; runs marked interrupted", runs=len(cut_short))
            self._interrupt(cut_short)

    def _interrupt(self, runs: list[tuple[str, _OpenRun]]) -> None:
        if not runs:
            return
        self._upsert([self._row(run, RunStatus.INTERRUPTED, None) for _, run in runs])
        self.interrupted += len(runs)

    def _row(self, run: _OpenRun, status: RunStatus, ended_at: Any) -> RunInfo:
        attributes = {**run.info.attributes, "spans": run.spans}
        return replace(run.info, status=status, error=run.error, turns=run.turns,
                       model=run.model, ended_at=ended_at, attributes=attributes)

    def _end_one(self, run_id: str) -> bool:
        """The monitors' ``end_run``; False when it failed or did not finish (an
        ``end_run`` callback returning False says so)."""
        try:
            return self._end_run(run_id) is not False
        except Exception:
            log.exception("end_run failed", run_id=run_id)
            return False

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

    def _new_run(self, record: SpanRecord, *, note: bool = True) -> RunInfo:
        """The run's first row; a claim on a closed batch is dropped (and, when the run
        opens — ``note`` — reported to ``on_batch_claim``)."""
        info = _new_run(record)
        if info.batch_id is None or info.batch_id not in self._closed_batches:
            return info
        if note and self._on_batch_claim is not None:
            self._on_batch_claim(info.run_id, info.batch_id)
        return replace(info, batch_id=None,
                       attributes={**info.attributes, "claimed_batch_id": info.batch_id})


def _first_rows(run_ids: Sequence[str]) -> dict[str, int]:
    firsts: dict[str, int] = {}
    for index, run_id in enumerate(run_ids):
        firsts.setdefault(run_id, index)
    return firsts


def _new_run(record: SpanRecord) -> RunInfo:
    attributes = record.attributes
    seed = attributes.get(sc.DW_SEED)
    service = record.resource.get("service.name")
    claimed = attributes.get(CLAIMED_RUN_ATTRIBUTE)
    extra: dict[str, Any] = {"service": service} if service else {}
    if isinstance(claimed, str):
        extra["claimed_run_id"] = claimed
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
        attributes={"source": OTLP_SOURCE, **extra},
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
