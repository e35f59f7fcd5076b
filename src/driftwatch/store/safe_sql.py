"""User SQL: one read statement, no file access, a time limit, one-line errors.

Three layers, each enough for most attacks, together for all we know of:

1. the statement check: exactly one statement, of a read type according to DuckDB's own
   parser (``duckdb.extract_statements``), not a regular expression, and no call of a
   table function that acts instead of reading (``SELECT * FROM checkpoint()``,
   ``enable_profiling()``, ``query('<sql>')``, ...; DuckDB parses those as SELECTs);
2. the transaction: the query runs inside ``BEGIN TRANSACTION READ ONLY`` (DuckDB 2.0
   parses ``WITH x AS (INSERT … RETURNING *) SELECT …`` as a SELECT; the read-only
   transaction is what refuses it), and a file is opened ``read_only``;
3. the connection: external access disabled and configuration locked (see
   :mod:`driftwatch.store.connection`), so ``read_csv('/etc/passwd')``, ``COPY``,
   ``ATTACH``, ``INSTALL``/``LOAD`` from disk and ``SET`` fail even if they got through.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import duckdb

from driftwatch.core.errors import QueryError
from driftwatch.store.connection import first_line, open_connection
from driftwatch.store.result import QueryResult
from driftwatch.store.watchdog import Watchdog

if TYPE_CHECKING:
    from driftwatch.store.db import Store

DEFAULT_TIMEOUT_S: Final = 30.0

_ST = duckdb.StatementType
# SELECT covers WITH … SELECT, VALUES, SHOW, DESCRIBE, SUMMARIZE, TABLE t and FROM-first.
# MULTI is what PIVOT expands to (a temporary enum type plus the SELECT).
_READ_TYPES: Final = frozenset({_ST.SELECT, _ST.MULTI})
# PRAGMAs that only report; the others change settings and are refused.
READ_ONLY_PRAGMAS: Final = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)
_ALLOWED: Final = "SELECT, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN"
# Table functions that act instead of reading, callable from a SELECT
# (``SELECT * FROM checkpoint()``): the statement type says SELECT and a read-only
# transaction lets most of them through, so they are refused by name.
# ``query``/``json_execute_serialized_sql`` run SQL given as a string, which the
# statement check never sees.
_ACTING_FUNCTIONS: Final = frozenset(
    {
        "checkpoint",
        "force_checkpoint",
        "copy_database",
        "import_database",
        "truncate_duckdb_logs",
        "query",
        "json_execute_serialized_sql",
        "add_parquet_key",
        "add_grammar_extension",
        "remove_grammar_extension",
        "create_external_resource",
    }
)
# enable_profiling, disable_optimizer, register_external_resource, ... (DuckDB's own
# naming for functions that switch or register something)
_ACTING_PREFIXES: Final = (
    "enable_", "disable_", "register_", "deregister_", "destroy_", "truncate_",
)


def check_read_only(sql: str) -> None:
    """Raise :class:`QueryError` unless ``sql`` is exactly one read statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryError(first_line(error)) from None
    if len(statements) != 1:
        raise QueryError(f"expected exactly one SQL statement, got {len(statements)}")
    statement = statements[0]
    kind = statement.type
    _check_functions(sql)
    if kind in _READ_TYPES:
        return
    if kind == _ST.EXPLAIN:
        _check_explained(statement.query)
        return
    if kind == _ST.PRAGMA and _pragma_name(statement.query) in READ_ONLY_PRAGMAS:
        return
    raise QueryError(f"only read queries are allowed ({_ALLOWED}); got {kind.name}")


def safe_query(
    target: Store | str | Path,
    sql: str,
    *,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    max_rows: int | None = None,
) -> QueryResult:
    """Run user SQL read-only and return its rows.

    ``target`` is a live :class:`Store` (the writer process serving SQL: the query runs
    on a cursor of its connection, alongside writes) or a database file. A file open
    read-write by a Store in this process is served by that Store; otherwise it is
    opened ``read_only`` for this one query.

    Raises :class:`QueryError` (one line: DuckDB's first message line, or the reason the
    statement was refused, or the time limit), :class:`NotFoundError` for a missing file
    and :class:`StoreError` when another process holds the file. With ``max_rows``, at
    most that many rows come back and ``truncated`` tells whether more existed.
    ``timeout_s=None`` means no time limit.
    """
    check_read_only(sql)
    if max_rows is not None and max_rows < 0:
        raise QueryError("max_rows must be zero or more")
    store = _live(target)
    if store is not None:
        with store._cursor() as cursor:
            return _run(cursor, sql, timeout_s, max_rows)
    assert isinstance(target, str | Path)
    connection = open_connection(target, read_only=True)
    try:
        return _run(connection, sql, timeout_s, max_rows)
    finally:
        connection.close()


