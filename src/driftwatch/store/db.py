"""The store: one DuckDB database, written in Arrow batches, read through views.

DuckDB allows one writer process per file. The process holding a :class:`Store` open
read-write is the one that serves live SQL (see :mod:`driftwatch.store.safe_sql`);
other processes get a one-line :class:`StoreError` naming the path, never a corrupted
file.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from driftwatch.core.errors import StoreError
from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding, RunInfo, RunStatus, SpanRecord
from driftwatch.store.arrow import (
    FINDING_SCHEMA,
    SPAN_SCHEMA,
    column_values,
    findings_to_arrow,
    to_json,
)
from driftwatch.store.connection import MEMORY, first_line, normalize_path, open_connection
from driftwatch.store.migrations import apply_migrations
from driftwatch.store.result import QueryResult, result_from_arrow
from driftwatch.store.span_batch import SpanBatch

AlertRow = tuple[str, str | None, str, str, int, datetime | None, str | None]
"""(alert_id, finding_id, sink, status, attempts, sent_at, error)"""

_SPAN_COLUMNS: Final = ", ".join(SPAN_SCHEMA.names)
_FINDING_COLUMNS: Final = ", ".join(FINDING_SCHEMA.names)

# Idempotent batch insert. Measured on DuckDB 2.0 with bench/ingest.py
# --compare-strategies (200,000 realistic spans, temp-file db, DB time only, rows/s,
# batch 16,384; two runs on a shared 2-core machine, the second one under load):
#   PRIMARY KEY (trace_id, span_id) on spans_t + INSERT OR IGNORE     60.5k   36.7k
#   key table span_keys_t(md5 UHUGEINT PK), INSERT … RETURNING, then
#     only the new rows into spans_t (one statement, data-modifying CTE) 86.1k   43.8k
#   DISTINCT ON + ANTI JOIN against spans_t (no index)                 110.7k   42.4k
# The anti-join is fastest on a small table but scans every stored key per batch: with
# 1,000,000 spans already stored it fell to 7.7k rows/s (primary key: 27k) at batch 512.
# An index on the wide table sends every insert down DuckDB's slower indexed-append
# path, while an index on a 16-byte key alone costs ~2.6 µs/row. Hence the key table,
# which stays correct at any size. Two different spans would collide only if their md5
# did (p ≈ 2^-128 per pair). Duplicates within a batch are dropped before the insert.
_INSERT_SPANS: Final = f"""
WITH new_keys AS (
    INSERT OR IGNORE INTO span_keys_t (span_key)
    SELECT md5_number(trace_id || ':' || span_id) FROM _span_batch
    RETURNING span_key
)
INSERT INTO spans_t ({_SPAN_COLUMNS})
SELECT {", ".join("b." + name for name in SPAN_SCHEMA.names)}
FROM _span_batch b
SEMI JOIN new_keys n ON n.span_key = md5_number(b.trace_id || ':' || b.span_id)
"""
# The same statements, saying which rows were new (the collector monitors only spans
# stored for the first time, and alerts only findings stored for the first time: a
# client's retry or a replay after a crash changes nothing). Measured: fetching the
# returned keys adds ~1-2 ms to a 16,384-span batch that takes ~70 ms.
_INSERT_SPANS_RETURNING: Final = _INSERT_SPANS + "RETURNING trace_id, span_id"
_INSERT_FINDINGS: Final = (
    f"INSERT OR IGNORE INTO findings_t ({_FINDING_COLUMNS}) "
    f"SELECT {_FINDING_COLUMNS} FROM _finding_batch"
)
_INSERT_FINDINGS_RETURNING: Final = _INSERT_FINDINGS + " RETURNING finding_id"
# A finding found again (a replay, or a re-keyed run evaluated anew) keeps its row and
# its alerts but takes the new text: after a re-key its turn, and so its message, moved.
_REFRESH_FINDINGS: Final = """
UPDATE findings_t SET message = b.message, evidence = b.evidence
FROM _finding_batch b
WHERE findings_t.finding_id = b.finding_id
  AND findings_t.finding_id IN (SELECT unnest($ids))
  AND (findings_t.message IS DISTINCT FROM b.message
       OR findings_t.evidence::VARCHAR IS DISTINCT FROM b.evidence::VARCHAR)
