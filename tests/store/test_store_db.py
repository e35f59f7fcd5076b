"""Store writes: Arrow batches, idempotent keys, upserts, thread safety, locking."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from driftwatch.core.errors import NotFoundError, StoreError
from driftwatch.core.records import Finding, FindingKind, RunInfo, RunStatus, Severity, SpanRecord
from driftwatch.store import Store, records_to_arrow

SpanFactory = Callable[..., SpanRecord]
FindingFactory = Callable[..., Finding]
WHEN = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def test_write_spans_returns_rows_inserted(memory_store: Store, make_span: SpanFactory) -> None:
    assert memory_store.write_spans([make_span(n) for n in range(1, 6)]) == 5
    assert memory_store.query("SELECT count(*) FROM spans").scalar() == 5


def test_span_duplicated_within_a_batch_is_stored_once(
    memory_store: Store, make_span: SpanFactory
) -> None:
    records = [make_span(1), make_span(2), make_span(1)]
    assert memory_store.write_spans(records) == 2
    assert memory_store.query("SELECT count(*) FROM spans").scalar() == 2


def test_span_resent_in_a_later_batch_is_stored_once(
    file_store: Store, make_span: SpanFactory
) -> None:
    file_store.write_spans([make_span(n) for n in range(1, 4)])
    assert file_store.write_spans([make_span(n) for n in range(2, 6)]) == 2
    keys = file_store.query("SELECT span_id FROM spans ORDER BY span_id").column("span_id")
    assert keys == [f"{n:016x}" for n in range(1, 6)]


def test_span_resent_after_the_store_is_reopened_is_stored_once(
    db_path: Path, make_span: SpanFactory
) -> None:
    with Store(db_path) as store:
        store.write_spans([make_span(1), make_span(2)])
    with Store(db_path) as store:
        assert store.write_spans([make_span(2), make_span(3)]) == 1
        assert store.query("SELECT count(*) FROM spans").scalar() == 3


def test_arrow_batches_with_duplicates_keep_the_first_copy(
    memory_store: Store, make_span: SpanFactory
) -> None:
    first = make_span(1, attributes={"copy": "first"})
    second = make_span(1, attributes={"copy": "second"})
    assert memory_store.write_span_table(records_to_arrow([first, make_span(2), second])) == 2
    copy = memory_store.query(
        "SELECT attributes->>'copy' FROM spans WHERE span_id = ?", [first.span_id]
    ).scalar()
    assert copy == "first"


def test_a_failed_batch_stores_neither_spans_nor_keys(
    memory_store: Store, make_span: SpanFactory
) -> None:
    table = records_to_arrow([make_span(1)])
    broken = table.set_column(
        table.schema.get_field_index("attributes"),
        "attributes",
        pa.array(["not json"], type=pa.string()),
    )
    with pytest.raises(StoreError):
        memory_store.write_span_table(broken)
    assert memory_store.write_span_table(table) == 1  # the key was not left behind


def test_same_span_id_in_another_trace_is_a_different_span(
    memory_store: Store, make_span: SpanFactory
) -> None:
    assert memory_store.write_spans([make_span(1, run=1), make_span(1, run=2)]) == 2


def test_writing_no_spans_is_a_no_op(memory_store: Store) -> None:
    assert memory_store.write_spans([]) == 0


def test_spans_view_returns_record_values_with_utc_times(
    memory_store: Store, make_span: SpanFactory
) -> None:
    record = make_span(7, turn=3, attributes={"gen_ai.usage.input_tokens": 120})
    memory_store.write_spans([record])
    row = memory_store.query("SELECT * FROM spans").to_dicts()[0]
    assert row["trace_id"] == record.trace_id
    assert row["span_id"] == record.span_id
    assert row["run_id"] == "run-000001"
    assert row["turn"] == 3
    assert row["operation"] == "chat"
    assert row["input_tokens"] == 120
    assert row["start_time"] == record.start_time
    assert row["start_time"].utcoffset() == timedelta(0)
    assert row["duration_ms"] == pytest.approx(10.0)
    assert json.loads(row["attributes"])["driftwatch.turn"] == 3


def test_dotted_attribute_keys_are_reachable_with_a_quoted_json_path(
    memory_store: Store, make_span: SpanFactory
) -> None:
    memory_store.write_spans([make_span(1)])
    value = memory_store.query(
        """SELECT attributes->>'$."driftwatch.scenario.id"' FROM spans"""
    ).scalar()
    assert value == "inbox-cleanup"


def test_write_findings_is_idempotent_on_finding_id(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    assert memory_store.write_findings([make_finding("f1"), make_finding("f1")]) == 1
    assert memory_store.write_findings([make_finding("f1"), make_finding("f2")]) == 1
    assert memory_store.query("SELECT count(*) FROM findings").scalar() == 2


def test_findings_store_severity_label_and_level_and_json(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    memory_store.write_findings([make_finding("f1", severity=Severity.CRITICAL)])
    row = memory_store.query("SELECT * FROM findings").to_dicts()[0]
    assert (row["severity"], row["severity_level"]) == ("critical", 50)
    assert row["kind"] == "violation"
    assert json.loads(row["evidence"]) == {"path": "/protected/a.txt"}
    assert json.loads(row["monitor_spec"])["name"] == "rule_pack"
    assert row["detected_at"] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_violations_view_holds_only_violation_findings(
    memory_store: Store, make_finding: FindingFactory
) -> None:
    memory_store.write_findings([make_finding("f1"), make_finding("f2", kind=FindingKind.DRIFT)])
    assert memory_store.query("SELECT finding_id FROM violations").column("finding_id") == ["f1"]


def _run(**changes: object) -> RunInfo:
    info = RunInfo(
        run_id="run-000001",
        trace_id=None,
        scenario_id="inbox-cleanup",
        variant="pressure",
        model="simulated/drifter",
        seed=7,
        status=RunStatus.RUNNING,
        started_at=WHEN,
        batch_id="batch-1",
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def test_upsert_run_inserts_then_updates_by_run_id(memory_store: Store) -> None:
    memory_store.upsert_run(_run())
    memory_store.upsert_run(
        _run(
            trace_id="a" * 32,
            scenario_id=None,
            status=RunStatus.COMPLETED,
            turns=12,
            ended_at=WHEN + timedelta(minutes=5),
            attributes={"stopped_by": "max_turns"},
        )
    )
    rows = memory_store.query("SELECT * FROM runs").to_dicts()
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "completed"
    assert row["turns"] == 12
    assert row["trace_id"] == "a" * 32
    assert row["scenario_id"] == "inbox-cleanup"  # a None update keeps the stored value
    assert row["started_at"] == WHEN
    assert row["ended_at"] == WHEN + timedelta(minutes=5)
    assert json.loads(row["attributes"]) == {"stopped_by": "max_turns"}


def test_upsert_batch_inserts_then_updates(memory_store: Store) -> None:
    memory_store.upsert_batch("b1", "nightly", "running", WHEN, config={"seeds": [1, 2]})
    memory_store.upsert_batch("b1", None, "completed", WHEN, ended_at=WHEN + timedelta(hours=1))
    row = memory_store.query("SELECT * FROM batches").to_dicts()[0]
    assert (row["name"], row["status"]) == ("nightly", "completed")
    assert json.loads(row["config"]) == {"seeds": [1, 2]}
    assert row["ended_at"] == WHEN + timedelta(hours=1)


def test_record_alert_upserts_by_alert_id(memory_store: Store) -> None:
    memory_store.record_alert("a1", "f1", "webhook", "failed", 1, None, error="timeout")
    memory_store.record_alert("a1", "f1", "webhook", "sent", 2, WHEN)
    rows = memory_store.query("SELECT * FROM alerts").to_dicts()
    assert rows == [
        {
            "alert_id": "a1",
            "finding_id": "f1",
            "sink": "webhook",
            "status": "sent",
            "attempts": 2,
            "sent_at": WHEN,
            "error": None,
        }
    ]


def test_record_alerts_upserts_many_rows_last_row_per_alert_id_wins(
    memory_store: Store,
) -> None:
    memory_store.record_alert("a1", "f1", "webhook", "pending", 0, None)
    memory_store.record_alerts(
        [
            ("a1", "f1", "webhook", "retrying", 1, None, "HTTP 503"),
            ("a2", "f2", "console", "sent", 1, WHEN, None),
            ("a1", "f1", "webhook", "sent", 2, WHEN, None),
        ]
    )
    memory_store.record_alerts([])
    rows = memory_store.query(
        "SELECT alert_id, status, attempts, sent_at, error FROM alerts ORDER BY alert_id"
    ).rows
    assert rows == [("a1", "sent", 2, WHEN, None), ("a2", "sent", 1, WHEN, None)]


def test_tool_calls_view_derives_call_id_json_arguments_and_result(
    memory_store: Store, tool_span: SpanFactory
) -> None:
    memory_store.write_spans(
        [
            tool_span(1, "delete_file", {"path": "/protected/a.txt"}, result="deleted"),
            tool_span(2, "shell", "not json at all"),
        ]
    )
    rows = memory_store.query(
        "SELECT call_id, tool_name, arguments->>'path' AS path, result, "
        "json_type(arguments) AS arguments_type FROM tool_calls ORDER BY call_id"
    ).to_dicts()
    assert rows == [
        {
            "call_id": "call-1",
            "tool_name": "delete_file",
            "path": "/protected/a.txt",
            "result": "deleted",
            "arguments_type": "OBJECT",
        },
        {
            "call_id": "call-2",
            "tool_name": "shell",
            "path": None,
            "result": "ok",
            "arguments_type": "VARCHAR",
        },
    ]


def test_turns_view_counts_calls_events_tokens_and_violations(
    memory_store: Store,
    make_span: SpanFactory,
    tool_span: SpanFactory,
    make_finding: FindingFactory,
) -> None:
    tokens = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 7}
    memory_store.write_spans(
        [
            make_span(1, turn=0, attributes=tokens),
            tool_span(2, "read_file", {"path": "a"}, turn=0),
            make_span(3, turn=1, attributes=tokens),
            make_span(4, turn=1, attributes=tokens),
            make_span(5, turn=1, operation="driftwatch.event"),
            tool_span(6, "delete_file", {"path": "b"}, turn=1),
            make_span(7, turn=None),
        ]
    )
    memory_store.write_findings(
        [
            make_finding("f1", turn=1),
            make_finding("f2", turn=1),
            make_finding("f3", turn=1, kind=FindingKind.DRIFT),
        ]
    )
    rows = memory_store.query(
        "SELECT turn, model_calls, tool_calls, events, input_tokens, output_tokens, violations, "
        "duration_ms FROM turns ORDER BY turn"
    ).rows
    assert rows == [(0, 1, 1, 0, 100, 7, 0, 1010.0), (1, 2, 1, 1, 200, 14, 2, 3010.0)]


def test_the_same_file_can_be_opened_twice_in_one_process(
    file_store: Store, db_path: Path, make_span: SpanFactory
) -> None:
    file_store.write_spans([make_span(1)])
    with Store(db_path) as second:
        assert second.query("SELECT count(*) FROM spans").scalar() == 1
        assert second.write_spans([make_span(1), make_span(2)]) == 1
    assert file_store.query("SELECT count(*) FROM spans").scalar() == 2


def test_store_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.duckdb"
    with Store(path):
        pass
    assert path.exists()


def test_concurrent_writers_and_readers_share_one_store(
    file_store: Store, make_span: SpanFactory
) -> None:
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for start in range(offset, offset + 200, 20):
                file_store.write_spans([make_span(n) for n in range(start, start + 20)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(20):
                file_store.query("SELECT count(*) FROM turns")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n * 1000,)) for n in range(3)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert file_store.query("SELECT count(*) FROM spans").scalar() == 600


def test_closed_store_raises_store_error(db_path: Path, make_span: SpanFactory) -> None:
    store = Store(db_path)
    store.close()
    store.close()  # closing twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.write_spans([make_span(1)])
    with pytest.raises(StoreError, match="closed"):
        store.query("SELECT 1")


def test_store_sql_errors_are_one_line_store_errors(memory_store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        memory_store.query("SELECT * FROM no_such_view")
    assert "\n" not in str(caught.value)
    assert "no_such_view" in str(caught.value)


def test_store_connection_cannot_read_files(memory_store: Store) -> None:
    with pytest.raises(StoreError, match="disabled by configuration"):
        memory_store.query("SELECT * FROM read_csv('/etc/passwd')")


def test_read_only_store_of_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"missing\.duckdb"):
        Store(tmp_path / "missing.duckdb", read_only=True)


@pytest.mark.parametrize("read_only", [False, True])
def test_file_locked_by_another_process_gives_one_line_store_error(
    locked_db: Path, read_only: bool
) -> None:
    with pytest.raises(StoreError) as caught:
        Store(locked_db, read_only=read_only)
    message = str(caught.value)
    assert "\n" not in message
    assert str(locked_db) in message
    assert "another driftwatch process" in message
