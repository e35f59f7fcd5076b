"""OTLP log records in the collector: stored, and GenAI events joined to their spans.

Writer thread only (the :class:`~driftwatch.collector.ingest.IngestQueue`'s): spans and
log records are written by the same thread, one request after the other, so each
arrival order has one outcome:

- **the event arrives after its span** (:meth:`LogJoin.write`): the records are stored
  and, in the same transaction, the span's attributes get the content of every GenAI
  event stored for it (:func:`~driftwatch.tracing.genai_events.merge_content`). The
  store (``spans``, ``driftwatch sql``, reports, ``stats``) has the content from then
  on; the live monitors evaluated that span when it arrived, without it, and are not
  asked again (end-of-run checks included);
- **the event arrives first** (the usual order with the SDK's batch processors: logs
  are exported every second, spans every five): the span is noted as awaited, and when
  it arrives :meth:`LogJoin.enrich` merges the content into it before it is written, so
  the store and the monitors see one span with its messages.

Awaited spans are kept in memory (at most ``max_awaited``, each for ``awaited_s``; the
events stay in the store either way, joined again if the span arrives later) and
reloaded from the store when the collector starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from driftwatch.core.logging import get_logger
from driftwatch.store.arrow import column_values
from driftwatch.store.logs import (
    genai_events,
    orphan_genai_spans,
    replace_span_attributes,
    span_attributes,
    write_logs,
)
from driftwatch.tracing.genai_events import content_from_events, is_genai_event, merge_content

if TYPE_CHECKING:
    from driftwatch.store import Store

__all__ = ["LogJoin"]

log = get_logger(__name__)

_Key = tuple[str, str]
_DEFAULT_AWAITED: Final = 65_536


class LogJoin:
    """The join of GenAI events and spans (see the module docstring)."""

    def __init__(self, store: Store, *, max_awaited: int = _DEFAULT_AWAITED,
                 awaited_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._max_awaited = max_awaited
        self._awaited_s = awaited_s
        self._clock = clock
        self._awaited: dict[str, tuple[str, float]] = {}  # span_id -> (trace_id, since)
        self.records_stored = 0
        self.spans_enriched = 0
        now = clock()
        for trace_id, span_id in orphan_genai_spans(store, max_awaited):
            self._awaited[span_id] = (trace_id, now)

    @property
    def awaited(self) -> int:
        """Spans that GenAI events named and that are not stored yet."""
        return len(self._awaited)

    def write(self, table: pa.Table) -> int:
        """Store one request's log records (``LOG_SCHEMA``) and join their GenAI events
        to the stored spans; returns the number of records in ``table``."""
        keys = self._genai_keys(table)
        with self._store.transaction():
            self.records_stored += write_logs(self._store, table)
            if keys:
                stored = span_attributes(self._store, keys)
                if stored:
                    updates = self._merged(stored)
                    replace_span_attributes(self._store, updates)
                    self.spans_enriched += len(updates)
                now = self._clock()
                for key in keys:
                    if key not in stored:
                        self._awaited[key[1]] = (key[0], now)
        self._expire()
        return int(table.num_rows)

    def enrich(self, table: pa.Table) -> pa.Table:
        """Spans about to be written, with the content of the events that arrived before
        them (``table`` itself when there is none: one check per batch)."""
        if not self._awaited or table.num_rows == 0:
            return table
        span_ids = table.column("span_id")
        hits = pc.is_in(span_ids, value_set=pa.array(list(self._awaited), pa.string()))
        if not pc.any(hits).as_py():
            return table
        rows = [index for index, hit in enumerate(column_values(hits)) if hit]
        trace_ids = table.column("trace_id")
        keys = {(str(trace_ids[index]), str(span_ids[index])): index for index in rows}
        keys = {key: index for key, index in keys.items()
                if self._awaited.get(key[1], ("",))[0] == key[0]}
        if not keys:
            return table
        events = genai_events(self._store, list(keys))
        attributes = table.column("attributes").to_pylist()
        changed = 0
        for key, index in keys.items():
            merged = merge_content(attributes[index],
                                   content_from_events(events.get(key, ())))
            if merged is not None:
                attributes[index] = merged
                changed += 1
        if not changed:
            return table
        self.spans_enriched += changed
        position = table.schema.get_field_index("attributes")
        return table.set_column(position, table.schema.field(position),
                                pa.array(attributes, pa.string()))

    def committed(self, table: pa.Table) -> None:
        """Spans stored now: no longer awaited."""
        if not self._awaited:
            return
        for span_id in column_values(table.column("span_id")):
            self._awaited.pop(span_id, None)

    def _genai_keys(self, table: pa.Table) -> list[_Key]:
        names = column_values(table.column("event_name"))
        if not any(is_genai_event(name) for name in names):
            return []
        trace_ids = column_values(table.column("trace_id"))
        span_ids = column_values(table.column("span_id"))
        return list(dict.fromkeys(
            (trace_id, span_id)
            for name, trace_id, span_id in zip(names, trace_ids, span_ids, strict=True)
            if is_genai_event(name) and trace_id and span_id))

    def _merged(self, stored: dict[_Key, str]) -> dict[_Key, str]:
        events = genai_events(self._store, list(stored))
        updates: dict[_Key, str] = {}
        for key, attributes in stored.items():
            merged = merge_content(attributes, content_from_events(events.get(key, ())))
            if merged is not None:
                updates[key] = merged
        return updates

    def _expire(self) -> None:
        if not self._awaited:
            return
        oldest = self._clock() - self._awaited_s
        for span_id, (_, since) in list(self._awaited.items()):
            if since >= oldest and len(self._awaited) <= self._max_awaited:
                break  # insertion order: the rest are younger
            del self._awaited[span_id]
