"""User SQL: one read statement, no file access, a time limit, one-line errors — on a
database file and on the live store of the writer process alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from driftwatch.core.errors import NotFoundError, QueryError, StoreError
from driftwatch.core.records import SpanRecord
from driftwatch.store import Store, check_read_only, safe_query

Target = Store | Path


@pytest.fixture(params=["file", "live"])
def target(
    request: pytest.FixtureRequest, db_path: Path, make_span: Callable[..., SpanRecord]
) -> Iterator[Target]:
    """The same small database, reached as a closed file or as the live writer's store."""
    store = Store(db_path)
    store.write_spans([make_span(n, turn=n % 3) for n in range(1, 11)])
    if request.param == "file":
        store.close()
        yield db_path
    else:
        yield store
        store.close()


def _count_spans(target: Target) -> int:
    return int(safe_query(target, "SELECT count(*) FROM spans").scalar())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM spans",
        "WITH t AS (SELECT turn FROM spans) SELECT max(turn) FROM t",
        "VALUES (1, 'a')",
        "SHOW TABLES",
        "DESCRIBE spans",
        "SUMMARIZE spans",
        "EXPLAIN SELECT * FROM spans",
        "FROM turns",
        "PRAGMA table_info('spans')",
        "select 1; -- a trailing comment is fine",
    ],
)
def test_read_statements_are_allowed(target: Target, sql: str) -> None:
    result = safe_query(target, sql)
    assert result.columns


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO spans_t (trace_id, span_id, run_id, name) VALUES ('t', 's', 'r', 'n')",
        "UPDATE spans_t SET name = 'x'",
        "DELETE FROM spans_t",
        "CREATE TABLE stolen AS SELECT * FROM spans",
        "CREATE TEMP TABLE scratch (a INT)",
        "DROP VIEW spans",
        "ALTER TABLE spans_t ADD COLUMN x INT",
        "COPY spans_t TO '/tmp/driftwatch-stolen.csv'",
        "EXPORT DATABASE '/tmp/driftwatch-export'",
        "ATTACH '/tmp/driftwatch-other.duckdb' AS other",
        "DETACH other",
        "SET threads = 1",
        "RESET threads",
        "PRAGMA threads = 1",
        "PRAGMA enable_profiling",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CALL checkpoint()",
        "CHECKPOINT",
        "BEGIN TRANSACTION",
        "VACUUM",
        "EXPLAIN ANALYZE DELETE FROM spans_t",
        "EXPLAIN DELETE FROM spans_t",
    ],
)
def test_statements_that_are_not_reads_are_refused(target: Target, sql: str) -> None:
    with pytest.raises(QueryError) as caught:
        safe_query(target, sql)
    assert "\n" not in str(caught.value)
    assert _count_spans(target) == 10


def test_a_data_modifying_cte_is_refused(target: Target) -> None:
    sql = (
        "WITH x AS (INSERT INTO alerts_t (alert_id, sink, status) VALUES ('a', 's', 'x') "
        "RETURNING *) SELECT * FROM x"
    )
    with pytest.raises(QueryError):
        safe_query(target, sql)
    assert safe_query(target, "SELECT count(*) FROM alerts").scalar() == 0


def test_multiple_statements_are_refused(target: Target) -> None:
    with pytest.raises(QueryError, match="exactly one SQL statement, got 2"):
        safe_query(target, "SELECT 1; DROP VIEW spans")


def test_an_empty_query_is_refused(target: Target) -> None:
    with pytest.raises(QueryError, match="got 0"):
        safe_query(target, "  ;  ")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('/tmp/*.parquet')",
        "SELECT * FROM read_json_auto('/etc/hostname')",
    ],
)
def test_user_sql_cannot_read_files(target: Target, sql: str) -> None:
    with pytest.raises(QueryError) as caught:
        safe_query(target, sql)
    assert "\n" not in str(caught.value)


def test_bad_sql_gives_duckdb_first_line_as_query_error(target: Target) -> None:
    with pytest.raises(QueryError) as caught:
        safe_query(target, "SELECT * FROM no_such_view")
    message = str(caught.value)
    assert message.startswith("Catalog Error: Table with name no_such_view does not exist")
    assert "\n" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_syntax_error_is_one_line(target: Target) -> None:
    with pytest.raises(QueryError, match="Parser Error") as caught:
        safe_query(target, "SELEC 1")
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_time_limit_interrupts_a_long_query(target: Target) -> None:
    started = time.monotonic()
    with pytest.raises(QueryError, match=r"query exceeded the 1 s time limit"):
        safe_query(
            target,
            "SELECT count(*) FROM range(1000000000) a, range(1000000000) b "
            "WHERE a.range <> b.range",
            timeout_s=1.0,
        )
    assert time.monotonic() - started < 2.0
    assert _count_spans(target) == 10  # the connection still works


def test_max_rows_truncates_and_says_so(target: Target) -> None:
    result = safe_query(target, "SELECT span_id FROM spans ORDER BY span_id", max_rows=3)
    assert len(result.rows) == 3
    assert result.truncated
    complete = safe_query(target, "SELECT span_id FROM spans", max_rows=10)
    assert len(complete.rows) == 10
    assert not complete.truncated


def test_results_are_plain_python_values(target: Target) -> None:
    result = safe_query(target, "SELECT run_id, turn, start_time FROM spans ORDER BY span_id")
    assert result.columns == ["run_id", "turn", "start_time"]
    run_id, turn, start_time = result.rows[0]
    assert (run_id, turn) == ("run-000001", 1)
    assert start_time.tzinfo is not None
    assert result.to_dicts()[0]["run_id"] == "run-000001"


def test_missing_database_file_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.duckdb"
    with pytest.raises(NotFoundError, match=r"nope\.duckdb"):
        safe_query(path, "SELECT 1")
    assert not path.exists()


def test_file_open_in_this_process_is_served_by_its_live_store(
    file_store: Store, db_path: Path, make_span: Callable[..., SpanRecord]
) -> None:
    file_store.write_spans([make_span(1)])
    assert safe_query(db_path, "SELECT count(*) FROM spans").scalar() == 1
    with pytest.raises(QueryError):
        safe_query(db_path, "DELETE FROM spans_t")


def test_file_locked_by_another_process_gives_store_error(locked_db: Path) -> None:
    with pytest.raises(StoreError, match="another driftwatch process"):
        safe_query(locked_db, "SELECT 1")


def test_live_store_keeps_writing_after_user_queries(
    file_store: Store, make_span: Callable[..., SpanRecord]
) -> None:
    with pytest.raises(QueryError):
        safe_query(file_store, "SET threads = 1")
    safe_query(file_store, "SELECT count(*) FROM spans")
    assert file_store.write_spans([make_span(1), make_span(2)]) == 2


@pytest.mark.parametrize("sql", ["PRAGMA version", "pragma database_size", "PRAGMA show_tables"])
def test_reporting_pragmas_pass_the_statement_check(sql: str) -> None:
    check_read_only(sql)
