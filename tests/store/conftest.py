"""Store fixtures: an in-memory and a temp-file database, and hand-made span records."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core import semconv as sc
from driftwatch.core.records import Finding, FindingKind, Severity, SpanRecord
from driftwatch.store import Store

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


def _make_span(
    number: int,
    *,
    run: int = 1,
    turn: int | None = 0,
    operation: str = "chat",
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    duration_ms: float = 10.0,
) -> SpanRecord:
    """Span ``number`` of run ``run``: trace id from the run, span id from the number."""
    attrs: dict[str, Any] = {
        sc.DW_RUN_ID: f"run-{run:06d}",
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.DW_SCENARIO_ID: "inbox-cleanup",
        sc.DW_SCENARIO_VARIANT: "pressure",
    }
    if turn is not None:
        attrs[sc.DW_TURN] = turn
    attrs.update(attributes or {})
    start = T0 + number * 1_000_000_000
    return SpanRecord.create(
        trace_id=f"{run:032x}",
        span_id=f"{number:016x}",
        parent_span_id=None,
        name=name or operation,
        kind="CLIENT" if operation == "chat" else "INTERNAL",
        start_time_ns=start,
        end_time_ns=start + int(duration_ms * 1_000_000),
        attributes=attrs,
        resource={"service.name": "driftwatch-tests"},
    )


def _tool_span(
    number: int, tool: str, arguments: dict[str, Any] | str, result: str = "ok", **kwargs: Any
) -> SpanRecord:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return _make_span(
        number,
        operation=sc.OP_EXECUTE_TOOL,
        name=f"execute_tool {tool}",
        attributes={
            sc.GEN_AI_TOOL_NAME: tool,
            sc.GEN_AI_TOOL_CALL_ID: f"call-{number}",
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: args,
            sc.GEN_AI_TOOL_CALL_RESULT: result,
            **kwargs.pop("attributes", {}),
        },
        **kwargs,
    )


def _make_finding(
    finding_id: str,
    *,
    run: int = 1,
    turn: int | None = 0,
    kind: FindingKind = FindingKind.VIOLATION,
    severity: Severity = Severity.HIGH,
) -> Finding:
    return Finding(
        finding_id=finding_id,
        run_id=f"run-{run:06d}",
        trace_id=f"{run:032x}",
        span_id=None,
        turn=turn,
        monitor="rule_pack",
        rule_id="no-delete",
        kind=kind,
        severity=severity,
        message="deleted a protected file",
        evidence={"path": "/protected/a.txt"},
        detected_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        monitor_spec={"name": "rule_pack", "args": {"packs": ["core"]}},
    )


@pytest.fixture
def make_span() -> Callable[..., SpanRecord]:
    """``make_span(number, run=1, turn=0, operation="chat", attributes=…)``."""
    return _make_span


@pytest.fixture
def tool_span() -> Callable[..., SpanRecord]:
    """``tool_span(number, tool, arguments, result="ok", …)``: an execute_tool span."""
    return _tool_span


@pytest.fixture
def make_finding() -> Callable[..., Finding]:
    """``make_finding(finding_id, run=1, turn=0, kind=…, severity=…)``."""
    return _make_finding


@pytest.fixture
def memory_store() -> Iterator[Store]:
    with Store(":memory:") as store:
        yield store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "traces" / "driftwatch.duckdb"


@pytest.fixture
def file_store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as store:
        yield store


HOLD_LOCK = """
import sys
import duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def locked_db(db_path: Path) -> Iterator[Path]:
    """A database file held open read-write by another process."""
    Store(db_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    yield db_path
    holder.stdin.close()
    holder.wait(timeout=30)