"""
_UPSERT_RUN: Final = """
INSERT INTO runs_t (run_id, batch_id, trace_id, scenario_id, variant, model, seed, status,
                    turns, started_at, ended_at, error, attributes)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS JSON))
ON CONFLICT (run_id) DO UPDATE SET
    batch_id = coalesce(excluded.batch_id, runs_t.batch_id),
    trace_id = coalesce(excluded.trace_id, runs_t.trace_id),
    scenario_id = coalesce(excluded.scenario_id, runs_t.scenario_id),
    variant = coalesce(excluded.variant, runs_t.variant),
    model = coalesce(excluded.model, runs_t.model),
    seed = coalesce(excluded.seed, runs_t.seed),
    status = excluded.status,
    turns = excluded.turns,
    started_at = coalesce(runs_t.started_at, excluded.started_at),
    ended_at = excluded.ended_at,
    error = excluded.error,
    attributes = excluded.attributes
"""
_RUN_UPDATE: Final = _UPSERT_RUN[_UPSERT_RUN.index("ON CONFLICT"):]
_UPSERT_RUNS: Final = f"""
INSERT INTO runs_t (run_id, batch_id, trace_id, scenario_id, variant, model, seed, status,
                    turns, started_at, ended_at, error, attributes)
SELECT run_id, batch_id, trace_id, scenario_id, variant, model, seed, status, turns,
       started_at, ended_at, error, CAST(attributes AS JSON)
FROM _run_batch
{_RUN_UPDATE}"""
_RUN_SCHEMA: Final = pa.schema([
    ("run_id", pa.string()), ("batch_id", pa.string()), ("trace_id", pa.string()),
    ("scenario_id", pa.string()), ("variant", pa.string()), ("model", pa.string()),
    ("seed", pa.int64()), ("status", pa.string()), ("turns", pa.int32()),
    ("started_at", pa.timestamp("us", tz="UTC")), ("ended_at", pa.timestamp("us", tz="UTC")),
    ("error", pa.string()), ("attributes", pa.string()),
])
_UPSERT_BATCH: Final = """
INSERT INTO batches_t (batch_id, name, status, started_at, ended_at, config)
VALUES (?, ?, ?, ?, ?, CAST(? AS JSON))
ON CONFLICT (batch_id) DO UPDATE SET
    name = coalesce(excluded.name, batches_t.name),
    status = excluded.status,
    started_at = coalesce(batches_t.started_at, excluded.started_at),
    ended_at = excluded.ended_at,
    config = coalesce(excluded.config, batches_t.config)
"""
_UPSERT_ALERT: Final = """
INSERT INTO alerts_t (alert_id, finding_id, sink, status, attempts, sent_at, error)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (alert_id) DO UPDATE SET
    finding_id = excluded.finding_id,
    sink = excluded.sink,
    status = excluded.status,
    attempts = excluded.attempts,
    sent_at = excluded.sent_at,
    error = excluded.error
