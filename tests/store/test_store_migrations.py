"""Migrations are named, ordered, recorded and idempotent; the views are the contract."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from driftwatch.store import MIGRATIONS, Store, apply_migrations

EXPECTED_VIEWS = {
    "batches": ["batch_id", "name", "status", "started_at", "ended_at", "config"],
    "runs": [
        "run_id", "batch_id", "trace_id", "scenario_id", "variant", "model", "seed", "status",
        "turns", "started_at", "ended_at", "error", "attributes",
    ],
    "spans": [
        "trace_id", "span_id", "parent_span_id", "run_id", "turn", "name", "kind", "operation",
        "model", "provider", "tool_name", "input_tokens", "output_tokens", "start_time",
        "end_time", "duration_ms", "status_code", "status_message", "attributes", "resource",
        "events",
    ],
    "findings": [
        "finding_id", "run_id", "trace_id", "span_id", "turn", "monitor", "rule_id", "kind",
        "severity", "severity_level", "message", "evidence", "detected_at", "monitor_spec",
    ],
    "violations": [
        "finding_id", "run_id", "trace_id", "span_id", "turn", "monitor", "rule_id", "kind",
        "severity", "severity_level", "message", "evidence", "detected_at", "monitor_spec",
    ],
    "alerts": ["alert_id", "finding_id", "sink", "status", "attempts", "sent_at", "error"],
    "logs": [
        "trace_id", "span_id", "time", "observed_time", "severity_number", "severity_text",
        "event_name", "body", "attributes", "resource", "scope_name", "received_at",
    ],
    "tool_calls": [
        "trace_id", "span_id", "run_id", "turn", "tool_name", "call_id", "arguments", "result",
        "status_code", "start_time", "duration_ms", "source", "requested_span_id",
        "executed_span_id",
    ],
    "turns": [
        "run_id", "turn", "start_time", "end_time", "duration_ms", "model_calls", "tool_calls",
        "events", "input_tokens", "output_tokens", "violations",
    ],
}  # fmt: skip


def _migration_names(store: Store) -> list[str]:
    return store.query("SELECT name FROM _migrations ORDER BY applied_at, name").column("name")


def test_opening_a_new_database_records_every_migration_in_order(file_store: Store) -> None:
    assert _migration_names(file_store) == [name for name, _ in MIGRATIONS]


def test_reopening_the_same_file_applies_nothing_twice(db_path: Path) -> None:
    with Store(db_path) as store:
        first = store.query("SELECT name, applied_at FROM _migrations ORDER BY name").rows
    with Store(db_path) as store:
        second = store.query("SELECT name, applied_at FROM _migrations ORDER BY name").rows
    assert second == first


def test_an_older_database_gets_only_the_missing_migrations(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    connection = duckdb.connect(str(db_path))
    assert apply_migrations(connection, MIGRATIONS[:1]) == [MIGRATIONS[0][0]]
    assert apply_migrations(connection, MIGRATIONS[:1]) == []
    connection.close()
    with Store(db_path) as store:
        assert _migration_names(store) == [name for name, _ in MIGRATIONS]
        assert store.query("SELECT count(*) FROM spans").scalar() == 0


def test_a_failing_migration_is_rolled_back_and_not_recorded() -> None:
    connection = duckdb.connect(":memory:")
    broken = (*MIGRATIONS, ("9999_broken", "CREATE TABLE ok_t (a INT); SELECT * FROM nope"))
    with pytest.raises(duckdb.CatalogException):
        apply_migrations(connection, broken)
    names = [row[0] for row in connection.execute("SELECT name FROM _migrations").fetchall()]
    assert "9999_broken" not in names
    tables = connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert ("ok_t",) not in tables
    connection.close()


@pytest.mark.parametrize(("view", "columns"), EXPECTED_VIEWS.items())
def test_public_view_has_exactly_the_contract_columns(
    memory_store: Store, view: str, columns: list[str]
) -> None:
    described = memory_store.query(f"DESCRIBE {view}").column("column_name")
    assert described == columns


def test_span_view_columns_match_the_arrow_schema(memory_store: Store) -> None:
    from driftwatch.store import SPAN_SCHEMA

    assert memory_store.query("DESCRIBE spans").column("column_name") == SPAN_SCHEMA.names


def test_timestamps_are_stored_as_timestamptz(memory_store: Store) -> None:
    types = dict(
        memory_store.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'spans'"
        ).rows
    )
    assert types["start_time"] == "TIMESTAMP WITH TIME ZONE"
    assert types["attributes"] == "JSON"


def test_read_only_store_applies_no_migrations(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    duckdb.connect(str(db_path)).close()
    with Store(db_path, read_only=True) as store:
        tables = store.query("SELECT table_name FROM duckdb_tables()").rows
    assert tables == []