def _live(target: Store | str | Path) -> Store | None:
    """The Store serving ``target`` in this process, if any. ``driftwatch.store.db`` is
    only consulted when something already imported it: otherwise no Store can be open."""
    db = sys.modules.get("driftwatch.store.db")
    if db is None:
        return None
    if isinstance(target, db.Store):
        live: Store = target
        return live
    store: Store | None = db.live_store(target)
    return store


def _run(
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    timeout_s: float | None,
    max_rows: int | None,
    params: list[Any] | None = None,
) -> QueryResult:
    with Watchdog(connection, timeout_s) as watchdog:
        try:
            connection.execute("BEGIN TRANSACTION READ ONLY")
            relation = connection.sql(sql, params=params or None)
            if relation is None:  # e.g. a PRAGMA that returns nothing
                return QueryResult(columns=[], rows=[])
            columns = list(relation.columns)
            if max_rows is None:
                return QueryResult(columns=columns, rows=relation.fetchall())
            rows = relation.limit(max_rows + 1).fetchall()
            return QueryResult(columns=columns, rows=rows[:max_rows],
                               truncated=len(rows) > max_rows)
        except duckdb.Error as error:
            if watchdog.fired:
                raise QueryError(f"query exceeded the {timeout_s:g} s time limit") from None
            raise QueryError(first_line(error)) from None
        finally:
            watchdog.stop()
            # the transaction may already be gone (the query failed or was interrupted)
            with contextlib.suppress(duckdb.Error):
                connection.execute("ROLLBACK")


def _keywords(sql: str) -> list[tuple[int, str]]:
    """(position, upper-cased text) of each non-comment token, from DuckDB's tokenizer."""
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(sql)]
    out: list[tuple[int, str]] = []
    for index, (pos, kind) in enumerate(tokens):
        if kind == duckdb.token_type.comment:
            continue
        end = tokens[index + 1][0] if index + 1 < len(tokens) else len(sql)
        out.append((pos, sql[pos:end].strip().upper()))
    return out


def _check_functions(sql: str) -> None:
    """Refuse any call of a function in ``_ACTING_FUNCTIONS`` (or named with one of
    ``_ACTING_PREFIXES``), however it is quoted or qualified, wherever it appears."""
    tokens = _keywords(sql)
    for (_, text), (_, following) in itertools.pairwise(tokens):
        if not following.startswith("("):
            continue
        name = text.strip('"').lower()
        if name in _ACTING_FUNCTIONS or name.startswith(_ACTING_PREFIXES):
            raise QueryError(f"{name}() acts on the database or its settings; only read "
                             "queries are allowed")


def _pragma_name(sql: str) -> str:
    tokens = _keywords(sql)
    if len(tokens) < 2:
        return ""
    name = tokens[1][1]
    return name.split("(", 1)[0].strip().strip('"').lower()


def _check_explained(sql: str) -> None:
    """``EXPLAIN [ANALYZE] [(options)] <statement>``: the statement must be a read too
    (``EXPLAIN ANALYZE`` runs it)."""
    tokens = _keywords(sql)
    index = 1
    if index < len(tokens) and tokens[index][1] == "ANALYZE":
        index += 1
    if index < len(tokens) and tokens[index][1].startswith("("):
        depth = 0
        while index < len(tokens):
            text = tokens[index][1]
            depth += text.count("(") - text.count(")")
            index += 1
            if depth <= 0:
                break
    if index >= len(tokens):
        raise QueryError("EXPLAIN needs a statement to explain")
    inner = sql[tokens[index][0] :]
    try:
        statements = duckdb.extract_statements(inner)
    except duckdb.Error as error:
        raise QueryError(first_line(error)) from None
    if len(statements) != 1 or statements[0].type not in _READ_TYPES:
        kind = statements[0].type.name if statements else "nothing"
        raise QueryError(f"only read queries can be explained; got {kind}")
