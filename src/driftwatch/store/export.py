"""Parquet export: the store as hive-partitioned Parquet (``day=YYYY-MM-DD/batch_id=…``),
so months of nightly history need not live in one database file.

Layout: ``DIR/{runs,spans,findings,alerts,batch_cells}/day=…/batch_id=…/part-0.parquet``;
``day`` is the UTC date the run started (a run's spans and findings sit with their run),
``batch_id`` is ``none`` for runs outside a batch. Read it back with DuckDB::

    SELECT * FROM read_parquet('DIR/spans/**/*.parquet', hive_partitioning = true)

The Parquet files are written by pyarrow from Arrow query results: the store's DuckDB
connections have external access disabled (user SQL never touches files). Re-exporting
overwrites the partitions it writes, so running the export again is idempotent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.dataset as ds

from driftwatch.store.db import Store

NO_BATCH: Final = "none"

_PARTITION = f"""
    strftime(CAST(r.started_at AT TIME ZONE 'UTC' AS DATE), '%Y-%m-%d') AS day,
    coalesce(r.batch_id, '{NO_BATCH}') AS batch_id_part
"""
# Each table joined to the run it belongs to, for its partition.
_TABLES: Final = {
    "runs": f"SELECT t.*, {_PARTITION} FROM runs t JOIN runs r USING (run_id)",
    "spans": f"SELECT t.*, {_PARTITION} FROM spans t JOIN runs r USING (run_id)",
    "findings": f"SELECT t.*, {_PARTITION} FROM findings t JOIN runs r USING (run_id)",
    "alerts": (f"SELECT t.*, {_PARTITION} FROM alerts t "
               "JOIN findings f USING (finding_id) JOIN runs r ON r.run_id = f.run_id"),
    "batch_cells": f"SELECT t.*, {_PARTITION} FROM batch_cells t JOIN runs r USING (run_id)",
}


def export_parquet(store: Store, out_dir: str | Path, *, batch_id: str | None = None
                   ) -> dict[str, int]:
    """Write every table (or one batch's rows) under ``out_dir``; returns rows per table."""
    counts: dict[str, int] = {}
    for name, sql in _TABLES.items():
        where = " WHERE r.batch_id = ?" if batch_id is not None else ""
        params = [batch_id] if batch_id is not None else None
        table = store.arrow(sql + where + " ORDER BY day, batch_id_part", params)
        counts[name] = table.num_rows
        if table.num_rows:
            _write(_plain(table), Path(out_dir) / name)
    return counts


def _plain(table: pa.Table) -> pa.Table:
    """JSON columns as text (Parquet has no JSON type every engine reads) and the
    partition column under its final name (``batch_id`` inside the files is dropped: the
    partition carries it)."""
    columns, names = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        if field.name == "batch_id":
            continue
        textual = isinstance(field.type, pa.ExtensionType) or pa.types.is_large_string(field.type)
        columns.append(column.cast(pa.string()) if textual else column)
        names.append("batch_id" if field.name == "batch_id_part" else field.name)
    return pa.Table.from_arrays(columns, names=names)


def _write(table: pa.Table, target: Path) -> None:
    partitioning = ds.partitioning(
        pa.schema([("day", pa.string()), ("batch_id", pa.string())]), flavor="hive")
    ds.write_dataset(
        table, target, format="parquet", partitioning=partitioning,
        basename_template="part-{i}.parquet", existing_data_behavior="delete_matching",
        max_rows_per_file=1_000_000, max_rows_per_group=128 * 1024,
    )
