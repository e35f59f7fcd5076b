"""One batch of spans as records and as an Arrow table, each built at most once.

A batch starts from whichever form its producer has: SDK spans give
:class:`~driftwatch.core.records.SpanRecord`\\ s, an OTLP request or a stored table gives
Arrow. The other form is built on first use and kept, so the store writer, the monitors
and the rule packs' SQL predicates share one conversion instead of each making its own::

    batch = SpanBatch.from_table(table)     # e.g. committed spans in the collector
    engine.submit_batch(batch)              # monitors read batch.records (built once)
    evaluator.evaluate_all(batch)           # predicates read batch.table (no conversion)

Sub-batches (:meth:`take`, :meth:`concat`) keep the link: their table is taken from
their sources' tables (an Arrow ``take``, not a conversion) when the sources have one.

The table has the ``SPAN_SCHEMA`` columns, in order, possibly followed by the exact
nanosecond times (:data:`~driftwatch.store.arrow.EXACT_TIME_COLUMNS`). A batch is
immutable once built; building the missing form is not locked, so a batch shared
between threads should have both forms built before it is shared (the engine only
reads it on its worker thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import pyarrow as pa

from driftwatch.core.records import SpanRecord
from driftwatch.store import arrow

__all__ = ["Row", "SpanBatch"]


class SpanBatch(Sequence[SpanRecord]):
    """The spans of one batch; a read-only ``Sequence[SpanRecord]`` that also has
    :attr:`table`. Build it with :meth:`from_records` or :meth:`from_table`."""

    __slots__ = ("__weakref__", "_parts", "_records", "_table")

    def __init__(
        self,
        records: Sequence[SpanRecord] | None = None,
        table: pa.Table | None = None,
        *,
        parts: Sequence[tuple[SpanBatch, Sequence[int] | None]] | None = None,
    ) -> None:
        if records is None and table is None:
            raise ValueError("a span batch needs records or a table")
        if records is not None and table is not None and len(records) != table.num_rows:
            raise ValueError("one record per row")
        self._records = records
        self._table = table
        # where the table can be taken from, when it is not built: (source, rows or all)
        self._parts = tuple(parts) if parts is not None else None

    @classmethod
    def from_records(cls, records: Sequence[SpanRecord]) -> SpanBatch:
        return cls(records=records)

    @classmethod
    def from_table(cls, table: pa.Table) -> SpanBatch:
        return cls(table=table)

    @staticmethod
    def concat(batches: Iterable[Sequence[SpanRecord]]) -> SpanBatch:
        """One batch of these, in order. Its table is taken from the parts' tables
        (each built once, if it is not yet) when every part is a ``SpanBatch``; with a
        plain record sequence among them, it is made from all the records at once."""
        items = list(batches)
        if len(items) == 1 and isinstance(items[0], SpanBatch):
            return items[0]
        records = [record for item in items for record in item]
        if not all(isinstance(item, SpanBatch) for item in items) or not items:
            return SpanBatch(records=records)
        parts: list[tuple[SpanBatch, Sequence[int] | None]] = []
        for item in items:
            assert isinstance(item, SpanBatch)
            if item._table is None and item._parts is not None:
                parts.extend(item._parts)  # one take per source, not one per sub-batch
            else:
                parts.append((item, None))
        return SpanBatch(records, parts=parts)

    @staticmethod
    def gather(rows: Sequence[Row]) -> SpanBatch:
        """The rows (record, its batch, its position there) as one batch whose table is
        taken from their batches' tables, one take per run of rows from one batch."""
        parts: list[tuple[SpanBatch, list[int]]] = []
        for _, source, index in rows:
            if parts and parts[-1][0] is source:
                parts[-1][1].append(index)
            else:
                parts.append((source, [index]))
        return SpanBatch([row[0] for row in rows], parts=parts)

    def take(self, positions: Sequence[int]) -> SpanBatch:
        """The spans at ``positions`` (in that order)."""
        records = self.records
        return SpanBatch([records[n] for n in positions], parts=[(self, positions)])

    def release(self) -> None:
        """Forget the batches this one was taken from (and the table taken from them):
        from now on it holds only its records, so a monitor that keeps a run's last
        records does not keep a whole source batch alive. Its table, if asked for
        again, is made from the records."""
        if self._parts is not None:
            self._parts = None
            self._table = None

    # --- the two forms ------------------------------------------------------------------

    @property
    def records(self) -> Sequence[SpanRecord]:
        """The records, made from the table on first use."""
        if self._records is None:
            assert self._table is not None
            self._records = arrow.records_from_arrow(self._table)
        return self._records

    @property
    def table(self) -> pa.Table:
        """The Arrow table, made on first use: taken from the tables of the batches this
        one was taken from (building theirs once, for all their sub-batches), else made
        from the records."""
        if self._table is None:
            self._table = self._table_from_parts() or arrow.records_to_arrow(self.records)
        return self._table

    @property
    def has_table(self) -> bool:
        """Whether :attr:`table` is there or taken without converting records."""
        if self._table is not None:
            return True
        return self._parts is not None and all(part.has_table for part, _ in self._parts)

    def _table_from_parts(self) -> pa.Table | None:
        if not self._parts:
            return None
        merged: list[tuple[SpanBatch, list[int] | None]] = []  # neighbours of one source
        for part, positions in self._parts:
            if merged and merged[-1][0] is part:
                rows = merged[-1][1]
                if rows is None:
                    rows = list(range(len(part)))
                    merged[-1] = (part, rows)
                rows.extend(range(len(part)) if positions is None else positions)
            else:
                merged.append((part, None if positions is None else list(positions)))
        tables = []
        for part, taken in merged:
            table = part.table.select(arrow.SPAN_SCHEMA.names)
            if taken is not None and taken != list(range(table.num_rows)):  # else all, in order
                table = table.take(pa.array(taken, pa.int64()))
            tables.append(table)
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    # --- Sequence -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records) if self._records is not None else self.table.num_rows

    @overload
    def __getitem__(self, index: int) -> SpanRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[SpanRecord]: ...

    def __getitem__(self, index: int | slice) -> SpanRecord | Sequence[SpanRecord]:
        return self.records[index]

    def __iter__(self) -> Iterator[SpanRecord]:
        return iter(self.records)

    def __repr__(self) -> str:
        forms = [name for name, value in (("records", self._records), ("table", self._table))
                 if value is not None]
        return f"SpanBatch({len(self)} spans, built: {', '.join(forms) or 'none'})"


Row = tuple[SpanRecord, SpanBatch, int]
"""One span of a :class:`SpanBatch` queued on its own (with its batch and position), so a
consumer that re-batches spans can take its table from the source tables."""
