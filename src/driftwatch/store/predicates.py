"""SQL predicates of rule packs, evaluated over micro-batches of spans.

A predicate is a SQL boolean expression over one span, written against the ``spans``
columns plus convenience columns (see :data:`BATCH_COLUMNS`), e.g.::

    operation = 'execute_tool' AND tool_name = 'delete_file'
        AND tool_arguments->>'path' LIKE '/protected/%'

Each evaluator owns a private in-memory DuckDB connection (external access disabled,
configuration locked), so a predicate sees only the batch it is given.

An evaluator may also compute *value expressions* (any scalar SQL expression, e.g.
``tool_arguments->>'path'`` or ``cast(tool_arguments->>'amount' as double)``) in the same
query: sequence rules correlate spans on them and window rules sum them.

Requested tool calls: :meth:`PredicateEvaluator.evaluate_all` takes ``extra`` rows (one
per tool call a chat span asked for, see
:func:`driftwatch.core.toolcalls.requested_call_records`, and tool spans evaluated
again), placed after the records. The column ``tool_call_source`` is ``'requested'`` on
an extra row that is not an ``execute_tool`` span, ``'executed'`` on ``execute_tool``
spans, NULL otherwise; it is set from the row's place in the batch, never from a span's
attributes (a client cannot hide a span from the rules by claiming it is a request).
Only the predicates whose SQL uses that column can match a requested call's row
(:attr:`PredicateEvaluator.selects_requested`); for the others those rows are not there.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.store.arrow import DERIVED_ATTRIBUTE_COLUMNS, SPAN_SCHEMA, records_to_arrow
from driftwatch.store.connection import MEMORY, first_line, open_connection
from driftwatch.store.span_batch import SpanBatch
from driftwatch.store.watchdog import Watchdog

DEFAULT_PREDICATE_TIMEOUT_S: Final = 10.0

# Derived columns holding JSON (so ``tool_arguments->>'path'`` works); the others are text.
_JSON_DERIVED: Final = frozenset({"tool_arguments", "output_messages"})
_JSON_STORED: Final = frozenset({"attributes", "resource", "events"})
_ARROW_NAME: Final = "_predicate_batch"
SOURCE_COLUMN: Final = "tool_call_source"
# a predicate that does not name SOURCE_COLUMN never matches a requested call's row
_NOT_REQUESTED: Final = f"{SOURCE_COLUMN} IS DISTINCT FROM '{sc.TOOL_CALL_REQUESTED}'"
_SOURCE_FIELD: Final = "_requested"  # the Arrow column marking requested calls' rows


def _attribute_path(key: str) -> str:
    # Attribute keys contain dots: quote the key inside the JSON path.
    escaped = key.replace("'", "''").replace('"', '\\"')
    return f"'$.\"{escaped}\"'"


def _json_attribute(key: str) -> str:
    """The attribute as JSON: a JSON-encoded string attribute (how OTel carries tool
    arguments) is parsed; a string that is not JSON stays a JSON string."""
    path = _attribute_path(key)
    return (
        f"CASE WHEN json_type(attributes->{path}) <> 'VARCHAR' THEN attributes->{path} "
        f"WHEN json_valid(attributes->>{path}) THEN CAST(attributes->>{path} AS JSON) "
        f"ELSE attributes->{path} END"
    )


def _batch_view_sql() -> str:
    stored = [
        f"CAST({name} AS JSON) AS {name}" if name in _JSON_STORED else name
        for name in SPAN_SCHEMA.names
    ]
    derived = [
        f"{_json_attribute(key)} AS {column}"
        if column in _JSON_DERIVED
        else f"attributes->>{_attribute_path(key)} AS {column}"
        for column, key in DERIVED_ATTRIBUTE_COLUMNS.items()
    ]
    source = (
        f"CASE WHEN {_SOURCE_FIELD} THEN '{sc.TOOL_CALL_REQUESTED}' WHEN "
        f"operation = '{sc.OP_EXECUTE_TOOL}' THEN '{sc.TOOL_CALL_EXECUTED}' END "
        f"AS {SOURCE_COLUMN}"
    )
    return (
        f"CREATE VIEW batch AS SELECT * EXCLUDE ({_SOURCE_FIELD}), {', '.join(derived)}, "
        f"{source} FROM (SELECT idx, {', '.join(stored)}, {_SOURCE_FIELD} FROM {_ARROW_NAME})"
    )


BATCH_COLUMNS: Final[tuple[str, ...]] = (
    "idx",
    *SPAN_SCHEMA.names,
    *DERIVED_ATTRIBUTE_COLUMNS,
    SOURCE_COLUMN,
)
"""Columns a predicate can use: ``idx`` (position in the batch), the ``spans`` columns
(``attributes``, ``resource``, ``events`` as JSON), the derived convenience columns and
``tool_call_source``."""

_BATCH_SCHEMA: Final = pa.schema(
    [pa.field("idx", pa.int64()), *SPAN_SCHEMA, pa.field(_SOURCE_FIELD, pa.bool_())])


def _batch_table(records: Sequence[SpanRecord], extra: Sequence[SpanRecord] = ()) -> pa.Table:
    """The batch as the predicates read it: a :class:`SpanBatch`'s own table (built
    once per batch, shared with whoever else needs it), else the records converted;
    then the ``extra`` rows."""
    if isinstance(records, SpanBatch):
        table = records.table.select(SPAN_SCHEMA.names)
    else:
        table = records_to_arrow(records)
    if extra:
        table = pa.concat_tables([table.cast(SPAN_SCHEMA), records_to_arrow(extra)])
    count = len(records) + len(extra)
    requested = [False] * len(records) + [r.operation != sc.OP_EXECUTE_TOOL for r in extra]
    return table.add_column(0, "idx", pa.array(range(count), type=pa.int64())).append_column(
        _SOURCE_FIELD, pa.array(requested, type=pa.bool_()))


def _names_column(
    connection: duckdb.DuckDBPyConnection, expression: str, column: str
) -> bool:
    """Whether ``expression`` refers to ``column`` (DuckDB's own parse, so a mention in a
    string literal or a comment does not count)."""
    try:
        rows = connection.execute("SELECT json_serialize_sql(?)",
                                  [f"SELECT ({expression})"]).fetchall()
        tree = json.loads(str(rows[0][0])) if rows else None
    except (duckdb.Error, ValueError):
        return False
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class") == "COLUMN_REF" and column in (node.get("column_names") or ()):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


_NUMERIC_TYPES: Final = frozenset(
    {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
        "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
        "FLOAT", "DOUBLE",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BatchEvaluation:
    """What :meth:`PredicateEvaluator.evaluate_all` found in one batch.

    - ``matches``: ``(record index, rule_id)`` per match, ordered by index then rule order;
    - ``values``: ``{value_id: [one Python value per record]}`` for every value id given
      (None where SQL gave NULL, and for every record of a value whose expression did not
      compile or failed on this batch);
    - ``errors``: ``{rule_or_value_id: one-line message}``.
    """

    matches: list[tuple[int, str]] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Selection:
    """Positions of the rules and values one query evaluates, and that query (built on
    first use)."""

    rules: tuple[int, ...]
    values: tuple[int, ...]
    sql: str | None = None


class PredicateEvaluator:
    """Compiles ``{rule_id: SQL boolean expression}`` (and optionally ``{value_id: SQL
    scalar expression}``) once; evaluates batches of spans, all of them in one query.

    Thread-safe (one lock around the private connection); :meth:`evaluate` and
    :meth:`evaluate_all` never raise for a bad rule or value: its error is reported
    under its id and the others still run. Rule and value ids must not overlap.
    """

    def __init__(
        self,
        rules: Mapping[str, str],
        *,
        values: Mapping[str, str] | None = None,
        timeout_s: float | None = DEFAULT_PREDICATE_TIMEOUT_S,
    ) -> None:
        self._lock = threading.Lock()
        self._timeout_s = timeout_s
        self._connection = open_connection(MEMORY)
        self._connection.register(_ARROW_NAME, _BATCH_SCHEMA.empty_table())
        self._connection.execute(_batch_view_sql())
        self.compile_errors: dict[str, str] = {}
        self._rules: list[tuple[str, str]] = []
        self.selects_requested: frozenset[str] = frozenset(
            rule_id for rule_id, expression in rules.items()
            if _names_column(self._connection, expression, SOURCE_COLUMN))
        """The rules whose SQL uses ``tool_call_source``: the only ones that can match a
        requested tool call's row."""
        for rule_id, expression in rules.items():
            error = self._validate(expression)
            if error is None:
                guarded = (expression if rule_id in self.selects_requested or
                           not self.selects_requested
                           else f"{_NOT_REQUESTED} AND (\n{expression}\n)")
                self._rules.append((rule_id, guarded))
            else:
                self.compile_errors[rule_id] = error
        self._values: list[tuple[str, str]] = []
        self._value_ids = list(values or {})
        for value_id, expression in (values or {}).items():
            if value_id in rules:
                raise ValueError(f"value id {value_id!r} is also a rule id")
            error = self._validate_value(expression, numeric=False)
            if error is None:
                self._values.append((value_id, expression))
            else:
                self.compile_errors[value_id] = error
        self._all = _Selection(tuple(range(len(self._rules))), tuple(range(len(self._values))))
        self._selections: dict[frozenset[str], _Selection] = {}

    def _select(self, only: Collection[str] | None) -> _Selection:
        """The rules and values to evaluate: all, or those whose id is in ``only``
        (cached per distinct set: a monitor asks for a handful of pack combinations)."""
        if only is None:
            return self._all
        key = frozenset(only)
        selection = self._selections.get(key)
        if selection is None:
            rules = tuple(n for n, (rule_id, _) in enumerate(self._rules) if rule_id in key)
            values = tuple(n for n, (value_id, _) in enumerate(self._values) if value_id in key)
            selection = self._selections[key] = _Selection(rules, values)
        return selection

    def _combined_sql(self, selection: _Selection) -> str:
        selects = ", ".join(
            [
                *(f"(\n{self._rules[n][1]}\n) AS r{n}" for n in selection.rules),
                *(f"(\n{self._values[n][1]}\n) AS v{n}" for n in selection.values),
            ]
        )
        return f"SELECT idx, {selects}\nFROM batch" if selects else ""

    @property
    def rule_ids(self) -> list[str]:
        """The rules that compiled, in the order given."""
        return [rule_id for rule_id, _ in self._rules]

    def evaluate(
        self, records: Sequence[SpanRecord]
    ) -> tuple[list[tuple[int, str]], dict[str, str]]:
        """Return ``(matches, errors)``: ``(record index, rule_id)`` for every record a
        rule matches, ordered by index then rule order, and ``{rule_id: message}`` for
        rules that failed to compile (reported on every call) or failed on this batch.

        One query evaluates all rules; if it fails, each rule runs alone so that only the
        broken ones are reported. A NULL predicate result is no match.
        """
        result = self.evaluate_all(records)
        return result.matches, result.errors

    def evaluate_all(
        self,
        records: Sequence[SpanRecord],
        *,
        only: Collection[str] | None = None,
        extra: Sequence[SpanRecord] = (),
    ) -> BatchEvaluation:
        """Rule matches as :meth:`evaluate`, plus every value expression for every
        record, from the same single query (see :class:`BatchEvaluation`).

        ``only``: evaluate just the rules and values with these ids (the caller knows
        the others cannot apply to this batch, e.g. their pack is scoped to scenarios
        none of its records belong to); the others give no match, all-NULL values and
        no runtime error. Compile errors are always reported.

        ``extra``: more rows after the records (requested tool calls), indexed from
        ``len(records)`` on in matches and values; only :attr:`selects_requested` rules
        can match one."""
        errors = dict(self.compile_errors)
        if not records:
            return BatchEvaluation([], {value_id: [] for value_id in self._value_ids}, errors)
        selection = self._select(only)
        values: dict[str, list[Any]] = {}
        count = len(records) + len(extra)
        if not (selection.rules or selection.values):
            values.update((value_id, [None] * count) for value_id in self._value_ids)
            return BatchEvaluation([], values, errors)
        table = _batch_table(records, extra)
        with self._lock:
            self._connection.register(_ARROW_NAME, table)
            try:
                matches = self._evaluate_combined(selection, values, count)
                if matches is None:
                    values.clear()
                    matches = self._evaluate_each(selection, errors, values, count)
            finally:
                self._connection.register(_ARROW_NAME, _BATCH_SCHEMA.empty_table())
        for value_id in self._value_ids:  # one that did not compile: all NULL
            values.setdefault(value_id, [None] * count)
        matches.sort()
        return BatchEvaluation(
            [(index, self._rules[position][0]) for index, position in matches], values, errors
        )

    def validate(self, expression: str) -> str | None:
        """The error message for a predicate that would not work, or None if it does."""
        with self._lock:
            return self._validate(expression)

    def validate_value(self, expression: str, *, numeric: bool = False) -> str | None:
        """The error message for a value expression that would not work (not one scalar
        expression; not numeric when ``numeric``), or None if it does."""
        with self._lock:
            return self._validate_value(expression, numeric=numeric)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> PredicateEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals (caller holds the lock) ---------------------------------------------

    def _validate(self, expression: str) -> str | None:
        if not expression or not expression.strip():
            return "predicate is empty"
        column_type = self._describe(expression, "predicate")
        if column_type.startswith("!"):
            return column_type[1:]
        if column_type != "BOOLEAN":
            return f"predicate must be a boolean expression, got {column_type}"
        return None

    def _validate_value(self, expression: str, *, numeric: bool) -> str | None:
        if not expression or not expression.strip():
            return "expression is empty"
        column_type = self._describe(expression, "expression")
        if column_type.startswith("!"):
            return column_type[1:]
        if numeric and column_type not in _NUMERIC_TYPES and not column_type.startswith("DECIMAL"):
            return f"expression must be numeric, got {column_type} (e.g. cast(... as double))"
        return None

    def describe(self, expression: str) -> str:
        """The DuckDB type of a value expression over the batch (e.g. ``JSON``,
        ``VARCHAR[]``), or ``"!" + error`` when it is not one scalar expression."""
        with self._lock:
            return self._describe(expression, "expression")

    def describe_query(self, sql: str, what: str) -> str | None:
        """Check a one-column SELECT (which may read ``batch``) that must give a boolean:
        the error message, or None. ``what`` names the expression in messages."""
        with self._lock:
            column_type = self._describe_sql(sql, what)
        if column_type.startswith("!"):
            return column_type[1:]
        if column_type != "BOOLEAN":
            return f"{what} must be a boolean expression, got {column_type}"
        return None

    def _describe(self, expression: str, what: str) -> str:
        """The DuckDB type of ``expression`` over the batch, or ``"!" + error``."""
        return self._describe_sql(f"SELECT (\n{expression}\n) AS matched FROM batch", what)

    def _describe_sql(self, sql: str, what: str) -> str:
        try:
            statements = duckdb.extract_statements(sql)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                return f"!{what} must be one SQL expression"
            described = self._connection.sql(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as error:
            return "!" + first_line(error)
        if len(described) != 1:
            return f"!{what} must be one SQL expression"
        return str(described[0][1])

    def _query(self, sql: str) -> pa.Table:
        with Watchdog(self._connection, self._timeout_s) as watchdog:
            try:
                return self._connection.sql(sql).to_arrow_table()
            except duckdb.InterruptException:
                if watchdog.fired:
                    raise TimeoutError(
                        f"predicate exceeded the {self._timeout_s:g} s time limit"
                    ) from None
                raise

    def _evaluate_combined(
        self, selection: _Selection, values: dict[str, list[Any]], count: int
    ) -> list[tuple[int, int]] | None:
        if selection.sql is None:
            selection.sql = self._combined_sql(selection)
        try:
            result = self._query(selection.sql)
        except (duckdb.Error, TimeoutError):
            return None
        if result.num_columns != len(selection.rules) + len(selection.values) + 1:
            return None  # an expression reshaped the query; fall back to one per rule
        index = result.column(0)
        matches: list[tuple[int, int]] = []
        for column, position in enumerate(selection.rules, start=1):
            mask = pc.fill_null(result.column(column), False)
            matches.extend((i, position) for i in pc.filter(index, mask).to_pylist())
        first_value = len(selection.rules) + 1
        for column, position in enumerate(selection.values, start=first_value):
            values[self._values[position][0]] = _by_index(index, result.column(column), count)
        return matches

    def _evaluate_each(
        self,
        selection: _Selection,
        errors: dict[str, str],
        values: dict[str, list[Any]],
        count: int,
    ) -> list[tuple[int, int]]:
        matches: list[tuple[int, int]] = []
        for position in selection.rules:
            rule_id, expression = self._rules[position]
            try:
                result = self._query(f"SELECT idx FROM batch WHERE (\n{expression}\n)")
            except TimeoutError as error:
                errors[rule_id] = str(error)
                continue
            except duckdb.Error as error:
                errors[rule_id] = first_line(error)
                continue
            matches.extend((i, position) for i in result.column(0).to_pylist())
        for position in selection.values:
            value_id, expression = self._values[position]
            values[value_id] = [None] * count
            try:
                result = self._query(f"SELECT idx, (\n{expression}\n) AS v FROM batch")
            except TimeoutError as error:
                errors[value_id] = str(error)
                continue
            except duckdb.Error as error:
                errors[value_id] = first_line(error)
                continue
            if result.num_columns != 2:
                errors[value_id] = "expression must be one SQL expression"
                continue
            values[value_id] = _by_index(result.column(0), result.column(1), count)
        return matches


def _by_index(index: pa.ChunkedArray, column: pa.ChunkedArray, count: int) -> list[Any]:
    """Column values as a list aligned with record positions (rows may come unordered)."""
    positions: list[int] = index.to_pylist()
    listed: list[Any] = column.to_pylist()
    if positions == list(range(count)):
        return listed
    out: list[Any] = [None] * count
    for position, value in zip(positions, listed, strict=True):
        out[position] = value
    return out


_validator: PredicateEvaluator | None = None
_validator_lock = threading.Lock()


def shared_validator() -> PredicateEvaluator:
    """One private, empty evaluator for load-time checks (its connection is shared by
    every validation in the process; its methods are thread-safe)."""
    global _validator  # noqa: PLW0603 - one private connection shared by all validations
    with _validator_lock:
        if _validator is None:
            _validator = PredicateEvaluator({})
        return _validator


def validate_predicate(expression: str) -> str | None:
    """Check a predicate at rule-pack load time: the error message (one line, from
    DuckDB or about the expression's shape or type), or None when it is a valid boolean
    expression over the batch columns. Thread-safe; never raises."""
    return shared_validator().validate(expression)


def validate_value(expression: str, *, numeric: bool = False) -> str | None:
    """Check a value expression (a correlation key, a number to sum) at rule-pack load
    time: the error message, or None when it is one scalar SQL expression over the batch
    columns (numeric too when ``numeric``). Thread-safe; never raises."""
    return shared_validator().validate_value(expression, numeric=numeric)
