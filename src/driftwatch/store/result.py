"""Query results as plain Python values.

Writers fetch Arrow; user SQL fetches rows directly (no pyarrow import on the
``driftwatch sql`` path). Connections run with ``TimeZone = 'UTC'``, so TIMESTAMPTZ
values come back as timezone-aware UTC datetimes either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and rows of one query. ``truncated`` is True when ``max_rows`` cut the
    result short. JSON columns come back as text; timestamps as timezone-aware UTC
    datetimes."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = field(default=False)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per row. With duplicate column names, the last one wins."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        """All values of one column (the first one of that name)."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row, or None for an empty result."""
        return self.rows[0][0] if self.rows and self.rows[0] else None


def rows_from_arrow(table: pa.Table | pa.RecordBatch) -> list[tuple[Any, ...]]:
    """Column-wise conversion of an Arrow table to a list of row tuples."""
    if table.num_columns == 0:
        return [() for _ in range(table.num_rows)]
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True))


def result_from_arrow(
    columns: list[str], table: pa.Table, *, truncated: bool = False
) -> QueryResult:
    return QueryResult(columns=columns, rows=rows_from_arrow(table), truncated=truncated)
