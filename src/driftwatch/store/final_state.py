"""Final-state checks: SQL boolean expressions over the sandbox state after a run.

The snapshot is a mapping. It becomes tables in a private in-memory DuckDB connection
(external access disabled, configuration locked):

- ``files``: ``{path: text}`` → ``files(path, content, sha256)`` (bytes are hashed as
  given and decoded as UTF-8 with replacement for ``content``);
- any entry that is a list of dicts (``mail``, ``records`` …) → a table of that name
  whose columns are the dicts' keys: text as VARCHAR, booleans as BOOLEAN, integers as
  BIGINT, numbers as DOUBLE, anything else as JSON. ``mail`` always has at least
  ``"to", sender, subject, body, folder`` (``to`` is an SQL keyword: quote it);
- every other entry → a row of ``state(key, value JSON)``.

A rule that names a table absent from the snapshot fails with DuckDB's catalog error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import duckdb
import pyarrow as pa

from driftwatch.store.arrow import to_json
from driftwatch.store.connection import MEMORY, first_line, open_connection
from driftwatch.store.watchdog import Watchdog

DEFAULT_FINAL_STATE_TIMEOUT_S: Final = 10.0

# Columns a table has even when the snapshot's list is empty, so rules still bind.
KNOWN_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "files": ("path", "content", "sha256"),
    "mail": ("to", "sender", "subject", "body", "folder"),
}

RuleOutcome = tuple[bool | None, str | None]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _file_rows(files: Mapping[str, str | bytes]) -> list[dict[str, Any]]:
    rows = []
    for path, content in files.items():
        raw = content if isinstance(content, bytes) else str(content).encode("utf-8")
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        rows.append({"path": str(path), "content": text, "sha256": hashlib.sha256(raw).hexdigest()})
    return rows


def _column_type(values: Sequence[Any]) -> pa.DataType | None:
    """Arrow type for a column; None means JSON text."""
    present = [value for value in values if value is not None]
    if all(isinstance(value, str) for value in present):
        return pa.string()
    if all(isinstance(value, bool) for value in present):
        return pa.bool_()
    if all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        return pa.int64()
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
        return pa.float64()
    return None


def _tables(snapshot: Mapping[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    state_rows = []
    for key, value in snapshot.items():
        if key == "files" and isinstance(value, Mapping):
            yield key, _file_rows(value)
        elif isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
            rows = [dict(item) for item in value]
            if key == "files":
                for row in rows:
                    content = row.get("content")
                    if "sha256" not in row and isinstance(content, str | bytes):
                        row.update(_file_rows({str(row.get("path")): content})[0])
            yield key, rows
        else:
            state_rows.append({"key": str(key), "value": value})
    yield "state", state_rows


class FinalStateEvaluator:
    """``{rule_id: SQL boolean expression that must hold}`` over a final snapshot.

    :meth:`evaluate` returns ``{rule_id: (holds, error)}``: ``(True, None)`` or
    ``(False, None)`` for a rule that ran, ``(None, None)`` when it evaluated to NULL,
    ``(None, message)`` when it failed. It never raises for a bad rule or snapshot
    entry. Each call uses a fresh connection, so calls are independent and thread-safe.
    """

    def __init__(
        self,
        rules: Mapping[str, str],
        *,
        timeout_s: float | None = DEFAULT_FINAL_STATE_TIMEOUT_S,
    ) -> None:
        self.rules = dict(rules)
        self._timeout_s = timeout_s

    def evaluate(self, snapshot: Mapping[str, Any]) -> dict[str, RuleOutcome]:
        connection = open_connection(MEMORY)
        try:
            load_errors = _load(connection, snapshot)
            return {
                rule_id: self._check(connection, expression, load_errors)
                for rule_id, expression in self.rules.items()
            }
        finally:
            connection.close()

    def _check(
        self, connection: duckdb.DuckDBPyConnection, expression: str, load_errors: list[str]
    ) -> RuleOutcome:
        sql = f"SELECT CAST((\n{expression}\n) AS BOOLEAN) AS holds"
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as error:
            return None, first_line(error)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            return None, "final-state check must be one SQL expression"
        with Watchdog(connection, self._timeout_s) as watchdog:
            try:
                result = connection.sql(sql).fetchall()
            except duckdb.Error as error:
                if watchdog.fired:
                    return None, f"check exceeded the {self._timeout_s:g} s time limit"
                message = first_line(error)
                if load_errors:
                    message += f" (snapshot: {'; '.join(load_errors)})"
                return None, message
        if len(result) != 1 or len(result[0]) != 1:
            return None, "final-state check must be one SQL expression"
        value = result[0][0]
        return (None if value is None else bool(value)), None


def _load(connection: duckdb.DuckDBPyConnection, snapshot: Mapping[str, Any]) -> list[str]:
    """Create one table per snapshot entry; returns messages for entries that failed."""
    errors: list[str] = []
    for name, rows in _tables(snapshot):
        columns = list(KNOWN_COLUMNS.get(name, ()))
        if name == "state":
            columns = ["key", "value"]
        for row in rows:
            columns.extend(key for key in row if key not in columns)
        if not columns:
            columns = ["value"]
        try:
            _create_table(connection, name, columns, rows)
        except (duckdb.Error, pa.ArrowException, ValueError, TypeError) as error:
            errors.append(f"{name}: {first_line(error)}")
    return errors


def _create_table(
    connection: duckdb.DuckDBPyConnection,
    name: str,
    columns: list[str],
    rows: list[dict[str, Any]],
) -> None:
    arrays = []
    selects = []
    for position, column in enumerate(columns):
        values = [row.get(column) for row in rows]
        arrow_type = None if column == "value" and name == "state" else _column_type(values)
        if arrow_type is None:
            values = [None if value is None else to_json(value) for value in values]
            selects.append(f"CAST(c{position} AS JSON) AS {_quote(column)}")
            arrow_type = pa.string()
        else:
            selects.append(f"c{position} AS {_quote(column)}")
        arrays.append(pa.array(values, type=arrow_type))
    table = pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(columns))])
    connection.register("_snapshot_entry", table)
    try:
        connection.execute(
            f"CREATE TABLE {_quote(name)} AS SELECT {', '.join(selects)} FROM _snapshot_entry"
        )
    finally:
        connection.unregister("_snapshot_entry")
