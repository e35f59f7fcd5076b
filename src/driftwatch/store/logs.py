"""OTLP log records in the store, and the span reads and writes that join them to spans.

The collector writes a request's log records with :func:`write_logs` (one idempotent
statement; a record re-sent after a retry is stored once, keyed on an md5 of its
fields). GenAI events among them carry message content for a span;
:func:`span_attributes`, :func:`genai_events` and :func:`replace_span_attributes` are
what :mod:`driftwatch.collector.logs` needs to merge that content into the span's
attributes. Callers hold :meth:`Store.transaction` when several of these must commit
together. Writer thread only (as every store write).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import duckdb
import pyarrow as pa

from driftwatch.core.errors import StoreError
from driftwatch.store.connection import first_line

if TYPE_CHECKING:
    from driftwatch.store.db import Store

__all__ = [
    "LOG_SCHEMA",
    "genai_events",
    "orphan_genai_spans",
    "replace_span_attributes",
    "span_attributes",
    "write_logs",
]

LOG_SCHEMA: Final = pa.schema([
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("time", pa.timestamp("us", tz="UTC")),
    ("observed_time", pa.timestamp("us", tz="UTC")),
    ("time_unix_nano", pa.int64()),
    ("severity_number", pa.int32()),
    ("severity_text", pa.string()),
    ("event_name", pa.string()),
    ("body", pa.string()),  # JSON text
    ("attributes", pa.string()),  # JSON text
    ("resource", pa.string()),  # JSON text
    ("scope_name", pa.string()),
    ("received_at", pa.timestamp("us", tz="UTC")),
])

_COLUMNS: Final = ", ".join(LOG_SCHEMA.names)
# received_at is not part of the key: a retry arrives later and is the same record
_KEY: Final = ("md5_number(concat_ws(chr(31), coalesce(trace_id, ''), coalesce(span_id, ''), "
               "CAST(time_unix_nano AS VARCHAR), coalesce(event_name, ''), "
               "coalesce(severity_text, ''), coalesce(scope_name, ''), coalesce(body, ''), "
               "coalesce(attributes, '')))")
_INSERT: Final = f"""
INSERT OR IGNORE INTO logs_t (log_key, {_COLUMNS})
SELECT DISTINCT ON (log_key) * FROM (
    SELECT {_KEY} AS log_key, {_COLUMNS} FROM _log_batch
)
"""
_KEYS: Final = pa.schema([("trace_id", pa.string()), ("span_id", pa.string())])


def write_logs(store: Store, table: pa.Table) -> int:
    """Store a ``LOG_SCHEMA`` table; returns the number of records stored now."""
    if table.num_rows == 0:
        return 0
    return store._insert_arrow("_log_batch", table.select(LOG_SCHEMA.names).cast(LOG_SCHEMA),
                               _INSERT)


def span_attributes(store: Store, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The stored attributes (JSON text) of those of the ``(trace_id, span_id)`` spans that
    are stored."""
    rows = _with_keys(store, keys, "SELECT s.trace_id, s.span_id, CAST(s.attributes AS VARCHAR) "
                      "FROM spans_t s SEMI JOIN _span_keys k "
                      "ON s.trace_id = k.trace_id AND s.span_id = k.span_id")
    return {(trace_id, span_id): text for trace_id, span_id, text in rows}


def genai_events(store: Store, keys: Sequence[tuple[str, str]]
                 ) -> dict[tuple[str, str], list[tuple[str, int, str | None, str | None]]]:
    """Every stored GenAI event (``event_name`` ``gen_ai.*``) of the given spans, in time
    order: ``(event_name, time_unix_nano, body, attributes)`` with JSON texts."""
    rows = _with_keys(store, keys, "SELECT l.trace_id, l.span_id, l.event_name, l.time_unix_nano, "
                      "CAST(l.body AS VARCHAR), CAST(l.attributes AS VARCHAR) "
                      "FROM logs_t l SEMI JOIN _span_keys k "
                      "ON l.trace_id = k.trace_id AND l.span_id = k.span_id "
                      "WHERE l.event_name LIKE 'gen\\_ai.%' ESCAPE '\\' "
                      "ORDER BY l.time_unix_nano, l.observed_time, l.received_at")
    out: dict[tuple[str, str], list[tuple[str, int, str | None, str | None]]] = {}
    for trace_id, span_id, name, time_ns, body, attributes in rows:
        out.setdefault((trace_id, span_id), []).append((name, int(time_ns or 0), body,
                                                        attributes))
    return out


def orphan_genai_spans(store: Store, limit: int) -> list[tuple[str, str]]:
    """``(trace_id, span_id)`` of spans that GenAI events name and that are not stored
    (yet), most recently received first, at most ``limit``."""
    with store._cursor() as cursor:
        try:
            return [(str(t), str(s)) for t, s in cursor.execute(
                "SELECT trace_id, span_id FROM logs_t "
                "WHERE span_id IS NOT NULL AND trace_id IS NOT NULL "
                "AND event_name LIKE 'gen\\_ai.%' ESCAPE '\\' "
                "AND md5_number(trace_id || ':' || span_id) NOT IN "
                "(SELECT span_key FROM span_keys_t) "
                "GROUP BY ALL ORDER BY max(received_at) DESC LIMIT ?", [limit]).fetchall()]
        except duckdb.Error as error:
            raise StoreError(first_line(error)) from None


def replace_span_attributes(store: Store, updates: dict[tuple[str, str], str]) -> int:
    """Set the attributes (JSON text) of stored spans; returns how many rows changed."""
    if not updates:
        return 0
    table = pa.table({
        "trace_id": pa.array([key[0] for key in updates], pa.string()),
        "span_id": pa.array([key[1] for key in updates], pa.string()),
        "attributes": pa.array(list(updates.values()), pa.string()),
    })
    return store._insert_arrow(
        "_span_updates", table,
        "UPDATE spans_t SET attributes = CAST(u.attributes AS JSON) FROM _span_updates u "
        "WHERE spans_t.trace_id = u.trace_id AND spans_t.span_id = u.span_id")


def _with_keys(store: Store, keys: Sequence[tuple[str, str]], sql: str) -> list[tuple[Any, ...]]:
    if not keys:
        return []
    table = pa.table({"trace_id": [key[0] for key in keys], "span_id": [key[1] for key in keys]},
                     schema=_KEYS)
    return store._insert_returning("_span_keys", table, sql)
