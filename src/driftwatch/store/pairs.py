"""Conditions over two spans of a sequence rule: ``where`` compares values of an a-span
with values of a later b-span.

A sequence rule evaluates named value expressions on its a-spans (``a_values``) and
b-spans (``b_values``) in the micro-batch query like any other value expression; the
a-side values are remembered with the a-span. When an a and a b could pair, ``where``
decides whether they do: one SQL boolean expression over two structs, ``a`` and ``b``,
whose fields are those names, e.g.::

    a.cabin = 'basic_economy' AND b.flights::VARCHAR <> a.flights::VARCHAR

Each field keeps the DuckDB type its expression has over the batch (found at load), so
JSON stays JSON and lists stay lists. Every :class:`PairCondition` owns a private
in-memory connection (external access disabled), like the predicate evaluator.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, Final

import duckdb

from driftwatch.store.connection import MEMORY, first_line, open_connection
from driftwatch.store.predicates import shared_validator

__all__ = ["PairCondition", "validate_pair_condition"]

_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_names(values: Mapping[str, str], side: str) -> str | None:
    for name in values:
        if not _NAME.match(name):
            return f"{side}_values: {name!r} is not a plain SQL name (letters, digits, _)"
    return None


def _struct_of_expressions(values: Mapping[str, str]) -> str:
    """The side as a struct of its value expressions over the batch (for validation)."""
    if not values:
        return 'CAST(NULL AS STRUCT("_" BOOLEAN))'
    fields = ", ".join(f'"{name}" := (\n{expr}\n)' for name, expr in values.items())
    return f"struct_pack({fields})"


def _struct_of_parameters(types: Mapping[str, str], first: int) -> str:
    """The side as a struct of typed parameters ``$first`` … (at runtime)."""
    if not types:
        return 'CAST(NULL AS STRUCT("_" BOOLEAN))'
    fields = ", ".join(
        f'"{name}" := CAST(${first + n} AS {column_type})'
        for n, (name, column_type) in enumerate(types.items())
    )
    return f"struct_pack({fields})"


def _value_types(values: Mapping[str, str]) -> dict[str, str] | str:
    """``{name: DuckDB type}`` of each expression over the batch, or an error message."""
    validator = shared_validator()
    types: dict[str, str] = {}
    for name, expression in values.items():
        described = validator.describe(expression)
        if described.startswith("!"):
            return f"{name}: {described[1:]}"
        types[name] = described
    return types


def validate_pair_condition(
    where: str, a_values: Mapping[str, str], b_values: Mapping[str, str]
) -> str | None:
    """Check ``where`` at load time: the error message, or None when it is a boolean
    expression over ``a`` and ``b`` with the given fields. Never raises."""
    for side, values in (("a", a_values), ("b", b_values)):
        error = _check_names(values, side)
        if error:
            return error
    sql = (
        f"SELECT (\n{where}\n) AS matched FROM (SELECT {_struct_of_expressions(a_values)} AS a, "
        f"{_struct_of_expressions(b_values)} AS b FROM batch)"
    )
    return shared_validator().describe_query(sql, "where")


class PairCondition:
    """``where`` over the remembered values of an a-span and a b-span (thread-safe).

    :meth:`holds` returns ``(True/False, None)``, or ``(False, error)`` when the SQL
    fails on these values (e.g. a cast): a condition that cannot be decided does not
    pair the spans. NULL is false, as in a SQL ``WHERE``.
    """

    def __init__(self, where: str, a_values: Mapping[str, str], b_values: Mapping[str, str]):
        a_types = _value_types(a_values)
        b_types = _value_types(b_values)
        if isinstance(a_types, str) or isinstance(b_types, str):
            raise ValueError(a_types if isinstance(a_types, str) else b_types)
        self.where = where
        self._a_names = list(a_types)
        self._b_names = list(b_types)
        a_struct = _struct_of_parameters(a_types, 1)
        b_struct = _struct_of_parameters(b_types, 1 + len(a_types))
        self._sql = f"SELECT (\n{where}\n) FROM (SELECT {a_struct} AS a, {b_struct} AS b)"
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = open_connection(MEMORY)

    def holds(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[bool, str | None]:
        parameters = [a.get(name) for name in self._a_names]
        parameters += [b.get(name) for name in self._b_names]
        with self._lock:
            if self._connection is None:
                return False, "pair condition is closed"
            try:
                row = self._connection.execute(self._sql, parameters).fetchone()
            except duckdb.Error as error:
                return False, first_line(error)
        return bool(row and row[0]), None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