"""

_UPSERT_ALERTS: Final = (
    "INSERT INTO alerts_t (alert_id, finding_id, sink, status, attempts, sent_at, error)\n"
    "SELECT alert_id, finding_id, sink, status, attempts, sent_at, error FROM _alert_batch\n"
    + _UPSERT_ALERT[_UPSERT_ALERT.index("ON CONFLICT"):]
)
_ALERT_SCHEMA: Final = pa.schema([
    ("alert_id", pa.string()), ("finding_id", pa.string()), ("sink", pa.string()),
    ("status", pa.string()), ("attempts", pa.int32()),
    ("sent_at", pa.timestamp("us", tz="UTC")), ("error", pa.string()),
])

# DuckDB checkpoints when the WAL passes checkpoint_threshold (default 16 MB), on the
# committing thread, in the middle of a burst. Measured through StoreWriter (200,000
# spans, batch 16,384, two runs each, ±20% noise on a shared machine): 16 MB → 26k-36k
# spans/s, 256 MB → 50k-59k, 1 GB → 43k-53k. So bursts run up to 256 MB of WAL and
# StoreWriter checkpoints as soon as ingest goes idle. The price: after a crash
# mid-burst, the next open replays up to 256 MB of WAL (a few seconds).
_WRITER_SETTINGS: Final = {"checkpoint_threshold": "256MB"}


def _storable_spans(table: pa.Table, json_checked: bool) -> pa.Table:
    """``table`` as the spans insert takes it: ``SPAN_SCHEMA`` columns, the first copy of
    each span, JSON columns typed when they need no validation."""
    if table.schema != SPAN_SCHEMA:
        try:
            table = table.select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)
        except (KeyError, ValueError, pa.ArrowException) as error:
            raise StoreError(f"span table does not match SPAN_SCHEMA: {error}") from None
    table = _first_of_each_span(table)
    return _as_arrow_json(table) if json_checked else table


def _first_of_each_span(table: pa.Table) -> pa.Table:
    """Drop later copies of a (trace_id, span_id) within one batch (rare: a check in C,
    then a Python pass only when there is a duplicate)."""
    keys = pc.binary_join_element_wise(table["trace_id"], table["span_id"], ":")
    if pc.count_distinct(keys, mode="all").as_py() == table.num_rows:
        return table
    seen: set[str | None] = set()
    keep = []
    for key in keys.to_pylist():
        keep.append(key not in seen)
        seen.add(key)
    return table.filter(pa.array(keep, type=pa.bool_()))


def log_rollback_failure(path: str | Path, error: BaseException) -> None:
    """A failed ROLLBACK is logged, not raised: the original error is the one to see."""
    get_logger(__name__).error("rollback failed", path=str(path), error=first_line(error))


_JSON_COLUMNS: Final = ("attributes", "resource", "events")
_ARROW_JSON: Final = pa.json_(pa.string())


def _as_arrow_json(table: pa.Table) -> pa.Table:
    """Tag the JSON text columns with Arrow's JSON extension type (no copy): DuckDB then
    reads them as JSON without validating each document. Measured on 100,000 spans:
    inserting the three columns as text into JSON columns 300k rows/s, tagged 420k."""
    for name in _JSON_COLUMNS:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(index).cast(_ARROW_JSON))
    return table


# Stores open read-write in this process, by file: user SQL for such a file is served by
# the live store (DuckDB refuses a second, read-only handle on a file open here).
_LIVE: weakref.WeakValueDictionary[Path, Store] = weakref.WeakValueDictionary()
_LIVE_LOCK = threading.Lock()


def live_store(path: str | Path) -> Store | None:
    """The read-write :class:`Store` this process has open on ``path``, if any."""
    target = normalize_path(path)
    if not isinstance(target, Path):
        return None
    with _LIVE_LOCK:
        return _LIVE.get(target)


class Store:
    """One DuckDB database: private tables, public views, Arrow-batched writes.

    Thread-safe: writes are serialised by a lock (the span writer, the monitor worker and
    the main thread share one store); :meth:`query` runs on its own cursor, so reads do
    not wait for writes. Every method raises :class:`StoreError` (one line) on failure;
    none returns a DuckDB object.

    ``path`` is a file (parent directories are created) or ``":memory:"``. Read-write
    opening applies missing migrations; ``read_only=True`` applies none and fails with
    :class:`~driftwatch.core.errors.NotFoundError` when the file does not exist.
    The connection has external access disabled (see :mod:`driftwatch.store.connection`).
    """

    def __init__(self, path: str | Path = MEMORY, *, read_only: bool = False) -> None:
        self.path: str | Path = normalize_path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._connection: duckdb.DuckDBPyConnection | None = open_connection(
            self.path, read_only=read_only, settings=None if read_only else _WRITER_SETTINGS
        )
        if not read_only:
            try:
                apply_migrations(self._connection)
            except duckdb.Error as error:
                self._connection.close()
                raise StoreError(f"cannot migrate {self.path}: {first_line(error)}") from None
            if isinstance(self.path, Path):
                with _LIVE_LOCK:
                    _LIVE[self.path] = self

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"Store({str(self.path)!r}, {mode})"

    # --- writes ---------------------------------------------------------------------

    def write_spans(self, records: Sequence[SpanRecord]) -> int:
        """Insert spans in one Arrow statement; returns the number of rows newly stored.

        Idempotent on (trace_id, span_id): a span already stored, or repeated within
        ``records``, is stored once (the first copy wins).
        """
        return self.write_span_batch(SpanBatch.from_records(records))

    def write_span_batch(self, batch: SpanBatch) -> int:
        """:meth:`write_spans` for a :class:`SpanBatch`: its table (built at most once,
        shared with the monitors that read it) in one idempotent insert."""
        if not len(batch):
            return 0
        return self.write_span_table(batch.table, json_checked=True)

    def write_span_table(self, table: pa.Table, *, json_checked: bool = False) -> int:
        """Like :meth:`write_spans` for a table already in ``SPAN_SCHEMA`` (e.g. Arrow
        batches returned by remote workers). ``json_checked=True`` says the JSON columns
        came from :func:`records_to_arrow`, so DuckDB need not parse them again to
        validate them (saves ~1 µs per span); otherwise invalid JSON fails the batch."""
        if table.num_rows == 0:
            return 0
        return self._insert_arrow("_span_batch", _storable_spans(table, json_checked),
                                  _INSERT_SPANS)

    def write_new_span_table(self, table: pa.Table, *, json_checked: bool = False) -> pa.Table:
        """:meth:`write_span_table`, returning the rows of ``table`` (all its columns,
        extra ones included) that were stored now: not a span already stored, nor a
        later copy of one within ``table``."""
        if table.num_rows == 0:
            return table
        unique = _storable_spans(table, json_checked)
        new_keys = self._insert_returning("_span_batch", unique, _INSERT_SPANS_RETURNING)
        if len(new_keys) == table.num_rows:
            return table
        keep = [False] * table.num_rows
        wanted = set(new_keys)
        for index, key in enumerate(zip(column_values(table.column("trace_id")),
                                        column_values(table.column("span_id")), strict=True)):
            if key in wanted:
                keep[index] = True
                wanted.discard(key)  # a later copy in the same batch is not new
        return table.filter(pa.array(keep, type=pa.bool_()))

    def write_new_findings(self, findings: Sequence[Finding]) -> set[str]:
        """:meth:`write_findings`, returning the ids stored now (not stored before)."""
        if not findings:
            return set()
        table = findings_to_arrow(findings)
        rows = self._insert_returning("_finding_batch", table, _INSERT_FINDINGS_RETURNING)
        new = {str(row[0]) for row in rows}
        old = [item.finding_id for item in findings if item.finding_id not in new]
        if old:
            with self._lock:
                connection = self._require()
                try:
                    connection.register("_finding_batch", table)
                    try:
                        connection.execute(_REFRESH_FINDINGS, {"ids": old})
                    finally:
                        connection.unregister("_finding_batch")
                except duckdb.Error as error:
                    raise StoreError(f"writing to {self.path}: {first_line(error)}") from None
        return new

    def alerted(self, finding_ids: Sequence[str]) -> set[tuple[str, str]]:
        """``(finding_id, sink)`` for every ``alerts`` row of these findings."""
        if not finding_ids:
            return set()
        rows = self.query("SELECT finding_id, sink FROM alerts_t WHERE finding_id IN "
                          "(SELECT unnest($ids))", {"ids": list(finding_ids)}).rows
        return {(str(finding), str(sink)) for finding, sink in rows}

    def write_findings(self, findings: Sequence[Finding]) -> int:
        """Insert findings in one Arrow statement, idempotent on ``finding_id``; returns
        the number of rows newly stored."""
        if not findings:
            return 0
        return self._insert_arrow("_finding_batch", findings_to_arrow(findings), _INSERT_FINDINGS)

    def upsert_run(self, info: RunInfo) -> None:
        """Insert the run or update it by ``run_id``. Identity columns (batch, trace,
        scenario, variant, model, seed) keep their stored value when the new one is None;
        ``started_at`` keeps the first value; the rest take the new values."""
        self._execute(
            _UPSERT_RUN,
            [
                info.run_id,
                info.batch_id,
                info.trace_id,
                info.scenario_id,
                info.variant,
                info.model,
                info.seed,
                RunStatus(info.status).value,
                info.turns,
                info.started_at,
                info.ended_at,
                info.error,
                to_json(info.attributes),
            ],
        )

    def upsert_runs(self, infos: Sequence[RunInfo]) -> None:
        """:meth:`upsert_run` for many runs in one Arrow statement (the collector sees
        hundreds of runs a second). When a run id repeats, the last info wins."""
        latest = list({info.run_id: info for info in infos}.values())
        if not latest:
            return
        table = pa.Table.from_pydict(
            {
                "run_id": [i.run_id for i in latest],
                "batch_id": [i.batch_id for i in latest],
                "trace_id": [i.trace_id for i in latest],
                "scenario_id": [i.scenario_id for i in latest],
                "variant": [i.variant for i in latest],
                "model": [i.model for i in latest],
                "seed": [i.seed for i in latest],
                "status": [RunStatus(i.status).value for i in latest],
                "turns": [i.turns for i in latest],
                "started_at": [i.started_at for i in latest],
                "ended_at": [i.ended_at for i in latest],
                "error": [i.error for i in latest],
                "attributes": [to_json(i.attributes) for i in latest],
            },
            schema=_RUN_SCHEMA,
        )
        self._insert_arrow("_run_batch", table, _UPSERT_RUNS)

    def upsert_batch(
        self,
        batch_id: str,
        name: str | None,
        status: str,
        started_at: datetime,
        ended_at: datetime | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert the batch or update it by ``batch_id`` (``config`` kept when None)."""
        config_json = None if config is None else to_json(dict(config))
        self._execute(_UPSERT_BATCH, [batch_id, name, status, started_at, ended_at, config_json])

    def record_alert(
        self,
        alert_id: str,
        finding_id: str | None,
        sink: str,
        status: str,
        attempts: int,
        sent_at: datetime | None,
        error: str | None = None,
    ) -> None:
        """Insert the alert delivery record or update it by ``alert_id``."""
        self._execute(_UPSERT_ALERT, [alert_id, finding_id, sink, status, attempts, sent_at, error])

    def record_alerts(self, rows: Sequence[AlertRow]) -> None:
        """:meth:`record_alert` for many rows in one Arrow statement (a single-row upsert
        costs ~20 ms; sinks and the engine record alerts in batches). Rows are tuples
        ``(alert_id, finding_id, sink, status, attempts, sent_at, error)``; when an
        ``alert_id`` repeats, the last row wins."""
        latest = list({row[0]: row for row in rows}.values())
        if not latest:
            return
        columns = list(zip(*latest, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(list(column), type=field.type)
             for column, field in zip(columns, _ALERT_SCHEMA, strict=True)],
            schema=_ALERT_SCHEMA,
        )
        self._insert_arrow("_alert_batch", table, _UPSERT_ALERTS)

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> None:
        """Run one trusted write statement (driftwatch's own SQL, e.g. the batch ledger's
        or the collector's re-keying of a run); never user SQL."""
        self._execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes made inside commit together or not at all: a batch cell's spans,
        findings, run row and status, so a kill -9 leaves either all of them or none.
        Holds the write lock throughout (other writers in this process wait)."""
        with self._lock:
            connection = self._require()
            try:
                connection.execute("BEGIN TRANSACTION")
            except duckdb.Error as error:
                raise StoreError(f"writing to {self.path}: {first_line(error)}") from None
            try:
                yield
            except BaseException:
                try:
                    connection.execute("ROLLBACK")
                except duckdb.Error as error:
                    log_rollback_failure(self.path, error)
                raise
            try:
                connection.execute("COMMIT")
            except duckdb.Error as error:
                try:
                    connection.execute("ROLLBACK")
                except duckdb.Error as rollback_error:
                    log_rollback_failure(self.path, rollback_error)
                raise StoreError(f"writing to {self.path}: {first_line(error)}") from None

    def checkpoint(self) -> None:
        """Fold the WAL into the database file now (cheap when there is nothing to do).
        The span writer calls it when ingest goes idle."""
        with self._lock:
            connection = self._require()
            try:
                connection.execute("CHECKPOINT")
            except duckdb.Error as error:
                raise StoreError(f"checkpoint of {self.path}: {first_line(error)}") from None

    # --- reads ----------------------------------------------------------------------

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> QueryResult:
        """Run trusted SQL (driftwatch's own) on a fresh cursor and return all rows.

        Not for user SQL: use :func:`driftwatch.store.safe_sql.safe_query`, which checks
        the statement, enforces read-only semantics and a time limit.
        """
        with self._cursor() as cursor:
            try:
                relation = cursor.sql(sql, params=params)
                return result_from_arrow(relation.columns, relation.to_arrow_table())
            except duckdb.Error as error:
                raise StoreError(first_line(error)) from None

    def arrow(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pa.Table:
        """Like :meth:`query` but returns the Arrow table (e.g. for Parquet export)."""
        with self._cursor() as cursor:
            try:
                return cursor.sql(sql, params=params).to_arrow_table()
            except duckdb.Error as error:
                raise StoreError(first_line(error)) from None

    # --- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints the file). Idempotent."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            if isinstance(self.path, Path) and not self.read_only:
                with _LIVE_LOCK:
                    if _LIVE.get(self.path) is self:
                        del _LIVE[self.path]
            try:
                connection.close()
            except duckdb.Error as error:
                raise StoreError(f"closing {self.path}: {first_line(error)}") from None

    @property
    def closed(self) -> bool:
        return self._connection is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------

    def _require(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            raise StoreError(f"store {self.path} is closed")
        return self._connection

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new cursor (its own DuckDB connection to the same database), closed on exit.
        Used by reads, so they run alongside writes under MVCC."""
        with self._lock:
            try:
                cursor = self._require().cursor()
            except duckdb.Error as error:
                raise StoreError(first_line(error)) from None
        try:
            yield cursor
        finally:
            cursor.close()

    def _execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> None:
        with self._lock:
            connection = self._require()
            try:
                connection.execute(sql, params)
            except duckdb.Error as error:
                raise StoreError(first_line(error)) from None

    def _insert_returning(self, name: str, table: pa.Table, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            connection = self._require()
            try:
                connection.register(name, table)
                try:
                    return connection.execute(sql).fetchall()
                finally:
                    connection.unregister(name)
            except duckdb.Error as error:
                raise StoreError(f"writing to {self.path}: {first_line(error)}") from None

    def _insert_arrow(self, name: str, table: pa.Table, sql: str) -> int:
        with self._lock:
            connection = self._require()
            try:
                connection.register(name, table)
                try:
                    row = connection.execute(sql).fetchone()
                finally:
                    connection.unregister(name)
            except duckdb.Error as error:
                raise StoreError(f"writing to {self.path}: {first_line(error)}") from None
        return int(row[0]) if row else 0
