"""The read-only guard refuses statements and table functions that act instead of
reading (checkpoints, settings, profiling, SQL given as a string), in every spelling,
on the live writer's store, and the store is unchanged after each attempt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.core.errors import QueryError
from driftwatch.core.records import SpanRecord
from driftwatch.store import Store, check_read_only, safe_query

ACTING = [
    "SELECT * FROM checkpoint()",
    "select * from CheckPoint()",
    'SELECT * FROM "checkpoint"()',
    "SELECT * FROM system.main.checkpoint()",
    "FROM checkpoint()",
    "SELECT 1 FROM (SELECT * FROM checkpoint())",
    "WITH c AS (SELECT * FROM checkpoint()) SELECT 1",
    "SELECT * FROM force_checkpoint()",
    "SELECT * FROM enable_profiling()",
    "SELECT * FROM disable_optimizer()",
    "SELECT * FROM enable_logging()",
    "SELECT * FROM truncate_duckdb_logs()",
    "SELECT * FROM query('SELECT * FROM checkpoint()')",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
    "SELECT * FROM copy_database('memory', 'x')",
    "SELECT * FROM import_database('/tmp')",
    "EXPLAIN SELECT * FROM checkpoint()",
    "EXPLAIN ANALYZE SELECT * FROM checkpoint()",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "CALL checkpoint()",
    "VACUUM",
    "VACUUM ANALYZE spans",
    "ANALYZE",
    "PRAGMA force_checkpoint",
    "PRAGMA enable_profiling",
    "PRAGMA memory_limit='100GB'",
    "PRAGMA threads=64",
    "SET memory_limit = '100GB'",
    "SET GLOBAL threads = 64",
    "RESET memory_limit",
    "USE memory",
    "ATTACH ':memory:' AS other",
    "DETACH other",
    "LOAD httpfs",
    "INSTALL httpfs",
    "COPY spans TO '/tmp/x.csv'",
    "EXPORT DATABASE '/tmp/x'",
    "IMPORT DATABASE '/tmp/x'",
]


@pytest.mark.parametrize("sql", ACTING)
def test_acting_statements_are_refused(sql: str) -> None:
    with pytest.raises(QueryError) as caught:
        check_read_only(sql)
    assert "\n" not in str(caught.value)


def test_a_checkpoint_from_user_sql_does_not_run_on_the_live_store(
    db_path: Path, make_span: Callable[..., SpanRecord]
) -> None:
    """After writes, the WAL holds them; a refused checkpoint() leaves it there."""
    store = Store(db_path)
    try:
        store.write_spans([make_span(n) for n in range(1, 6)])
        wal = db_path.with_name(db_path.name + ".wal")
        before = wal.stat().st_size if wal.exists() else 0
        with pytest.raises(QueryError, match="checkpoint"):
            safe_query(store, "SELECT * FROM checkpoint()")
        after = wal.stat().st_size if wal.exists() else 0
        assert after == before
        assert int(safe_query(store, "SELECT count(*) FROM spans").scalar()) == 5
    finally:
        store.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT setseed(0.5)",  # per-connection random state only
        "SELECT set_bit('0101'::BITSTRING, 0, 1)",
        "SELECT * FROM query_table('spans')",
        "SELECT 'checkpoint()' AS text",
        "SELECT 1 -- checkpoint()",
        "SELECT * FROM range(3) AS checkpoint",
    ],
)
def test_look_alikes_still_pass(sql: str) -> None:
    check_read_only(sql)
